"""Console pages for occupier users: the Users tab of an occupier, user details, the add-user wizard,
edit, change email, groups, deactivate / reactivate, delete.

The Users tab is a list (left) and a pane (right). Every pane is a partial that htmx swaps into
``#user-detail``; the same URL without htmx answers the whole tab with that pane, so links work
without JavaScript and after a reload.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from occupant.accounts import queries as account_queries
from occupant.accounts.models import AccountStatus
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, can, get_occupier, get_user
from occupant.groups import service as groups
from occupant.groups.models import AccessGroup, group_members
from occupant.kit.errors import FieldErrors, NotFound
from occupant.occupiers.models import Occupier
from occupant.occupiers.pages import occupier_context
from occupant.operators.models import Operator
from occupant.users import export, queries, service
from occupant.users.filters import UserFilter
from occupant.users.models import OccupierUser, UserStatus
from occupant.users.schemas import UserCreate, UserUpdate
from occupant.web import forms
from occupant.web.deps import ConsoleDb, StaffContext, console, form_data
from occupant.web.forms import Form
from occupant.web.render import hx_target, redirect, render, set_flash
from occupant.web.wizard import Step, Wizard
from occupant.wifi import queries as wifi_queries

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
DETAIL_TARGET = "user-detail"
BASIC_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "job_title",
    "mobile",
    "direct_line",
    "language",
    "employee_number",
    "username",
    "external_id",
)
EDIT_FIELDS = tuple(f for f in BASIC_FIELDS if f != "email")


@dataclass
class NewUserSubject:
    """What decides which add-user steps are shown, and what their fields offer."""

    occupier: Occupier
    operator: Operator
    groups: list[AccessGroup]


ADD_USER_WIZARD = Wizard(
    [
        Step("details", "User details", "users/steps/_details.html", BASIC_FIELDS),
        Step(
            "groups",
            "Access groups",
            "users/steps/_groups.html",
            ("group_ids",),
            multi=frozenset({"group_ids"}),
            applies=lambda subject: bool(subject.groups),
        ),
    ]
)


@dataclass(frozen=True)
class DetailSection:
    """A section of the user details pane contributed by another domain (Wi-Fi, app account...):
    its template, and what it adds to the pane's context."""

    template: str
    context: Callable[[Session, Actor, Occupier, OccupierUser], dict[str, Any]]


@dataclass(frozen=True)
class WizardStepAction:
    """What a further add-user step does besides showing its fields: the values it starts with, the
    check of its fields' form (run with the user's, so Next and Add user report them), and the one
    action it takes for the new user in the same transaction (its FieldErrors undo the user too)."""

    step: Step
    defaults: Callable[[NewUserSubject], dict[str, Any]]
    check: Callable[[dict[str, Any]], FieldErrors | None]
    create: Callable[[Session, OccupierUser, dict[str, Any], Actor], str | None]  # -> a flash key


DETAIL_SECTIONS: list[DetailSection] = []
WIZARD_STEP_ACTIONS: list[WizardStepAction] = []


def add_detail_section(section: DetailSection) -> None:
    DETAIL_SECTIONS.append(section)


def add_wizard_step(action: WizardStepAction, *, after: str) -> None:
    """Add a step to the add-user wizard (after the step ``after``) that acts on submit."""
    ADD_USER_WIZARD.add_step(action.step, after=after)
    WIZARD_STEP_ACTIONS.append(action)


def user_actions(actor: Actor, occupier: Occupier, user: OccupierUser | None = None) -> frozenset[str]:
    """The user actions the console offers: none while the occupier decommissions; then by permission
    and by the user's state. The services enforce the same rules; this only hides what would fail."""
    if occupier.is_decommissioning or not can(actor, Perm.MANAGE_USERS):
        return frozenset()
    offered = {"add"}
    if user is not None and not user.is_busy:
        offered |= {"edit", "delete", "groups"}
        offered.add("reactivate" if user.status == UserStatus.DEACTIVATED else "deactivate")
        if can(actor, Perm.CHANGE_EMAIL):
            offered.add("change_email")
    return frozenset(offered)


def list_actions(actor: Actor, occupier: Occupier) -> frozenset[str]:
    """What the Users tab offers above the list: adding a user (while the occupier is open), and the
    download (read-only, so also while it decommissions)."""
    offered = set(user_actions(actor, occupier))
    if can(actor, Perm.EXPORT_USERS):
        offered.add("export")
    return frozenset(offered)


def load_occupier(db: Session, ctx: StaffContext, occupier_id: int) -> Occupier:
    return get_occupier(db, ctx.actor, occupier_id)


def load_user(
    db: Session, ctx: StaffContext, occupier: Occupier, user_id: int, *, for_update: bool = False
) -> OccupierUser:
    """The user, in the staff member's scope and of this occupier (else NotFound)."""
    user = get_user(db, ctx.actor, user_id, for_update=for_update)
    if user.occupier_id != occupier.id:
        raise NotFound()
    return user


def _member_groups(db: Session, user_id: int) -> list[AccessGroup]:
    stmt = (
        select(AccessGroup)
        .join(group_members, group_members.c.group_id == AccessGroup.id)
        .where(group_members.c.user_id == user_id)
        .order_by(AccessGroup.name, AccessGroup.id)
    )
    return list(db.scalars(stmt))


def _list_context(
    db: Session, ctx: StaffContext, occupier: Occupier, q: str, cursor: str | None, *, with_count: bool = True
) -> dict[str, Any]:
    page = queries.list_users(
        db, ctx.actor, q=q or None, occupier_id=occupier.id, cursor=cursor, limit=PAGE_SIZE
    )
    total = queries.count_users(db, ctx.actor, occupier_id=occupier.id) if with_count else None
    return {
        "users": page.items,
        "next_cursor": page.next_cursor,
        "total": total,
        "q": q,
        "wifi_status": _wifi_status(db, page.items),
        "account_status": _account_status(db, page.items),
    }


def _wifi_status(db: Session, users: list[OccupierUser]) -> dict[int, str]:
    """Each listed user's Wi-Fi state (one query for the page)."""
    return {uid: str(a.status) for uid, a in wifi_queries.accounts_by_user(db, [u.id for u in users]).items()}


def _account_status(db: Session, users: list[OccupierUser]) -> dict[int, str]:
    """Each listed user's app-account state, for those invited (one query for the page)."""
    found = account_queries.accounts_by_user(db, [u.id for u in users])
    return {uid: str(a.status) for uid, a in found.items() if a.status != AccountStatus.NOT_INVITED}


def _detail_context(
    db: Session, ctx: StaffContext, occupier: Occupier, user: OccupierUser | None
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "user": user,
        "user_groups": _member_groups(db, user.id) if user is not None else [],
        "actions": user_actions(ctx.actor, occupier, user),
        "detail_sections": [s.template for s in DETAIL_SECTIONS] if user is not None else [],
    }
    if user is not None:
        for section in DETAIL_SECTIONS:
            context.update(section.context(db, ctx.actor, occupier, user))
    return context


def show_pane(
    request: Request,
    db: Session,
    ctx: StaffContext,
    occupier: Occupier,
    pane: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    """The pane alone for htmx (``#user-detail``), else the whole Users tab showing that pane."""
    q = request.query_params.get("q", "").strip()
    full = {
        **occupier_context(occupier, "users"),
        "pane": pane,
        "list_actions": list_actions(ctx.actor, occupier),
        **context,
    }
    if hx_target(request) != DETAIL_TARGET:
        full.update(_list_context(db, ctx, occupier, q, None))
    full.setdefault("selected_id", context["user"].id if context.get("user") is not None else None)
    return render(request, "users/tab.html", full, partial={DETAIL_TARGET: pane}, status_code=status_code)


# --- the tab and the details -------------------------------------------------------------------


@router.get("/occupiers/{occupier_id:int}/users")
def users_tab(
    request: Request,
    db: ConsoleDb,
    occupier_id: int,
    q: str = "",
    cursor: str | None = None,
    ctx: StaffContext = Depends(console),
) -> Response:
    """The Users tab: the list filtered as you type, the top user selected."""
    occupier = load_occupier(db, ctx, occupier_id)
    q = q.strip()
    target = hx_target(request)
    listing = _list_context(db, ctx, occupier, q, cursor, with_count=target != "user-more")
    if target == "user-more":
        return render(
            request, "users/tab.html", {**listing, "occupier": occupier}, partial="users/_rows.html"
        )
    if target == "user-results":
        return render(
            request,
            "users/tab.html",
            {**listing, "occupier": occupier, "selected_id": None},
            partial="users/_results.html",
        )
    top = listing["users"][0] if listing["users"] and cursor is None else None
    context = {
        **occupier_context(occupier, "users"),
        **listing,
        "pane": "users/_detail.html",
        "list_actions": list_actions(ctx.actor, occupier),
        "selected_id": top.id if top else None,
        **_detail_context(db, ctx, occupier, top),
    }
    return render(request, "users/tab.html", context)


@router.get("/occupiers/{occupier_id:int}/users/export.csv")
def download_users(
    db: ConsoleDb, occupier_id: int, q: str = "", ctx: StaffContext = Depends(console)
) -> Response:
    """Download users: the occupier's users as CSV — those the list's search shows, when there is one."""
    occupier = load_occupier(db, ctx, occupier_id)
    criteria = forms.parse(UserFilter, {"occupier_id": occupier.id, "q": q.strip()[:200] or None})
    return export.download(export.start_export(db, criteria, actor=ctx.actor))


@router.get("/occupiers/{occupier_id:int}/users/{user_id:int}")
def user_detail(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id)
    return show_pane(
        request, db, ctx, occupier, "users/_detail.html", _detail_context(db, ctx, occupier, user)
    )


def after_change(
    request: Request, db: Session, ctx: StaffContext, occupier: Occupier, user: OccupierUser, flash: str
) -> Response:
    """Show the user's details again, with the changed list row swapped in out of band."""
    set_flash(request, flash)
    if hx_target(request) != DETAIL_TARGET:
        return redirect(request, f"/occupiers/{occupier.id}/users/{user.id}", flash=flash)
    context = {
        **_detail_context(db, ctx, occupier, user),
        "row_changed": True,
        "wifi_status": _wifi_status(db, [user]),
        "account_status": _account_status(db, [user]),
    }
    return show_pane(request, db, ctx, occupier, "users/_detail.html", context)


def show_details(
    request: Request,
    db: Session,
    ctx: StaffContext,
    occupier: Occupier,
    user: OccupierUser,
    extra: dict[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    """The user's details pane with ``extra`` context (a section's form in error, say)."""
    context = {**_detail_context(db, ctx, occupier, user), **extra}
    return show_pane(request, db, ctx, occupier, "users/_detail.html", context, status_code=status_code)


# --- edit ------------------------------------------------------------------------------------------


def _user_values(user: OccupierUser, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(user, name) or "" for name in names}


@router.get("/occupiers/{occupier_id:int}/users/{user_id:int}/edit")
def edit_user_form(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id)
    service.ensure_changeable(user)
    form = Form(values={**_user_values(user, EDIT_FIELDS), "version": user.version_id})
    return show_pane(request, db, ctx, occupier, "users/_edit.html", {"user": user, "form": form})


@router.post("/occupiers/{occupier_id:int}/users/{user_id:int}/edit")
def edit_user(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    values: dict[str, Any] = {name: forms.text(data, name) for name in EDIT_FIELDS}
    version = forms.text(data, "version")
    form = Form(values={**values, "version": version})
    try:
        changes = forms.parse(UserUpdate, {k: (v or None) for k, v in values.items()})
        service.update_user(
            db, user, changes, actor=ctx.actor, expected_version=int(version) if version.isdigit() else None
        )
    except FieldErrors as exc:
        db.rollback()
        form.add_errors(exc)
        return show_pane(
            request, db, ctx, occupier, "users/_edit.html", {"user": user, "form": form}, status_code=422
        )
    return after_change(request, db, ctx, occupier, user, "user_updated")


# --- change email -------------------------------------------------------------------------------------


@router.get("/occupiers/{occupier_id:int}/users/{user_id:int}/email")
def change_email_form(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id)
    service.ensure_changeable(user)
    form = Form(values={"email": user.email})
    return show_pane(request, db, ctx, occupier, "users/_email.html", {"user": user, "form": form})


@router.post("/occupiers/{occupier_id:int}/users/{user_id:int}/email")
def change_email(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    form = Form(values={"email": forms.text(data, "email")})
    try:
        service.change_email(db, user, form.values["email"], actor=ctx.actor)
    except FieldErrors as exc:
        db.rollback()
        form.add_errors(exc)
        return show_pane(
            request, db, ctx, occupier, "users/_email.html", {"user": user, "form": form}, status_code=422
        )
    return after_change(request, db, ctx, occupier, user, "email_changed")


# --- groups ----------------------------------------------------------------------------------------------


@router.get("/occupiers/{occupier_id:int}/users/{user_id:int}/groups")
def user_groups_form(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id)
    service.ensure_changeable(user)
    form = Form(values={"group_ids": [str(g) for g in groups.user_group_ids(db, user.id)]})
    return show_pane(
        request,
        db,
        ctx,
        occupier,
        "users/_groups.html",
        {"user": user, "form": form, "available": groups.list_available(db, occupier)},
    )


@router.post("/occupiers/{occupier_id:int}/users/{user_id:int}/groups")
def save_user_groups(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    wanted = forms.ids(data, "group_ids")
    try:
        groups.set_user_groups(db, user, wanted, actor=ctx.actor)
    except FieldErrors as exc:
        db.rollback()
        form = Form(values={"group_ids": [str(g) for g in wanted]}).add_errors(exc)
        return show_pane(
            request,
            db,
            ctx,
            occupier,
            "users/_groups.html",
            {"user": user, "form": form, "available": groups.list_available(db, occupier)},
            status_code=422,
        )
    return after_change(request, db, ctx, occupier, user, "groups_saved")


# --- deactivate / reactivate / delete ----------------------------------------------------------------


@router.post("/occupiers/{occupier_id:int}/users/{user_id:int}/deactivate")
def deactivate(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    service.deactivate_user(db, user, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "user_deactivated")


@router.post("/occupiers/{occupier_id:int}/users/{user_id:int}/reactivate")
def reactivate(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    service.reactivate_user(db, user, actor=ctx.actor)
    return after_change(request, db, ctx, occupier, user, "user_reactivated")


@router.get("/occupiers/{occupier_id:int}/users/{user_id:int}/delete")
def confirm_delete(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    """The confirmation as a page (the dialog's fallback without JavaScript)."""
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id)
    service.ensure_changeable(user)
    return show_pane(request, db, ctx, occupier, "users/_confirm_delete.html", {"user": user})


@router.post("/occupiers/{occupier_id:int}/users/{user_id:int}/delete")
def delete(
    request: Request,
    occupier_id: int,
    user_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    occupier = load_occupier(db, ctx, occupier_id)
    user = load_user(db, ctx, occupier, user_id, for_update=True)
    service.delete_user(db, user, actor=ctx.actor)
    return redirect(request, f"/occupiers/{occupier.id}/users", flash="user_deleted")


# --- the add-user wizard ---------------------------------------------------------------------------------


def _wizard_pane(
    request: Request,
    db: Session,
    ctx: StaffContext,
    subject: NewUserSubject,
    step: Step,
    form: Form,
    *,
    status_code: int = 200,
) -> Response:
    steps = ADD_USER_WIZARD.active(subject)
    view = ADD_USER_WIZARD.view(steps, step, form)
    return show_pane(
        request,
        db,
        ctx,
        subject.occupier,
        "users/_wizard.html",
        {
            "user": None,
            "wizard": view,
            "form": form,
            "subject": subject,
            "available": subject.groups,
            "selected_id": None,
        },
        status_code=status_code,
    )


def _subject(db: Session, ctx: StaffContext, occupier_id: int) -> NewUserSubject:
    occupier = load_occupier(db, ctx, occupier_id)
    service.ensure_occupier_open(occupier)
    operator = db.get(Operator, occupier.operator_id)
    if operator is None:  # pragma: no cover - the foreign key guarantees it
        raise NotFound()
    available = list(groups.list_available(db, occupier))
    return NewUserSubject(occupier=occupier, operator=operator, groups=available)


def _new_user_data(values: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {name: (values.get(name) or None) for name in BASIC_FIELDS}
    for required in ("first_name", "last_name", "email"):
        data[required] = values.get(required) or ""
    data["language"] = values.get("language") or "en"
    data["group_ids"] = [int(v) for v in values.get("group_ids", []) if str(v).isdigit()]
    return data


@router.get("/occupiers/{occupier_id:int}/users/new")
def add_user_form(
    request: Request,
    occupier_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    subject = _subject(db, ctx, occupier_id)
    steps = ADD_USER_WIZARD.active(subject)
    values: dict[str, Any] = {"language": "en", "group_ids": []}
    for action in _step_actions(steps):
        values.update(action.defaults(subject))
    return _wizard_pane(request, db, ctx, subject, steps[0], Form(values=values))


def _step_actions(steps: list[Step]) -> list[WizardStepAction]:
    return [a for a in WIZARD_STEP_ACTIONS if a.step in steps]


@router.post("/occupiers/{occupier_id:int}/users/new")
def add_user(
    request: Request,
    occupier_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    """One wizard request: move between steps (Back / Next), or add the user (the last step's button)."""
    subject = _subject(db, ctx, occupier_id)
    steps = ADD_USER_WIZARD.active(subject)
    current = ADD_USER_WIZARD.step_named(steps, forms.text(data, "step"))
    form = Form(values=ADD_USER_WIZARD.read(data, steps))
    go = forms.text(data, "go")
    if go == "back":
        return _wizard_pane(request, db, ctx, subject, ADD_USER_WIZARD.neighbour(steps, current, -1), form)
    try:
        payload = forms.parse(UserCreate, _new_user_data(form.values))
    except FieldErrors as exc:
        form.add_errors(exc)
    for action in _step_actions(steps):
        if (errors := action.check(form.values)) is not None:
            form.add_errors(errors)
    if go == "next":
        # Moving on checks only this step's required fields and lengths; the rest is checked on submit.
        form.errors = {k: v for k, v in form.errors.items() if k in current.fields}
        if form.has_errors:
            return _wizard_pane(request, db, ctx, subject, current, form, status_code=422)
        return _wizard_pane(request, db, ctx, subject, ADD_USER_WIZARD.neighbour(steps, current, +1), form)
    flash = "user_created"
    if not form.has_errors:
        try:
            # The user and what the further steps set up for them: one transaction, all or nothing.
            user = service.create_user(db, subject.occupier, payload, actor=ctx.actor)
            for action in _step_actions(steps):
                flash = action.create(db, user, form.values, ctx.actor) or flash
        except FieldErrors as exc:
            db.rollback()
            form.add_errors(exc)
    if form.has_errors:
        step = ADD_USER_WIZARD.step_with_errors(steps, form, current)
        return _wizard_pane(request, db, ctx, subject, step, form, status_code=422)
    return redirect(request, f"/occupiers/{subject.occupier.id}/users/{user.id}", flash=flash)
