"""An occupier user's own details: view and edit their basic details (not the email), and see their
Wi-Fi Secure account with the devices connected now. Occupier admins have the same page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from occupant.kit.errors import FieldErrors
from occupant.users import service as users
from occupant.users.schemas import OwnDetailsUpdate
from occupant.web import forms
from occupant.web.deps import ConsoleDb, form_data
from occupant.web.forms import Form
from occupant.web.render import redirect
from occupant.wifi import queries as wifi_queries
from occupant.wifi import service as wifi

from .account import remember_language
from .deps import PortalContext, portal
from .render import add_errors, render

router = APIRouter(prefix="/portal/me", include_in_schema=False)

OWN_FIELDS = ("first_name", "last_name", "job_title", "mobile", "direct_line", "language")


def _wifi_context(db: Session, ctx: PortalContext) -> dict[str, Any]:
    account = wifi.account_of(db, ctx.user)
    return {
        "wifi": account,
        "wifi_homesite": wifi_queries.homesite(db, account),
        "wifi_devices": wifi_queries.connected_devices(db, ctx.user) if account is not None else [],
    }


@router.get("")
def my_details(request: Request, db: ConsoleDb, ctx: PortalContext = Depends(portal)) -> Response:
    """My details, my Wi-Fi Secure account and the devices connected with it now."""
    context = {"user": ctx.user, "account": ctx.account, "section": "me", **_wifi_context(db, ctx)}
    return render(request, "me/detail.html", context)


def _edit_page(request: Request, ctx: PortalContext, form: Form, *, status_code: int = 200) -> Response:
    context = {"user": ctx.user, "form": form, "section": "me"}
    return render(request, "me/edit.html", context, status_code=status_code)


@router.get("/edit")
def edit_my_details_form(request: Request, db: ConsoleDb, ctx: PortalContext = Depends(portal)) -> Response:
    values = {name: getattr(ctx.user, name) or "" for name in OWN_FIELDS}
    return _edit_page(request, ctx, Form(values=values))


@router.post("/edit")
def edit_my_details(
    request: Request,
    db: ConsoleDb,
    ctx: PortalContext = Depends(portal),
    data: FormData = Depends(form_data),
) -> Response:
    form = Form(values={name: forms.text(data, name) for name in OWN_FIELDS})
    try:
        changes = forms.parse(OwnDetailsUpdate, {name: form.values[name] or None for name in OWN_FIELDS})
        old_language = ctx.user.language
        users.update_own_details(db, ctx.user, changes, actor=ctx.actor)
    except FieldErrors as exc:
        db.rollback()
        add_errors(request, form, exc)
        return _edit_page(request, ctx, form, status_code=422)
    response = redirect(request, "/portal/me", flash="portal_details_saved")
    if ctx.user.language != old_language:  # the page follows the language just chosen
        remember_language(response, ctx.user.language)
    return response
