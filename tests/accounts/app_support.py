"""Helpers for the app-account API, command-line and console tests: accounts made through the actions,
the emails they queue, and the links those emails carry."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.accounts import service
from occupant.accounts.models import AccountRole, App, AppAccount
from occupant.notify.models import OutboxMessage
from occupant.notify.service import secret_box
from occupant.operators.models import Operator
from occupant.users.models import OccupierUser
from tests.factories import admin_actor

PASSWORD = "blue canary sings 42"


def invite(db: Session, user: OccupierUser, *apps: App, role: AccountRole = AccountRole.USER) -> AppAccount:
    """Set the role and invite to ``apps`` through the action, as operator staff would."""
    operator = db.get(Operator, user.operator_id)
    assert operator is not None
    account = service.set_up_account(
        db,
        user,
        role=role,
        invite_portal=App.PORTAL in apps,
        invite_mobile_app=App.MOBILE_APP in apps,
        actor=admin_actor(operator),
    )
    db.flush()
    return account


def mails(db: Session, user_id: int, template: str | None = None) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.occupier_user_id == user_id)
    if template is not None:
        stmt = stmt.where(OutboxMessage.template == template)
    return list(db.scalars(stmt.order_by(OutboxMessage.id)))


def mailed_link(message: OutboxMessage) -> str:
    assert message.sealed_secrets is not None
    return str(secret_box().open(message.sealed_secrets)["link"])


def link_token(message: OutboxMessage) -> str:
    return mailed_link(message).rsplit("/", 1)[1]


def activate(
    db: Session,
    user: OccupierUser,
    *apps: App,
    role: AccountRole = AccountRole.USER,
    password: str = PASSWORD,
) -> AppAccount:
    """Invite to ``apps`` (both by default) and choose ``password`` through the emailed link: ACTIVE."""
    invite(db, user, *(apps or tuple(App)), role=role)
    token = link_token(mails(db, user.id, "app_invitation")[-1])
    account, _ = service.set_password_with_link(db, token, password, address="192.0.2.1")
    db.flush()
    return account
