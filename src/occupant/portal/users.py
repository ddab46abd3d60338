"""User management for occupier admins: the list of the occupier's users (filtered as you type), a
user's details, delete (with a confirmation), and resending an invitation. Adding and editing are in
``portal.user_forms``.

Every user is read through ``authz.scope`` with the admin's actor: another occupier's user is not found.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from occupant.accounts import queries as account_queries
from occupant.accounts import service as accounts
from occupant.accounts.errors import CannotDeleteAdmin
from occupant.accounts.models import AccountRole, AccountStatus, AppAccount
from occupant.authz.scope import get_user
from occupant.kit.errors import PermissionDenied
from occupant.occupiers.models import Occupier
from occupant.users import export, queries, service
from occupant.users.filters import UserFilter
from occupant.users.models import OccupierUser
from occupant.web import forms
from occupant.web.deps import ConsoleDb
from occupant.web.render import hx_target, redirect
from occupant.wifi import queries as wifi_queries
from occupant.wifi import service as wifi

from .deps import PortalContext, portal_admin
from .render import render

router = APIRouter(prefix="/portal/users", include_in_schema=False)

PAGE_SIZE = 50


def load_user(db: Session, ctx: PortalContext, user_id: int, *, for_update: bool = False) -> OccupierUser:
    """A user of the admin's occupier (else NotFound)."""
    return get_user(db, ctx.actor, user_id, for_update=for_update)


def occupier_of(ctx: PortalContext) -> Occupier:
    return ctx.user.occupier


def offered(
    ctx: PortalContext,
    occupier: Occupier,
    user: OccupierUser | None = None,
    account: AppAccount | None = None,
) -> frozenset[str]:
    """What the portal offers to do: nothing while the occupier is decommissioned; no edit while the user
    is busy; no delete of an admin or of oneself. The actions enforce the same; this hides what would fail.
    """
    if occupier.is_decommissioning:
        return frozenset()
    actions = {"add"}
    if user is None:
        return frozenset(actions)
    if not user.is_busy:
        actions.add("edit")
        is_admin = account is not None and account.role == AccountRole.ADMIN
        if not is_admin and user.id != ctx.user_id:
            actions.add("delete")
    if account is not None and account.status == AccountStatus.AWAITING_SIGN_IN:
        actions.add("resend")
    return frozenset(actions)


def _list_context(
    db: Session, ctx: PortalContext, q: str, cursor: str | None, *, with_count: bool = True
) -> dict[str, Any]:
    occupier = occupier_of(ctx)
    page = queries.list_users(
        db, ctx.actor, q=q or None, occupier_id=occupier.id, cursor=cursor, limit=PAGE_SIZE
    )
    ids = [u.id for u in page.items]
    account_of = account_queries.accounts_by_user(db, ids)
    return {
        "users": page.items,
        "next_cursor": page.next_cursor,
        "total": queries.count_users(db, ctx.actor, occupier_id=occupier.id) if with_count else None,
        "q": q,
        "occupier": occupier,
        "wifi_of": wifi_queries.accounts_by_user(db, ids),
        "account_of": account_of,
        "actions_of": {u.id: offered(ctx, occupier, u, account_of.get(u.id)) for u in page.items},
        "list_actions": offered(ctx, occupier),
        "section": "users",
    }


@router.get("")
def user_management(
    request: Request,
    db: ConsoleDb,
    q: str = "",
    cursor: str | None = None,
    ctx: PortalContext = Depends(portal_admin),
) -> Response:
    """The occupier's users in name order, filtered by any part of a name or email as you type."""
    q = q.strip()[:200]
    target = hx_target(request)
    context = _list_context(db, ctx, q, cursor, with_count=target != "user-more")
    return render(
        request,
        "users/list.html",
        context,
        partial={"user-results": "users/_results.html", "user-more": "users/_rows.html"},
    )


@router.get("/export.csv")
def download_users(db: ConsoleDb, q: str = "", ctx: PortalContext = Depends(portal_admin)) -> Response:
    """Download users: the occupier's users as CSV — those the list's filter shows, when there is one."""
    criteria = forms.parse(UserFilter, {"occupier_id": occupier_of(ctx).id, "q": q.strip()[:200] or None})
    return export.download(export.start_export(db, criteria, actor=ctx.actor))


def detail_context(db: Session, ctx: PortalContext, user: OccupierUser) -> dict[str, Any]:
    account = accounts.account_of(db, user)
    wifi_account = wifi.account_of(db, user)
    occupier = user.occupier
    return {
        "user": user,
        "occupier": occupier,
        "account": account,
        "wifi": wifi_account,
        "wifi_homesite": wifi_queries.homesite(db, wifi_account),
        "actions": offered(ctx, occupier, user, account),
        "is_me": user.id == ctx.user_id,
        "section": "users",
    }


@router.get("/{user_id:int}")
def user_details(
    request: Request, user_id: int, db: ConsoleDb, ctx: PortalContext = Depends(portal_admin)
) -> Response:
    """A user's details, read-only: basic details, Wi-Fi account, user account (with "Resend invite")."""
    user = load_user(db, ctx, user_id)
    return render(request, "users/detail.html", detail_context(db, ctx, user))


# --- delete -------------------------------------------------------------------------------------------


@router.get("/{user_id:int}/delete")
def confirm_delete(
    request: Request, user_id: int, db: ConsoleDb, ctx: PortalContext = Depends(portal_admin)
) -> Response:
    """The confirmation: a dialog for htmx (``#dialog-slot``), a page without JavaScript."""
    user = load_user(db, ctx, user_id)
    service.ensure_changeable(user)
    context = detail_context(db, ctx, user)
    if "delete" not in context["actions"]:  # the action refuses these too; the page is not offered
        if user.id == ctx.user_id:
            raise PermissionDenied("You cannot delete yourself.")
        raise CannotDeleteAdmin()
    return render(request, "users/delete.html", context, partial={"dialog-slot": "users/_delete_dialog.html"})


@router.post("/{user_id:int}/delete")
def delete_user(
    request: Request, user_id: int, db: ConsoleDb, ctx: PortalContext = Depends(portal_admin)
) -> Response:
    """Delete the user permanently (not an admin: the action refuses with ``cannot_delete_admin``)."""
    user = load_user(db, ctx, user_id, for_update=True)
    service.delete_user(db, user, actor=ctx.actor)
    return redirect(request, "/portal/users", flash="portal_user_deleted")


# --- resend invitation ----------------------------------------------------------------------------------


@router.post("/{user_id:int}/resend")
def resend_invitation(
    request: Request, user_id: int, db: ConsoleDb, ctx: PortalContext = Depends(portal_admin)
) -> Response:
    """A new invitation link by email (the user has not signed in yet); the previous link stops working."""
    user = load_user(db, ctx, user_id, for_update=True)
    accounts.resend_invitation(db, user, actor=ctx.actor)
    return redirect(request, f"/portal/users/{user.id}", flash="portal_invite_resent")
