"""Who is asking, on a portal page: the signed-in occupier user, from the ``occupant_portal`` cookie.

The session is checked on every request, so a deactivated or deleted user, or a revoked session, is
sent to the sign-in page at their next click. Unsafe methods carry the session's CSRF token (the
console's check: the ``X-CSRF-Token`` header for htmx, the ``csrf_token`` field for plain forms).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from occupant.accounts import service as accounts
from occupant.accounts.models import AccountRole, App, AppAccount, AppSession
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, require
from occupant.users.models import OccupierUser
from occupant.web.deps import SAFE_METHODS, check_csrf, get_db

PORTAL_COOKIE = "occupant_portal"
PREFIX = "/portal"


@dataclass
class PortalContext:
    """The signed-in occupier user of a portal request.

    ``name``, ``language``, ``csrf_token`` and the flags are copied out of the rows, so that an error page
    can still show them after the request's transaction has been rolled back.
    """

    account: AppAccount
    user: OccupierUser
    session: AppSession
    actor: Actor
    user_id: int
    name: str
    occupier_name: str
    language: str
    csrf_token: str
    is_admin: bool
    must_change_password: bool


class PortalSignInRequired(Exception):
    """No valid portal session: the app answers with a redirect to the portal's sign-in page."""


class PasswordChangeRequired(Exception):
    """Signed in, but a new password must be chosen first: the app redirects to the change-password page."""


def current(request: Request, db: Session) -> PortalContext | None:
    """The signed-in user of this request, or None (resolved once per request)."""
    if hasattr(request.state, "portal_ctx"):
        cached: PortalContext | None = request.state.portal_ctx
        return cached
    resolved = accounts.resolve_session(db, request.cookies.get(PORTAL_COOKIE), App.PORTAL)
    ctx = None
    if resolved is not None:
        account, user, row = resolved
        ctx = PortalContext(
            account=account,
            user=user,
            session=row,
            actor=accounts.actor_for_account(account, user),
            user_id=user.id,
            name=user.full_name,
            occupier_name=user.occupier.name,
            language=user.language,
            csrf_token=row.csrf_token or "",
            is_admin=account.role == AccountRole.ADMIN,
            must_change_password=account.must_change_password,
        )
        request.state.actor = ctx.actor
    request.state.portal_ctx = ctx
    return ctx


def _signed_in(request: Request, db: Session) -> PortalContext:
    ctx = current(request, db)
    if ctx is None:
        raise PortalSignInRequired()
    return ctx


async def portal_any(request: Request, db: Session = Depends(get_db, scope="function")) -> PortalContext:
    """Signed in (even when a new password must be chosen first), with CSRF checked on unsafe methods."""
    ctx = _signed_in(request, db)
    if request.method not in SAFE_METHODS:
        await check_csrf(request, ctx.csrf_token)
    return ctx


async def portal(ctx: PortalContext = Depends(portal_any)) -> PortalContext:
    """A portal page: signed in, with no new password pending."""
    if ctx.must_change_password:
        raise PasswordChangeRequired()
    return ctx


async def portal_admin(ctx: PortalContext = Depends(portal)) -> PortalContext:
    """An occupier admin's page (user management); occupier users are refused (403)."""
    require(ctx.actor, Perm.MANAGE_USERS)
    return ctx
