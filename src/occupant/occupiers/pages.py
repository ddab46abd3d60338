"""Console pages for occupiers: the list with search as you type, the occupier page (overview, tabs),
create and edit, and decommissioning with its live state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, can, get_occupier, require, site_filter
from occupant.kit.errors import FieldErrors
from occupant.occupiers import queries, service
from occupant.occupiers.models import Occupier, OccupierState
from occupant.occupiers.schemas import OccupierCreate, OccupierUpdate
from occupant.sites.models import Site
from occupant.web import forms
from occupant.web.deps import ConsoleDb, StaffContext, console, form_data
from occupant.web.forms import Form
from occupant.web.render import hx_target, redirect, render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
STATE_LABELS = {
    OccupierState.ACTIVE: "Active",
    OccupierState.DECOMMISSION_PENDING: "Decommission pending",
    OccupierState.DECOMMISSIONED: "Decommissioned",
    OccupierState.DECOMMISSION_FAILED: "Decommission failed",
}
FORM_FIELDS = (
    "name",
    "site_ids",
    "primary_site_id",
    "telephony_managed",
    "portal_offered",
    "mobile_app_offered",
    "default_wifi_device_limit",
)


def occupier_actions(actor: Actor, occupier: Occupier) -> frozenset[str]:
    """What the console offers on the occupier itself (the services enforce the same rules)."""
    offered = set()
    if can(actor, Perm.MANAGE_OCCUPIERS) and not occupier.is_decommissioning:
        offered.add("edit")
    if can(actor, Perm.DECOMMISSION):
        if occupier.state == OccupierState.ACTIVE:
            offered.add("decommission")
        elif occupier.state == OccupierState.DECOMMISSION_FAILED:
            offered.add("retry_decommission")
    return frozenset(offered)


def occupier_context(occupier: Occupier, tab: str) -> dict[str, Any]:
    """What every tab of the occupier page shows around its content."""
    return {
        "occupier": occupier,
        "tab": tab,
        "state_label": STATE_LABELS.get(occupier.state, occupier.state),
        "section": "occupiers",
    }


def visible_sites(db: Session, actor: Actor) -> list[Site]:
    return list(db.scalars(select(Site).where(site_filter(actor)).order_by(Site.code)))


@router.get("/occupiers")
def occupier_list(
    request: Request,
    db: ConsoleDb,
    q: str = "",
    cursor: str | None = None,
    ctx: StaffContext = Depends(console),
) -> Response:
    """Occupiers in the staff member's scope, filtered as you type."""
    q = q.strip()
    page = queries.list_occupiers(db, ctx.actor, q=q or None, cursor=cursor, limit=PAGE_SIZE)
    counts = queries.user_counts(db, [o.id for o in page.items])
    context = {
        "occupiers": page.items,
        "next_cursor": page.next_cursor,
        "counts": counts,
        "q": q,
        "state_labels": STATE_LABELS,
        "section": "occupiers",
    }
    return render(
        request,
        "occupiers/list.html",
        context,
        partial={"occupier-results": "occupiers/_results.html", "occupier-more": "occupiers/_rows.html"},
    )


def _form_values(data: FormData) -> dict[str, Any]:
    return {
        "name": forms.text(data, "name"),
        "site_ids": forms.ids(data, "site_ids"),
        "primary_site_id": forms.text(data, "primary_site_id"),
        "telephony_managed": forms.checkbox(data, "telephony_managed"),
        "portal_offered": forms.checkbox(data, "portal_offered"),
        "mobile_app_offered": forms.checkbox(data, "mobile_app_offered"),
        "default_wifi_device_limit": forms.text(data, "default_wifi_device_limit"),
    }


def _payload(values: dict[str, Any]) -> dict[str, Any]:
    payload = dict(values)
    primary = str(values["primary_site_id"])
    payload["primary_site_id"] = int(primary) if primary.isdigit() else None
    if not values["default_wifi_device_limit"]:
        payload.pop("default_wifi_device_limit")  # the default on create; unchanged on edit
    return payload


def _form_page(
    request: Request,
    db: Session,
    ctx: StaffContext,
    form: Form,
    occupier: Occupier | None,
    *,
    status_code: int = 200,
) -> Response:
    context = {
        "form": form,
        "occupier": occupier,
        "sites": visible_sites(db, ctx.actor),
        "section": "occupiers",
    }
    return render(request, "occupiers/form.html", context, status_code=status_code)


@router.get("/occupiers/new")
def new_occupier_form(request: Request, db: ConsoleDb, ctx: StaffContext = Depends(console)) -> Response:
    require(ctx.actor, Perm.MANAGE_OCCUPIERS)
    form = Form(
        values={
            "site_ids": [],
            "portal_offered": True,
            "mobile_app_offered": True,
            "default_wifi_device_limit": 2,
        }
    )
    return _form_page(request, db, ctx, form, None)


@router.post("/occupiers/new")
def create_occupier(
    request: Request,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    form = Form(values=_form_values(data))
    try:
        occupier = service.create_occupier(
            db, forms.parse(OccupierCreate, _payload(form.values)), actor=ctx.actor
        )
    except FieldErrors as exc:
        db.rollback()
        return _form_page(request, db, ctx, form.add_errors(exc), None, status_code=422)
    return redirect(request, f"/occupiers/{occupier.id}", flash="occupier_created")


@router.get("/occupiers/{occupier_id:int}")
def occupier_page(
    request: Request,
    occupier_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    """The occupier's overview: sites, switches, state; while decommissioning, the state refreshes itself."""
    occupier = get_occupier(db, ctx.actor, occupier_id)
    counts = queries.user_counts(db, [occupier.id])
    context = {
        **occupier_context(occupier, "overview"),
        "user_count": counts.get(occupier.id, 0),
        "actions": occupier_actions(ctx.actor, occupier),
    }
    return render(
        request, "occupiers/overview.html", context, partial={"occupier-state": "occupiers/_state.html"}
    )


@router.get("/occupiers/{occupier_id:int}/edit")
def edit_occupier_form(
    request: Request,
    occupier_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    require(ctx.actor, Perm.MANAGE_OCCUPIERS)
    occupier = get_occupier(db, ctx.actor, occupier_id)
    form = Form(values={name: getattr(occupier, name) for name in FORM_FIELDS if name != "site_ids"})
    form.values["site_ids"] = [s.id for s in occupier.sites]
    form.values["version"] = occupier.version_id
    return _form_page(request, db, ctx, form, occupier)


@router.post("/occupiers/{occupier_id:int}/edit")
def edit_occupier(
    request: Request,
    occupier_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    occupier = get_occupier(db, ctx.actor, occupier_id, for_update=True)
    form = Form(values=_form_values(data))
    version = forms.text(data, "version")
    form.values["version"] = version
    try:
        changes = forms.parse(OccupierUpdate, _payload({k: form.values[k] for k in FORM_FIELDS}))
        service.update_occupier(
            db,
            occupier,
            changes,
            actor=ctx.actor,
            expected_version=int(version) if version.isdigit() else None,
        )
    except FieldErrors as exc:
        db.rollback()
        return _form_page(request, db, ctx, form.add_errors(exc), occupier, status_code=422)
    return redirect(request, f"/occupiers/{occupier.id}", flash="occupier_saved")


@router.get("/occupiers/{occupier_id:int}/decommission")
def confirm_decommission(
    request: Request,
    occupier_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    """The confirmation as a page (the dialog's fallback without JavaScript)."""
    require(ctx.actor, Perm.DECOMMISSION)
    occupier = get_occupier(db, ctx.actor, occupier_id)
    return render(request, "occupiers/confirm_decommission.html", occupier_context(occupier, "overview"))


@router.post("/occupiers/{occupier_id:int}/decommission")
def decommission(
    request: Request,
    occupier_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    """Start (or retry) decommissioning: every user of the occupier is deleted by a background job."""
    occupier = get_occupier(db, ctx.actor, occupier_id, for_update=True)
    service.start_decommission(db, occupier, actor=ctx.actor)
    if hx_target(request) == "occupier-state":
        context = {**occupier_context(occupier, "overview"), "actions": occupier_actions(ctx.actor, occupier)}
        return render(request, "occupiers/overview.html", context, partial="occupiers/_state.html")
    return redirect(request, f"/occupiers/{occupier.id}", flash="decommission_started")
