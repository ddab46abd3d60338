"""Adding and editing a user in the portal: one page with three sections — basic details, the Wi-Fi
Secure account, the user account (role, invitations to the portal and the mobile app).

Every field of every section is checked before anything is written; then the actions run in one
transaction, in an order that keeps the user changeable: the user, their app account, then Wi-Fi
(whose provisioning makes the user busy). A field error from any action undoes them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from occupant.accounts import service as accounts
from occupant.accounts.models import AccountRole, AccountStatus, App, AppAccount, InviteState
from occupant.authz.actor import Actor
from occupant.kit.errors import Conflict, FieldErrors, OccupantError, PreconditionFailed
from occupant.kit.validation import normalize_email, normalize_phone
from occupant.occupiers.models import Occupier
from occupant.users import service
from occupant.users.models import OccupierUser, UserStatus
from occupant.users.schemas import UserCreate, UserUpdate
from occupant.web import forms
from occupant.web.deps import ConsoleDb, form_data
from occupant.web.forms import Form
from occupant.web.render import redirect
from occupant.wifi import service as wifi
from occupant.wifi.models import WifiAccount, WifiStatus
from occupant.wifi.schemas import WifiCreate

from .deps import PortalContext, portal_admin
from .render import add_errors, error_text, render
from .users import load_user, occupier_of

router = APIRouter(prefix="/portal/users", include_in_schema=False)
M = TypeVar("M", UserCreate, UserUpdate)

BASIC_FIELDS = ("first_name", "last_name", "job_title", "mobile", "direct_line", "language")
CHECKBOXES = ("wifi", "invite_portal", "invite_mobile_app")
OTHER_FIELDS = ("homesite_id", "device_limit", "role")


@dataclass
class Existing:
    """What an edited user already has (nothing, when adding)."""

    user: OccupierUser | None = None
    account: AppAccount | None = None
    wifi: WifiAccount | None = None
    is_me: bool = False

    @property
    def suspended(self) -> bool:
        """A deactivated user: only their basic details change here; Wi-Fi and invitations wait until
        operator staff reactivate them (the actions refuse them)."""
        return self.user is not None and self.user.status == UserStatus.DEACTIVATED

    @property
    def wifi_settled(self) -> WifiAccount | None:
        """The Wi-Fi account when the form may change it (not while it is being provisioned)."""
        return self.wifi if self.wifi is not None and self.wifi.status != WifiStatus.PROVISIONING else None

    def wants_wifi_terms(self, values: dict[str, Any]) -> bool:
        """The form's homesite and device limit are to be checked and applied. A deactivated user's form
        shows no Wi-Fi fields: there, only a tick (from a page shown before the deactivation) counts."""
        if self.wifi is None:
            return bool(values["wifi"])
        if self.wifi_settled is None:
            return False
        return not self.suspended or bool(values["wifi"])

    def not_invited_to(self, app: App) -> bool:
        return self.account is None or accounts.app_state(self.account, app) == InviteState.NOT_INVITED

    def can_invite(self, occupier: Occupier, app: App) -> bool:
        """The form offers an invitation to ``app``: offered by the occupier, not invited yet, and neither
        the user nor their account deactivated (the action would refuse)."""
        if not accounts.app_offered_by(occupier, app) or self.suspended or not self.not_invited_to(app):
            return False
        return self.account is None or self.account.status != AccountStatus.DEACTIVATED


def _read(data: FormData, *, with_email: bool) -> dict[str, Any]:
    values: dict[str, Any] = {name: forms.text(data, name) for name in (*BASIC_FIELDS, *OTHER_FIELDS)}
    if with_email:
        values["email"] = forms.text(data, "email")
    values.update({name: forms.checkbox(data, name) for name in CHECKBOXES})
    return values


def _page(
    request: Request,
    db: Session,
    ctx: PortalContext,
    form: Form,
    existing: Existing,
    *,
    status_code: int = 200,
) -> Response:
    occupier = occupier_of(ctx)
    account = existing.account
    context = {
        "form": form,
        "user": existing.user,
        "account": account,
        "wifi": existing.wifi,
        "is_me": existing.is_me,
        "occupier": occupier,
        "wifi_max": wifi.max_devices(db, occupier.operator_id),
        "can_invite_portal": existing.can_invite(occupier, App.PORTAL),
        "can_invite_mobile_app": existing.can_invite(occupier, App.MOBILE_APP),
        "suspended": existing.suspended,
        "section": "users",
    }
    template = "users/edit.html" if existing.user is not None else "users/add.html"
    return render(request, template, context, status_code=status_code)


def _check_wifi(values: dict[str, Any]) -> WifiCreate:
    if not values.get("homesite_id"):
        raise FieldErrors.single("homesite_id", "required", "Choose the Wi-Fi homesite.")
    return forms.parse(
        WifiCreate, {"homesite_id": values["homesite_id"], "device_limit": values.get("device_limit") or None}
    )


def _check_role(values: dict[str, Any], existing: Existing) -> AccountRole:
    if existing.is_me and existing.account is not None:
        return existing.account.role  # an admin never changes their own role
    try:
        return AccountRole(values.get("role") or "user")
    except ValueError as exc:
        raise FieldErrors.single("role", "invalid_role", "Choose a role.") from exc


def _check_contact(values: dict[str, Any], region: str | None) -> list[dict[str, str]]:
    """The email's and phone numbers' form, checked with the form (the action checks them again)."""
    errors: list[dict[str, str]] = []
    checks: list[Callable[[], object]] = [
        lambda: normalize_phone(values.get("mobile") or None, region, "mobile"),
        lambda: normalize_phone(values.get("direct_line") or None, region, "direct_line"),
    ]
    if values.get("email"):
        checks.insert(0, lambda: normalize_email(values["email"]))
    for check in checks:
        try:
            check()
        except FieldErrors as exc:
            errors.extend(exc.errors)
    return errors


def _check_all(
    request: Request, form: Form, existing: Existing, basic: Callable[[], M], region: str | None
) -> tuple[M | None, WifiCreate | None, AccountRole]:
    """Every section's fields checked, every error put on the form; nothing is written."""
    parsed: M | None = None
    terms: WifiCreate | None = None
    role = AccountRole.USER
    try:
        parsed = basic()
    except FieldErrors as exc:
        add_errors(request, form, exc)
    contact = [e for e in _check_contact(form.values, region) if e["field"] not in form.errors]
    if contact:
        add_errors(request, form, FieldErrors(contact))
    if existing.wants_wifi_terms(form.values):
        try:
            terms = _check_wifi(form.values)
        except FieldErrors as exc:
            add_errors(request, form, exc)
    try:
        role = _check_role(form.values, existing)
    except FieldErrors as exc:
        add_errors(request, form, exc)
    return parsed, terms, role


def _set_up_account(
    db: Session,
    user: OccupierUser,
    values: dict[str, Any],
    existing: Existing,
    role: AccountRole,
    actor: Actor,
) -> bool:
    """The role and the invitations ticked, when something changes; True when an invitation goes out."""
    account = existing.account
    # Apps already invited stay as they are; any other tick goes to the action, which refuses what it must
    # (an app not offered, a deactivated user or account) with a message for the form.
    invite_portal = bool(values["invite_portal"]) and existing.not_invited_to(App.PORTAL)
    invite_app = bool(values["invite_mobile_app"]) and existing.not_invited_to(App.MOBILE_APP)
    if account is None:
        needed = invite_portal or invite_app or role == AccountRole.ADMIN
    else:
        needed = invite_portal or invite_app or role != account.role
    if needed:
        accounts.set_up_account(
            db, user, role=role, invite_portal=invite_portal, invite_mobile_app=invite_app, actor=actor
        )
    return invite_portal or invite_app


def _change_wifi(
    db: Session,
    user: OccupierUser,
    values: dict[str, Any],
    existing: Existing,
    terms: WifiCreate | None,
    actor: Actor,
) -> None:
    """Create, deactivate or activate Wi-Fi, and change its homesite and device limit, as the form says."""
    account = existing.wifi_settled
    if existing.suspended and not values["wifi"]:  # the form shows no Wi-Fi fields: nothing to change
        return
    if existing.wifi is None:
        if values["wifi"] and terms is not None:
            wifi.create_wifi_account(
                db, user, homesite_id=terms.homesite_id, device_limit=terms.device_limit, actor=actor
            )
        return
    if account is None:  # being provisioned: the form shows no Wi-Fi fields
        return
    status = None
    if values["wifi"] and account.status == WifiStatus.DEACTIVATED:
        status = WifiStatus.ACTIVE
    elif not values["wifi"] and account.status != WifiStatus.DEACTIVATED:
        status = WifiStatus.DEACTIVATED
    homesite = terms.homesite_id if terms is not None and terms.homesite_id != account.homesite_id else None
    limit = terms.device_limit if terms is not None and terms.device_limit != account.device_limit else None
    if status is not None or homesite is not None or limit is not None:
        wifi.update_wifi_account(
            db, user, status=status, homesite_id=homesite, device_limit=limit, actor=actor
        )


def _conflict(request: Request, form: Form, exc: OccupantError) -> None:
    form.errors.setdefault("_form", []).append(error_text(request, exc.code, exc.message))


# --- add ----------------------------------------------------------------------------------------------


def _defaults(ctx: PortalContext, occupier: Occupier) -> dict[str, Any]:
    homesite = occupier.primary_site_id or (occupier.sites[0].id if occupier.sites else "")
    return {
        "language": ctx.language,
        "homesite_id": homesite,
        "device_limit": occupier.default_wifi_device_limit,
        "role": AccountRole.USER.value,
    }


@router.get("/new")
def add_user_form(request: Request, db: ConsoleDb, ctx: PortalContext = Depends(portal_admin)) -> Response:
    occupier = occupier_of(ctx)
    service.ensure_occupier_open(occupier)
    return _page(request, db, ctx, Form(values=_defaults(ctx, occupier)), Existing())


@router.post("/new")
def add_user(
    request: Request,
    db: ConsoleDb,
    ctx: PortalContext = Depends(portal_admin),
    data: FormData = Depends(form_data),
) -> Response:
    """Add the user, and optionally their Wi-Fi account and their user account with invitations."""
    occupier = occupier_of(ctx)
    service.ensure_occupier_open(occupier)
    form = Form(values=_read(data, with_email=True))
    existing = Existing()

    def basic() -> UserCreate:
        values = {name: form.values[name] or None for name in (*BASIC_FIELDS, "email")}
        for required in ("first_name", "last_name", "email"):
            values[required] = values[required] or ""
        values["language"] = values["language"] or "en"
        return forms.parse(UserCreate, values)

    payload, terms, role = _check_all(request, form, existing, basic, occupier.default_region)
    if form.has_errors or payload is None:
        return _page(request, db, ctx, form, existing, status_code=422)
    try:
        user = service.create_user(db, occupier, payload, actor=ctx.actor)
        invited = _set_up_account(db, user, form.values, existing, role, ctx.actor)
        _change_wifi(db, user, form.values, existing, terms if form.values["wifi"] else None, ctx.actor)
    except FieldErrors as exc:
        db.rollback()
        add_errors(request, form, exc)
        return _page(request, db, ctx, form, existing, status_code=422)
    except Conflict as exc:
        db.rollback()
        _conflict(request, form, exc)
        return _page(request, db, ctx, form, existing, status_code=exc.status)
    flash = "portal_user_created_invited" if invited else "portal_user_created"
    return redirect(request, f"/portal/users/{user.id}", flash=flash)


# --- edit ---------------------------------------------------------------------------------------------


def _existing(db: Session, ctx: PortalContext, user: OccupierUser) -> Existing:
    return Existing(
        user=user,
        account=accounts.account_of(db, user),
        wifi=wifi.account_of(db, user),
        is_me=user.id == ctx.user_id,
    )


@router.get("/{user_id:int}/edit")
def edit_user_form(
    request: Request, user_id: int, db: ConsoleDb, ctx: PortalContext = Depends(portal_admin)
) -> Response:
    user = load_user(db, ctx, user_id)
    service.ensure_changeable(user)
    existing = _existing(db, ctx, user)
    values: dict[str, Any] = {name: getattr(user, name) or "" for name in BASIC_FIELDS}
    values["version"] = user.version_id
    if existing.wifi is not None:
        values.update(
            wifi=existing.wifi.status != WifiStatus.DEACTIVATED,
            homesite_id=existing.wifi.homesite_id,
            device_limit=existing.wifi.device_limit,
        )
    else:
        values.update({k: v for k, v in _defaults(ctx, user.occupier).items() if k != "language"})
    values["role"] = existing.account.role if existing.account is not None else AccountRole.USER.value
    return _page(request, db, ctx, Form(values=values), existing)


@router.post("/{user_id:int}/edit")
def edit_user(
    request: Request,
    user_id: int,
    db: ConsoleDb,
    ctx: PortalContext = Depends(portal_admin),
    data: FormData = Depends(form_data),
) -> Response:
    """Save the basic details, the Wi-Fi account and the user account as the form says (not the email)."""
    user = load_user(db, ctx, user_id, for_update=True)
    existing = _existing(db, ctx, user)
    form = Form(values=_read(data, with_email=False))
    version = forms.text(data, "version")
    form.values["version"] = version

    def basic() -> UserUpdate:
        missing = [name for name in ("first_name", "last_name") if not form.values[name]]
        if missing:  # the names stay required (None would mean "unchanged" to the schema)
            raise FieldErrors([{"field": f, "code": "required", "message": "Required."} for f in missing])
        return forms.parse(UserUpdate, {name: form.values[name] or None for name in BASIC_FIELDS})

    changes, terms, role = _check_all(request, form, existing, basic, user.occupier.default_region)
    if form.has_errors or changes is None:
        return _page(request, db, ctx, form, existing, status_code=422)
    try:
        expected = int(version) if version.isdigit() else None
        service.update_user(db, user, changes, actor=ctx.actor, expected_version=expected)
        _set_up_account(db, user, form.values, existing, role, ctx.actor)
        _change_wifi(db, user, form.values, existing, terms, ctx.actor)
    except FieldErrors as exc:
        db.rollback()
        add_errors(request, form, exc)
        return _page(request, db, ctx, form, _existing(db, ctx, user), status_code=422)
    except (Conflict, PreconditionFailed) as exc:
        db.rollback()
        _conflict(request, form, exc)
        return _page(request, db, ctx, form, _existing(db, ctx, user), status_code=exc.status)
    return redirect(request, f"/portal/users/{user.id}", flash="portal_user_updated")
