"""Console pages for access groups: operator groups per site, each occupier's own groups, a group's
members, and the occupier's Groups tab. (A user's own groups are changed from the Users tab.)"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, can, get_occupier, occupier_filter, site_filter, user_filter
from occupant.groups import service
from occupant.groups.models import AccessGroup, group_members
from occupant.kit.errors import FieldErrors
from occupant.occupiers.models import Occupier, occupier_sites
from occupant.occupiers.pages import occupier_context, visible_sites
from occupant.sites.models import Site
from occupant.users import queries as user_queries
from occupant.users.models import OccupierUser
from occupant.web import forms
from occupant.web.deps import ConsoleDb, StaffContext, console, form_data
from occupant.web.forms import Form
from occupant.web.render import redirect, render

router = APIRouter(include_in_schema=False)

MEMBER_LIMIT = 500
CANDIDATE_LIMIT = 20


def _member_counts(db: Session, actor: Actor, group_ids: list[int]) -> dict[int, int]:
    """Members each group has among the users the actor can see (one query)."""
    if not group_ids:
        return {}
    stmt = (
        select(group_members.c.group_id, func.count())
        .join(OccupierUser, OccupierUser.id == group_members.c.user_id)
        .where(group_members.c.group_id.in_(group_ids), user_filter(actor))
        .group_by(group_members.c.group_id)
    )
    return dict(db.execute(stmt).all())


def _visible_groups(db: Session, actor: Actor) -> list[AccessGroup]:
    visible_sites_q = select(Site.id).where(site_filter(actor))
    visible_occupiers = select(Occupier.id).where(occupier_filter(actor))
    stmt = (
        select(AccessGroup)
        .where(
            AccessGroup.operator_id == actor.operator_id,
            or_(AccessGroup.site_id.in_(visible_sites_q), AccessGroup.occupier_id.in_(visible_occupiers)),
        )
        .order_by(AccessGroup.name, AccessGroup.id)
    )
    return list(db.scalars(stmt))


def _group_actions(actor: Actor, group: AccessGroup) -> frozenset[str]:
    admin = Perm.MANAGE_OPERATOR_GROUPS if group.site_id is not None else Perm.MANAGE_OCCUPIER_GROUPS
    offered = set()
    if can(actor, admin):
        offered |= {"rename", "delete"}
    if can(actor, Perm.MANAGE_USERS):
        offered.add("members")
    return frozenset(offered)


def _list_page(
    request: Request, db: Session, ctx: StaffContext, form: Form, *, status_code: int = 200
) -> Response:
    groups = _visible_groups(db, ctx.actor)
    occupier_ids = sorted({g.occupier_id for g in groups if g.occupier_id is not None})
    occupiers = {o.id: o for o in db.scalars(select(Occupier).where(Occupier.id.in_(occupier_ids)))}
    context = {
        "site_groups": [g for g in groups if g.site_id is not None],
        "occupier_groups": [g for g in groups if g.occupier_id is not None],
        "sites": {s.id: s for s in visible_sites(db, ctx.actor)},
        "occupiers": occupiers,
        "counts": _member_counts(db, ctx.actor, [g.id for g in groups]),
        "form": form,
        "section": "groups",
    }
    return render(request, "groups/list.html", context, status_code=status_code)


@router.get("/groups")
def group_list(request: Request, db: ConsoleDb, ctx: StaffContext = Depends(console)) -> Response:
    """Operator groups by site, and occupiers' own groups, with their member counts."""
    return _list_page(request, db, ctx, Form())


@router.post("/groups/new")
def create_site_group(
    request: Request,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    """An operator group of a site (door access, say)."""
    form = Form(
        values={
            "name": forms.text(data, "name"),
            "site_id": forms.text(data, "site_id"),
            "description": forms.text(data, "description"),
        }
    )
    site_id = form.values["site_id"]
    try:
        group = service.create_group(
            db,
            actor=ctx.actor,
            name=form.values["name"],
            site_id=int(site_id) if site_id.isdigit() else None,
            description=form.values["description"],
        )
    except FieldErrors as exc:
        db.rollback()
        return _list_page(request, db, ctx, form.add_errors(exc), status_code=422)
    return redirect(request, f"/groups/{group.id}", flash="group_created")


def _occupier_groups_page(
    request: Request,
    db: Session,
    ctx: StaffContext,
    occupier: Occupier,
    form: Form,
    *,
    status_code: int = 200,
) -> Response:
    available = list(service.list_available(db, occupier))
    sites = {s.id: s for s in occupier.sites}
    context = {
        **occupier_context(occupier, "groups"),
        "groups": available,
        "sites": sites,
        "form": form,
        "counts": _member_counts(db, ctx.actor, [g.id for g in available]),
    }
    return render(request, "groups/occupier_tab.html", context, status_code=status_code)


@router.get("/occupiers/{occupier_id:int}/groups")
def occupier_groups(
    request: Request,
    occupier_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    """The occupier's Groups tab: the groups its users may join (its sites' and its own)."""
    occupier = get_occupier(db, ctx.actor, occupier_id)
    return _occupier_groups_page(request, db, ctx, occupier, Form())


@router.post("/occupiers/{occupier_id:int}/groups/new")
def create_occupier_group(
    request: Request,
    occupier_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    occupier = get_occupier(db, ctx.actor, occupier_id)
    form = Form(values={"name": forms.text(data, "name"), "description": forms.text(data, "description")})
    try:
        group = service.create_group(
            db,
            actor=ctx.actor,
            name=form.values["name"],
            occupier_id=occupier.id,
            description=form.values["description"],
        )
    except FieldErrors as exc:
        db.rollback()
        return _occupier_groups_page(request, db, ctx, occupier, form.add_errors(exc), status_code=422)
    return redirect(request, f"/groups/{group.id}", flash="group_created")


def _members(db: Session, actor: Actor, group: AccessGroup) -> list[OccupierUser]:
    stmt = (
        select(OccupierUser)
        .join(group_members, group_members.c.user_id == OccupierUser.id)
        .where(group_members.c.group_id == group.id, user_filter(actor))
        .order_by(OccupierUser.sort_key, OccupierUser.id)
        .limit(MEMBER_LIMIT)
    )
    return list(db.scalars(stmt))


def _candidates(
    db: Session, actor: Actor, group: AccessGroup, q: str, exclude: set[int]
) -> list[OccupierUser]:
    """Users the actor can see, matching ``q``, whose occupier may join the group."""
    if not q:
        return []
    stmt = user_queries.filtered(db, actor, q=q)
    if group.occupier_id is not None:
        stmt = stmt.where(OccupierUser.occupier_id == group.occupier_id)
    else:
        at_site = select(occupier_sites.c.occupier_id).where(occupier_sites.c.site_id == group.site_id)
        stmt = stmt.where(OccupierUser.occupier_id.in_(at_site))
    if exclude:
        stmt = stmt.where(OccupierUser.id.not_in(exclude))
    return list(db.scalars(stmt.order_by(OccupierUser.sort_key, OccupierUser.id).limit(CANDIDATE_LIMIT)))


def _group_page(
    request: Request,
    db: Session,
    ctx: StaffContext,
    group: AccessGroup,
    *,
    q: str = "",
    form: Form | None = None,
    rename: Form | None = None,
    status_code: int = 200,
) -> Response:
    members = _members(db, ctx.actor, group)
    context: dict[str, Any] = {
        "group": group,
        "members": members,
        "q": q,
        "section": "groups",
        "candidates": _candidates(db, ctx.actor, group, q, {m.id for m in members}),
        "site": db.get(Site, group.site_id) if group.site_id else None,
        "group_occupier": db.get(Occupier, group.occupier_id) if group.occupier_id else None,
        "actions": _group_actions(ctx.actor, group),
        "form": form or Form(),
        "rename": rename or Form(values={"name": group.name}),
        "member_limit": MEMBER_LIMIT,
    }
    return render(
        request,
        "groups/detail.html",
        context,
        partial={"group-candidates": "groups/_candidates.html"},
        status_code=status_code,
    )


@router.get("/groups/{group_id:int}")
def group_page(
    request: Request,
    db: ConsoleDb,
    group_id: int,
    q: str = "",
    ctx: StaffContext = Depends(console),
) -> Response:
    """A group and its members; find users to add as you type."""
    group = service.get_group(db, ctx.actor, group_id)
    return _group_page(request, db, ctx, group, q=q.strip())


@router.post("/groups/{group_id:int}/members")
def save_members(
    request: Request,
    group_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    """Make exactly the ticked users the group's members (among those the staff member can see)."""
    group = service.get_group(db, ctx.actor, group_id)
    try:
        service.set_group_members(db, group, forms.ids(data, "user_ids"), actor=ctx.actor)
    except FieldErrors as exc:
        db.rollback()
        return _group_page(request, db, ctx, group, form=Form().add_errors(exc), status_code=422)
    return redirect(request, f"/groups/{group.id}", flash="group_saved")


@router.post("/groups/{group_id:int}/rename")
def rename(
    request: Request,
    group_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    group = service.get_group(db, ctx.actor, group_id)
    form = Form(values={"name": forms.text(data, "name")})
    try:
        service.rename_group(db, group, form.values["name"], actor=ctx.actor)
    except FieldErrors as exc:
        db.rollback()
        return _group_page(request, db, ctx, group, rename=form.add_errors(exc), status_code=422)
    return redirect(request, f"/groups/{group.id}", flash="group_saved")


@router.get("/groups/{group_id:int}/delete")
def confirm_delete(
    request: Request,
    group_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    group = service.get_group(db, ctx.actor, group_id)
    return render(request, "groups/confirm_delete.html", {"group": group, "section": "groups"})


@router.post("/groups/{group_id:int}/delete")
def delete(
    request: Request,
    group_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    group = service.get_group(db, ctx.actor, group_id)
    back = f"/occupiers/{group.occupier_id}/groups" if group.occupier_id else "/groups"
    service.delete_group(db, group, actor=ctx.actor)
    return redirect(request, back, flash="group_deleted")
