"""Console pages for Wi-Fi Secure: the Wi-Fi section of the user details pane, its forms and confirmations,
and the optional Wi-Fi step of the add-user wizard.

Every pane is swapped into ``#user-detail`` for htmx and is a whole page at the same URL without it; the
confirmations are dialogs whose links lead to the same confirmation as a pane without JavaScript.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from occupant.authz.actor import Actor
from occupant.kit.errors import FieldErrors, NotFound
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.users import service as users
from occupant.users.models import OccupierUser, UserStatus
from occupant.users.pages import (
    DetailSection,
    NewUserSubject,
    WizardStepAction,
    add_detail_section,
    add_wizard_step,
    after_change,
    load_occupier,
    load_user,
    show_pane,
    user_actions,
)
from occupant.web import forms
from occupant.web.deps import ConsoleDb, StaffContext, console, form_data
from occupant.web.forms import Form
from occupant.web.wizard import Step
from occupant.wifi import queries, service
from occupant.wifi.models import WifiAccount, WifiStatus
from occupant.wifi.schemas import WifiCreate, WifiUpdate

router = APIRouter(include_in_schema=False)

BASE = "/occupiers/{occupier_id:int}/users/{user_id:int}/wifi"
FIELDS = ("homesite_id", "device_limit")


def wifi_actions(
    actor: Actor, occupier: Occupier, user: OccupierUser, account: WifiAccount | None
) -> frozenset[str]:
    """The Wi-Fi actions the console offers; the actions enforce the same rules, this hides what would fail.

    None while the occupier decommissions or without permission; while the user is busy only clearing a
    stale session, which is harmless at any time.
    """
    offered_for_user = user_actions(actor, occupier, user)
    if not offered_for_user:
        return frozenset()
    offered = {"clear_session"} if account is not None else set()
    if "edit" not in offered_for_user:  # busy: an action (e.g. provisioning) is under way
        return frozenset(offered)
    if account is None:
        if user.status != UserStatus.DEACTIVATED:
            offered.add("create")
        return frozenset(offered)
    offered.add("settings")
    if account.status == WifiStatus.DEACTIVATED:
        if user.status != UserStatus.DEACTIVATED:
            offered.add("activate")
    else:
        offered |= {"deactivate", "reset_password"}
    return frozenset(offered)


def section_context(db: Session, actor: Actor, occupier: Occupier, user: OccupierUser) -> dict[str, Any]:
    """What the Wi-Fi section of the details pane shows: the account, its homesite, connected devices."""
    account = service.account_of(db, user)
    return {
        "wifi": account,
        "wifi_homesite": queries.homesite(db, account) if account is not None else None,
        "wifi_devices": queries.connected_devices(db, user) if account is not None else [],
        "wifi_actions": wifi_actions(actor, occupier, user, account),
    }


def _max_devices(db: Session, occupier: Occupier) -> int:
    operator = db.get(Operator, occupier.operator_id)
    return operator.wifi_max_devices if operator is not None else 1


def _pane(
    request: Request,
    db: Session,
    ctx: StaffContext,
    occupier: Occupier,
    user: OccupierUser,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    full = {"user": user, "wifi_max": _max_devices(db, occupier), **context}
    return show_pane(request, db, ctx, occupier, template, full, status_code=status_code)


def _form_values(data: FormData) -> dict[str, str]:
    return {name: forms.text(data, name) for name in FIELDS}


def _homesite_required(values: dict[str, Any]) -> None:
    if not values.get("homesite_id"):
        raise FieldErrors.single("homesite_id", "required", "Choose the Wi-Fi homesite.")


def _create_input(values: dict[str, Any]) -> WifiCreate:
    _homesite_required(values)
    return forms.parse(
        WifiCreate, {"homesite_id": values["homesite_id"], "device_limit": values.get("device_limit") or None}
    )


def _new_account_defaults(occupier: Occupier) -> dict[str, Any]:
    """The occupier's primary site (else its first) and its default device limit."""
    homesite = occupier.primary_site_id or (occupier.sites[0].id if occupier.sites else "")
    return {"homesite_id": homesite, "device_limit": occupier.default_wifi_device_limit}


# --- create ----------------------------------------------------------------------------------------


@router.get(BASE + "/new")
def create_form(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id)
    users.ensure_changeable(user)
    if service.account_of(db, user) is not None:
        raise service.WifiAccountExists()
    form = Form(values=_new_account_defaults(occupier))
    return _pane(request, db, ctx, occupier, user, "wifi/_create.html", {"form": form})


@router.post(BASE + "/new")
def create(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    form = Form(values=_form_values(data))
    try:
        wanted = _create_input(form.values)
        service.create_wifi_account(
            db, user, homesite_id=wanted.homesite_id, device_limit=wanted.device_limit, actor=ctx.actor
        )
    except FieldErrors as exc:
        db.rollback()
        form.add_errors(exc)
        return _pane(request, db, ctx, occupier, user, "wifi/_create.html", {"form": form}, status_code=422)
    return after_change(request, db, ctx, occupier, user, "wifi_created")


# --- homesite and device limit ------------------------------------------------------------------------


@router.get(BASE + "/edit")
def settings_form(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id)
    users.ensure_changeable(user)
    account = service.account_of(db, user)
    if account is None:
        raise service.NoWifiAccount()
    form = Form(values={"homesite_id": account.homesite_id, "device_limit": account.device_limit})
    return _pane(request, db, ctx, occupier, user, "wifi/_edit.html", {"form": form, "wifi": account})


@router.post(BASE + "/edit")
def save_settings(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    form = Form(values=_form_values(data))
    try:
        _homesite_required(form.values)
        wanted = forms.parse(WifiUpdate, {name: form.values[name] or None for name in FIELDS})
        service.update_wifi_account(
            db, user, homesite_id=wanted.homesite_id, device_limit=wanted.device_limit, actor=ctx.actor
        )
    except FieldErrors as exc:
        db.rollback()
        form.add_errors(exc)
        context = {"form": form, "wifi": service.account_of(db, user)}
        return _pane(request, db, ctx, occupier, user, "wifi/_edit.html", context, status_code=422)
    return after_change(request, db, ctx, occupier, user, "wifi_saved")


# --- deactivate / activate / reset password ----------------------------------------------------------------


@router.post(BASE + "/deactivate")
def deactivate(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    service.deactivate_wifi(db, user, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "wifi_deactivated")


@router.post(BASE + "/activate")
def activate(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    service.activate_wifi(db, user, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "wifi_activated")


@router.get(BASE + "/reset-password")
def confirm_reset_password(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    """The confirmation as a pane (the dialog's fallback without JavaScript)."""
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id)
    users.ensure_changeable(user)
    if service.account_of(db, user) is None:
        raise service.NoWifiAccount()
    return _pane(request, db, ctx, occupier, user, "wifi/_confirm_reset.html", {})


@router.post(BASE + "/reset-password")
def reset_password(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    service.reset_wifi_password(db, user, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "wifi_password_reset")


# --- connected devices -------------------------------------------------------------------------------------


@router.get(BASE + "/sessions/{session_id:int}/clear")
def confirm_clear_session(
    request: Request,
    occupier_id: int,
    user_id: int,
    session_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id)
    device = next((d for d in queries.connected_devices(db, user) if d.id == session_id), None)
    if device is None:
        raise NotFound("No such open session.")
    return _pane(request, db, ctx, occupier, user, "wifi/_confirm_clear.html", {"device": device})


@router.post(BASE + "/sessions/{session_id:int}/clear")
def clear_session(
    request: Request,
    occupier_id: int,
    user_id: int,
    session_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    service.clear_session(db, user, session_id, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "wifi_session_cleared")


# --- the add-user wizard's Wi-Fi step -----------------------------------------------------------------------


def _wants_wifi(values: dict[str, Any]) -> bool:
    return values.get("create_wifi") in ("on", "true", "1", "yes")


def _wizard_check(values: dict[str, Any]) -> FieldErrors | None:
    if not _wants_wifi(values):
        return None
    try:
        _create_input(values)
    except FieldErrors as exc:
        return exc
    return None


def _wizard_create(db: Session, user: OccupierUser, values: dict[str, Any], actor: Actor) -> str | None:
    if not _wants_wifi(values):
        return None
    wanted = _create_input(values)
    service.create_wifi_account(
        db, user, homesite_id=wanted.homesite_id, device_limit=wanted.device_limit, actor=actor
    )
    return "user_created_with_wifi"


def _wizard_defaults(subject: NewUserSubject) -> dict[str, Any]:
    return {"create_wifi": "", **_new_account_defaults(subject.occupier)}


add_wizard_step(
    WizardStepAction(
        step=Step(
            "wifi",
            "Wi-Fi",
            "wifi/_wizard_step.html",
            ("create_wifi", *FIELDS),
            applies=lambda subject: bool(subject.occupier.sites),
        ),
        defaults=_wizard_defaults,
        check=_wizard_check,
        create=_wizard_create,
    ),
    after="details",
)
add_detail_section(DetailSection("wifi/_section.html", section_context))
