"""Console pages for app accounts (portal and mobile app): the "User account" section of the user details
pane, its actions, and the optional "User account" step of the add-user wizard.

Every answer is the details pane (swapped into ``#user-detail`` for htmx, the whole Users tab without it);
the force-reset confirmation is a dialog whose link leads to the same confirmation as a pane.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from occupant.accounts import service
from occupant.accounts.models import AccountRole, AccountStatus, App, AppAccount, InviteState
from occupant.accounts.schemas import AccountSetUp
from occupant.authz.actor import Actor
from occupant.kit.errors import FieldErrors, NotFound
from occupant.occupiers.models import Occupier
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
    show_details,
    show_pane,
    user_actions,
)
from occupant.web import forms
from occupant.web.deps import ConsoleDb, StaffContext, console, form_data
from occupant.web.forms import Form
from occupant.web.render import FLASH_MESSAGES, templates
from occupant.web.wizard import Step

router = APIRouter(include_in_schema=False)

BASE = "/occupiers/{occupier_id:int}/users/{user_id:int}/account"
FIELDS = ("role", "invite_portal", "invite_mobile_app")
ROLE_CHOICES = [
    ("user", "User: sees and edits their own details"),
    ("admin", "Admin: manages the occupier's users in the portal"),
]
APP_PATHS = {"portal": App.PORTAL, "mobile-app": App.MOBILE_APP}

# The outcome messages and field labels of these pages, registered with the console's.
FLASH_MESSAGES.update(
    {
        "account_set_up": "The user account was saved.",
        "account_invited": "The invitation is on its way by email.",
        "account_invitation_resent": "A new invitation is on its way by email; the old link no longer works.",
        "account_password_reset_sent": "A password-reset link is on its way by email.",
        "account_password_reset_forced": "The user was signed out and must choose a new password to sign in.",
        "account_welcome_sent": "The welcome email is on its way.",
        "account_deactivated": "The app account was deactivated: the user was signed out and cannot sign in.",
        "account_activated": "The app account was activated.",
        "account_role_changed": "The role was changed.",
        "user_created_invited": "The user was added; the invitation is on its way by email.",
    }
)
field_labels: dict[str, str] = templates.env.globals["field_labels"]  # type: ignore[assignment]
field_labels.update(
    {"role": "Role", "invite_portal": "Invite to the portal", "invite_mobile_app": "Invite to the mobile app"}
)
templates.env.globals["account_role_choices"] = ROLE_CHOICES


def account_actions(
    actor: Actor, occupier: Occupier, user: OccupierUser, account: AppAccount | None
) -> frozenset[str]:
    """The account actions the console offers; the actions enforce the same rules, this hides what would
    fail. None while the occupier decommissions, the user is busy or deactivated, or without permission;
    invitations only to the apps the occupier offers."""
    if "edit" not in user_actions(actor, occupier, user) or user.status == UserStatus.DEACTIVATED:
        return frozenset()
    if account is None:
        return frozenset({"set_up"} if occupier.apps_offered else set())
    offered = {"role"}
    if account.status == AccountStatus.DEACTIVATED:
        return frozenset(offered | {"activate"})
    if occupier.portal_offered and account.portal == InviteState.NOT_INVITED:
        offered.add("invite_portal")
    if occupier.mobile_app_offered and account.mobile_app == InviteState.NOT_INVITED:
        offered.add("invite_mobile_app")
    if account.status == AccountStatus.AWAITING_SIGN_IN:
        offered |= {"resend", "welcome", "deactivate"}
    elif account.status == AccountStatus.ACTIVE:
        offered |= {"password_reset", "force_reset", "welcome", "deactivate"}
    return frozenset(offered)


def section_context(db: Session, actor: Actor, occupier: Occupier, user: OccupierUser) -> dict[str, Any]:
    """What the User account section of the details pane shows: the account and the actions offered."""
    account = service.account_of(db, user)
    return {
        "account": account,
        "account_actions": account_actions(actor, occupier, user, account),
        "account_form": Form(values={"role": str(account.role) if account is not None else "user"}),
    }


def _setup_values(data: FormData) -> dict[str, Any]:
    return {
        "role": forms.text(data, "role") or "user",
        "invite_portal": forms.checkbox(data, "invite_portal"),
        "invite_mobile_app": forms.checkbox(data, "invite_mobile_app"),
    }


# --- set up, invite, role --------------------------------------------------------------------------


@router.post(BASE + "/set-up")
def set_up(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    """The role and the first invitations of a user without an account."""
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    values = _setup_values(data)
    try:
        wanted = forms.parse(AccountSetUp, values)
        service.set_up_account(
            db,
            user,
            role=AccountRole(wanted.role),
            invite_portal=wanted.invite_portal,
            invite_mobile_app=wanted.invite_mobile_app,
            actor=ctx.actor,
        )
    except FieldErrors as exc:
        db.rollback()
        form = Form(values={k: ("on" if v is True else v) for k, v in values.items()}).add_errors(exc)
        return show_details(request, db, ctx, occupier, user, {"account_form": form}, status_code=422)
    invited = values["invite_portal"] or values["invite_mobile_app"]
    return after_change(request, db, ctx, occupier, user, "account_invited" if invited else "account_set_up")


@router.post(BASE + "/invite/{app_path}")
def invite(
    request: Request,
    occupier_id: int,
    user_id: int,
    app_path: str,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    app = APP_PATHS.get(app_path)
    if app is None:
        raise NotFound()
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    service.invite(db, user, app, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "account_invited")


@router.post(BASE + "/role")
def change_role(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    role = forms.text(data, "role")
    if role not in {r.value for r in AccountRole}:
        form = Form(values={"role": role}).add_errors(
            FieldErrors.single("role", "invalid_choice", "Choose admin or user.")
        )
        return show_details(request, db, ctx, occupier, user, {"account_form": form}, status_code=422)
    service.change_role(db, user, AccountRole(role), actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "account_role_changed")


# --- invitation, password, welcome -----------------------------------------------------------------


@router.post(BASE + "/resend")
def resend(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    service.resend_invitation(db, user, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "account_invitation_resent")


@router.post(BASE + "/password-reset")
def password_reset(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    service.send_password_reset(db, user, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "account_password_reset_sent")


@router.get(BASE + "/force-password-reset")
def confirm_force_reset(
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
        raise NotFound("This user has no app account.")
    return show_pane(request, db, ctx, occupier, "accounts/_confirm_force_reset.html", {"user": user})


@router.post(BASE + "/force-password-reset")
def force_reset(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    service.force_password_reset(db, user, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "account_password_reset_forced")


@router.post(BASE + "/welcome")
def welcome(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    service.send_welcome(db, user, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "account_welcome_sent")


# --- deactivate / activate -------------------------------------------------------------------------


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
    service.deactivate_account(db, user, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "account_deactivated")


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
    service.activate_account(db, user, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "account_activated")


# --- the add-user wizard's User account step ------------------------------------------------------------


def _ticked(values: dict[str, Any], name: str) -> bool:
    return values.get(name) in ("on", "true", "1", "yes")


def _wizard_input(values: dict[str, Any]) -> AccountSetUp:
    return forms.parse(
        AccountSetUp,
        {
            "role": values.get("role") or "user",
            "invite_portal": _ticked(values, "invite_portal"),
            "invite_mobile_app": _ticked(values, "invite_mobile_app"),
        },
    )


def _wizard_check(values: dict[str, Any]) -> FieldErrors | None:
    try:
        _wizard_input(values)
    except FieldErrors as exc:
        return exc
    return None


def _wizard_create(db: Session, user: OccupierUser, values: dict[str, Any], actor: Actor) -> str | None:
    wanted = _wizard_input(values)
    if wanted.role == AccountRole.USER and not (wanted.invite_portal or wanted.invite_mobile_app):
        return None  # nothing chosen: the user stays without an account (not invited)
    service.set_up_account(
        db,
        user,
        role=AccountRole(wanted.role),
        invite_portal=wanted.invite_portal,
        invite_mobile_app=wanted.invite_mobile_app,
        actor=actor,
    )
    return "user_created_invited" if wanted.invite_portal or wanted.invite_mobile_app else None


def _wizard_defaults(_subject: NewUserSubject) -> dict[str, Any]:
    return {"role": "user", "invite_portal": "", "invite_mobile_app": ""}


add_wizard_step(
    WizardStepAction(
        step=Step(
            "account",
            "User account",
            "accounts/_wizard_step.html",
            FIELDS,
            applies=lambda subject: subject.occupier.apps_offered,
        ),
        defaults=_wizard_defaults,
        check=_wizard_check,
        create=_wizard_create,
    ),
    after="groups",
)
add_detail_section(DetailSection("accounts/_section.html", section_context))
