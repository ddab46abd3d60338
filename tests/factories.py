"""Keyword-argument factories for test data. Each goes through the service actions where one exists."""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy.orm import Session

from occupant.accounts.models import AppAccount
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.occupiers import service as occupiers
from occupant.occupiers.models import Occupier
from occupant.occupiers.schemas import OccupierCreate
from occupant.operators.models import Operator
from occupant.sites import service as sites
from occupant.sites.models import Site
from occupant.sites.schemas import SiteCreate
from occupant.staff.models import StaffUser
from occupant.users import service as users
from occupant.users.models import OccupierUser
from occupant.users.schemas import UserCreate

_seq = itertools.count(1)


def make_operator(db: Session, *, name: str | None = None) -> Operator:
    operator = Operator(name=name or f"Operator {next(_seq)}")
    db.add(operator)
    db.flush()
    return operator


def admin_actor(operator: Operator, *, staff_id: int | None = None) -> Actor:
    return Actor(kind=ActorKind.STAFF, id=staff_id, operator_id=operator.id, role=Role.OPERATOR_ADMIN)


def site_manager_actor(operator: Operator, site_ids: list[int], *, staff_id: int | None = None) -> Actor:
    return Actor(
        kind=ActorKind.STAFF,
        id=staff_id,
        operator_id=operator.id,
        role=Role.SITE_MANAGER,
        site_ids=frozenset(site_ids),
    )


def make_site(
    db: Session,
    operator: Operator,
    *,
    code: str | None = None,
    country: str = "GB",
    name: str | None = None,
    nas: list[str] | None = None,
) -> Site:
    code = code or f"S{next(_seq):04d}"
    return sites.create_site(
        db,
        SiteCreate(code=code, name=name or f"Site {code}", country=country, nas_identifiers=nas or []),
        actor=admin_actor(operator),
    )


def make_occupier(
    db: Session,
    operator: Operator,
    *,
    sites_: list[Site] | None = None,
    name: str | None = None,
    **kwargs: Any,
) -> Occupier:
    site_list = sites_ or [make_site(db, operator)]
    return occupiers.create_occupier(
        db,
        OccupierCreate(name=name or f"Occupier {next(_seq)}", site_ids=[s.id for s in site_list], **kwargs),
        actor=admin_actor(operator),
    )


def make_user(db: Session, occupier: Occupier, *, actor: Actor | None = None, **fields: Any) -> OccupierUser:
    n = next(_seq)
    data = {"first_name": f"First{n}", "last_name": f"Last{n}", "email": f"user{n}@example.com", **fields}
    operator = db.get(Operator, occupier.operator_id)
    assert operator is not None
    return users.create_user(db, occupier, UserCreate(**data), actor=actor or admin_actor(operator))


def make_staff(
    db: Session,
    operator: Operator,
    *,
    role: Role = Role.OPERATOR_ADMIN,
    sites_: list[Site] | None = None,
    email: str | None = None,
    password: str = "correct horse battery",
) -> StaffUser:
    from occupant.kit.security import hash_password

    email = email or f"staff{next(_seq)}@operator.example"
    staff = StaffUser(
        operator_id=operator.id,
        email=email,
        email_key=email.lower(),
        name="Staff Member",
        password_hash=hash_password(password),
        role=role,
    )
    staff.sites = sites_ or []
    db.add(staff)
    db.flush()
    return staff


def make_account(
    db: Session,
    user: OccupierUser,
    *,
    role: str = "user",
    portal: bool = True,
    mobile_app: bool = False,
    password: str | None = None,
    actor: Actor | None = None,
) -> AppAccount:
    """An app account through the actions: set up and invited (AWAITING_SIGN_IN; NOT_INVITED without
    apps) and, with ``password``, the emailed invitation link used to set it (ACTIVE)."""
    from sqlalchemy import select

    from occupant.accounts import service as accounts
    from occupant.notify.models import OutboxMessage
    from occupant.notify.service import secret_box

    operator = db.get(Operator, user.operator_id)
    assert operator is not None
    account = accounts.set_up_account(
        db,
        user,
        role=role,
        invite_portal=portal,
        invite_mobile_app=mobile_app,
        actor=actor or admin_actor(operator),
    )
    if password is not None:
        message = db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.occupier_user_id == user.id, OutboxMessage.template == "app_invitation")
            .order_by(OutboxMessage.id.desc())
        ).first()
        assert message is not None and message.sealed_secrets is not None
        token = secret_box().open(message.sealed_secrets)["link"].rsplit("/", 1)[1]
        accounts.set_password_with_link(db, token, password, address=None)
    db.flush()
    return account
