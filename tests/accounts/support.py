"""What the app-account service tests look at: the world they run in, the mails queued, the links those
mails carry (sealed), the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.accounts import service
from occupant.accounts.models import AccountRole, AppAccount, AppSession
from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor
from occupant.notify.models import OutboxMessage
from occupant.notify.service import secret_box
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.users.models import OccupierUser
from tests.factories import admin_actor, make_account, make_occupier, make_operator, make_site, make_user

PASSWORD = "correct horse battery staple"


@dataclass
class World:
    operator: Operator
    occupier: Occupier
    user: OccupierUser
    staff: Actor


def build_world(db: Session, **occupier_fields: Any) -> World:
    operator = make_operator(db, name="Atelier Workspaces")
    site = make_site(db, operator, code="PAR01", country="FR")
    occupier = make_occupier(db, operator, sites_=[site], name="Acme SARL", **occupier_fields)
    user = make_user(db, occupier, first_name="Zoé", language="fr", email="Zoe.Martin@Acme.example")
    return World(operator, occupier, user, admin_actor(operator))


def occupier_admin(db: Session, occupier: Occupier, **fields: Any) -> tuple[OccupierUser, Actor]:
    """An occupier admin who has signed up (ACTIVE), and the actor they act as in the portal."""
    admin = make_user(db, occupier, **fields)
    account = make_account(db, admin, role=AccountRole.ADMIN, password=PASSWORD)
    return admin, service.actor_for_account(account, admin)


def mails(db: Session, user_id: int | None = None, template: str | None = None) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).order_by(OutboxMessage.id)
    if user_id is not None:
        stmt = stmt.where(OutboxMessage.occupier_user_id == user_id)
    if template is not None:
        stmt = stmt.where(OutboxMessage.template == template)
    return list(db.scalars(stmt))


def secrets_of(message: OutboxMessage) -> dict[str, Any]:
    assert message.sealed_secrets is not None
    return secret_box().open(message.sealed_secrets)


def token_of(message: OutboxMessage) -> str:
    """The token at the end of the link the email carries."""
    return str(secrets_of(message)["link"]).rsplit("/", 1)[1]


def last_token(db: Session, user: OccupierUser, template: str = "app_invitation") -> str:
    return token_of(mails(db, user.id, template)[-1])


def events(db: Session, action: str | None = None, target: OccupierUser | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.id)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    if target is not None:
        stmt = stmt.where(AuditEvent.target_id == str(target.id))
    return list(db.scalars(stmt))


def account_actions(db: Session, user: OccupierUser) -> list[str]:
    return [e.action for e in events(db, target=user) if e.action.startswith("app_account.")]


def open_sessions(db: Session, account: AppAccount) -> list[AppSession]:
    db.expire_all()
    return list(
        db.scalars(
            select(AppSession).where(AppSession.account_id == account.id, AppSession.revoked_at.is_(None))
        )
    )


def reload(db: Session, account: AppAccount) -> AppAccount:
    db.expire_all()
    found = db.get(AppAccount, account.id)
    assert found is not None
    return found
