"""Staff, console sessions and API keys for the benchmarks, made with the real service actions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bench.build import DatasetInfo
from occupant.authz.actor import Actor, Role
from occupant.kit.db import transaction
from occupant.staff import service as staff_service
from occupant.staff.models import StaffUser

STAFF_EMAIL = "bench-admin@workspace-europe.example"
STAFF_PASSWORD = "bench password, not a secret"


def staff_admin(factory: sessionmaker[Session], info: DatasetInfo) -> StaffUser:
    with transaction(factory) as session:
        staff = session.scalars(select(StaffUser).where(StaffUser.email_key == STAFF_EMAIL)).first()
        if staff is None:
            staff = staff_service.create_staff(
                session,
                actor=Actor.system(info.operator_id),
                email=STAFF_EMAIL,
                name="Bench Admin",
                role=Role.OPERATOR_ADMIN,
                site_ids=[],
                password=STAFF_PASSWORD,
            )
        session.expunge(staff)
        return staff


def console_cookie(factory: sessionmaker[Session], info: DatasetInfo) -> str:
    """A signed-in console session's cookie value."""
    staff_admin(factory, info)
    with transaction(factory) as session:
        _staff_session, token = staff_service.sign_in(
            session, email=STAFF_EMAIL, password=STAFF_PASSWORD, address=None
        )
    return token


def api_key(factory: sessionmaker[Session], info: DatasetInfo) -> tuple[int, str]:
    """A new operator API key (id, bearer token); revoke it with :func:`revoke_api_key` afterwards."""
    staff = staff_admin(factory, info)
    with transaction(factory) as session:
        key, token = staff_service.create_api_key(
            session, actor=staff_service.actor_for_staff(session.merge(staff, load=True)), name="bench"
        )
        return key.id, token


def revoke_api_key(factory: sessionmaker[Session], info: DatasetInfo, key_id: int) -> None:
    with transaction(factory) as session:
        staff_service.revoke_api_key(session, key_id, actor=Actor.system(info.operator_id))
