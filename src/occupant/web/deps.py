"""Request plumbing shared by pages and the API: the database session, and who is asking."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.kit.errors import NotAuthenticated
from occupant.kit.runtime import get_session_factory
from occupant.staff import service as staff_service
from occupant.staff.models import StaffSession, StaffUser

SESSION_COOKIE = "occupant_session"


def get_db() -> Iterator[Session]:
    """One session per request; the request commits when the handler returns without an error."""
    session = get_session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def api_actor(request: Request, db: Session = Depends(get_db)) -> Actor:
    """The actor behind ``Authorization: Bearer <API key>``."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated()
    key = staff_service.resolve_api_key(db, token.strip())
    if key is None:
        raise NotAuthenticated("The API key is not valid or has been revoked.")
    actor = staff_service.actor_for_api_key(key)
    request.state.actor = actor
    return actor


@dataclass
class StaffContext:
    staff: StaffUser
    session: StaffSession
    actor: Actor

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token


class SignInRequired(Exception):
    """Raised by page dependencies; the app answers with a redirect to the sign-in page."""


def staff_context(request: Request, db: Session = Depends(get_db)) -> StaffContext:
    resolved = staff_service.resolve_session(db, request.cookies.get(SESSION_COOKIE))
    if resolved is None:
        raise SignInRequired()
    staff, staff_session = resolved
    ctx = StaffContext(staff=staff, session=staff_session, actor=staff_service.actor_for_staff(staff))
    request.state.actor = ctx.actor
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        _check_csrf(request, ctx)
    return ctx


class CsrfFailed(Exception):
    pass


def _check_csrf(request: Request, ctx: StaffContext) -> None:
    from occupant.kit.security import tokens_equal

    sent = request.headers.get("x-csrf-token") or request.state.__dict__.get("form_csrf")
    if not sent or not tokens_equal(sent, ctx.csrf_token):
        raise CsrfFailed()
