"""Request plumbing shared by pages and the API: the database session, and who is asking."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from occupant.authz.actor import Actor
from occupant.kit.errors import NotAuthenticated
from occupant.kit.runtime import get_read_session_factory, get_session_factory
from occupant.kit.security import tokens_equal
from occupant.staff import service as staff_service
from occupant.staff.models import StaffSession, StaffUser

SESSION_COOKIE = "occupant_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_db(request: Request) -> Iterator[Session]:
    """One session per request; the request commits when the handler returns without an error."""
    factory = get_read_session_factory() if request.method in SAFE_METHODS else get_session_factory()
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# The request's session for page handlers; function scope: it commits before the response is sent.
ConsoleDb = Annotated[Session, Depends(get_db, scope="function")]


def api_actor(request: Request, db: Session = Depends(get_db, scope="function")) -> Actor:
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
    """The signed-in staff member of a console request.

    ``name``, ``role`` and ``csrf_token`` are copied out of the rows so that error pages can still show
    them after the request's transaction has been rolled back.
    """

    staff: StaffUser
    session: StaffSession
    actor: Actor
    name: str
    csrf_token: str


class SignInRequired(Exception):
    """Raised by page dependencies; the app answers with a redirect to the sign-in page."""


class CsrfFailed(Exception):
    """An unsafe request without the session's CSRF token; the app answers 403."""


async def form_data(request: Request) -> FormData:
    """The parsed form body (read once; Starlette caches it on the request)."""
    return await request.form()


def staff_context(request: Request, db: Session = Depends(get_db, scope="function")) -> StaffContext:
    """The signed-in staff member, from the session cookie. Raises SignInRequired."""
    resolved = staff_service.resolve_session(db, request.cookies.get(SESSION_COOKIE))
    if resolved is None:
        raise SignInRequired()
    staff, staff_session = resolved
    ctx = StaffContext(
        staff=staff,
        session=staff_session,
        actor=staff_service.actor_for_staff(staff),
        name=staff.name,
        csrf_token=staff_session.csrf_token,
    )
    request.state.actor = ctx.actor
    request.state.staff_ctx = ctx
    return ctx


async def console(request: Request, ctx: StaffContext = Depends(staff_context)) -> StaffContext:
    """A console request: signed in, and for unsafe methods carrying the session's CSRF token.

    htmx sends the token in the ``X-CSRF-Token`` header (``hx-headers`` on ``<body>``); plain forms send
    the hidden field ``csrf_token``.
    """
    if request.method not in SAFE_METHODS:
        await check_csrf(request, ctx.csrf_token)
    return ctx


async def check_csrf(request: Request, expected: str) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not sent or not expected or not tokens_equal(sent, expected):
        raise CsrfFailed()
