"""Console pages for sites: code, name, country and the RADIUS NAS identifiers of the access points."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from starlette.datastructures import FormData

from occupant.authz.scope import Perm, get_site, require, site_filter
from occupant.kit.errors import FieldErrors
from occupant.occupiers.models import occupier_sites
from occupant.sites import service
from occupant.sites.models import Site
from occupant.sites.schemas import SiteCreate, SiteUpdate
from occupant.web import forms
from occupant.web.deps import ConsoleDb, StaffContext, console, form_data
from occupant.web.forms import Form
from occupant.web.render import redirect, render

router = APIRouter(include_in_schema=False)
VLANS = ("wifi_vlan", "guest_vlan")


@router.get("/sites")
def site_list(request: Request, db: ConsoleDb, ctx: StaffContext = Depends(console)) -> Response:
    """The operator's sites (a site manager sees the sites they manage)."""
    sites = list(db.scalars(select(Site).where(site_filter(ctx.actor)).order_by(Site.code)))
    counts: dict[int, int] = dict(
        db.execute(
            select(occupier_sites.c.site_id, func.count())
            .where(occupier_sites.c.site_id.in_([s.id for s in sites]))
            .group_by(occupier_sites.c.site_id)
        ).all()
    )
    return render(request, "sites/list.html", {"sites": sites, "occupier_counts": counts, "section": "sites"})


def _values(data: FormData) -> dict[str, str]:
    return {name: forms.text(data, name) for name in ("code", "name", "country", "nas_identifiers", *VLANS)}


def _without_blank_vlans(values: dict[str, str]) -> dict[str, str]:
    """A VLAN left blank keeps its value (the default, for a new site)."""
    return {name: value for name, value in values.items() if value or name not in VLANS}


def _form_page(request: Request, form: Form, site: Site | None, *, status_code: int = 200) -> Response:
    return render(
        request, "sites/form.html", {"form": form, "site": site, "section": "sites"}, status_code=status_code
    )


@router.get("/sites/new")
def new_site_form(request: Request, ctx: StaffContext = Depends(console)) -> Response:
    require(ctx.actor, Perm.MANAGE_SITES)
    fields = SiteCreate.model_fields
    form = Form(values={name: fields[name].default for name in VLANS})
    return _form_page(request, form, None)


@router.post("/sites/new")
def create_site(
    request: Request,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    form = Form(values=_values(data))
    payload = {
        **_without_blank_vlans(form.values),
        "code": form.values["code"].upper(),
        "nas_identifiers": forms.lines(form.values["nas_identifiers"]),
    }
    try:
        service.create_site(db, forms.parse(SiteCreate, payload), actor=ctx.actor)
    except FieldErrors as exc:
        db.rollback()
        return _form_page(request, form.add_errors(exc), None, status_code=422)
    return redirect(request, "/sites", flash="site_created")


@router.get("/sites/{site_id:int}/edit")
def edit_site_form(
    request: Request,
    site_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    require(ctx.actor, Perm.MANAGE_SITES)
    site = get_site(db, ctx.actor, site_id)
    form = Form(
        values={
            "code": site.code,
            "name": site.name,
            "country": site.country,
            "nas_identifiers": "\n".join(site.nas_identifiers),
            "wifi_vlan": site.wifi_vlan,
            "guest_vlan": site.guest_vlan,
            "version": site.version_id,
        }
    )
    return _form_page(request, form, site)


@router.post("/sites/{site_id:int}/edit")
def edit_site(
    request: Request,
    site_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    require(ctx.actor, Perm.MANAGE_SITES)
    site = get_site(db, ctx.actor, site_id)
    form = Form(values={**_values(data), "code": site.code, "version": forms.text(data, "version")})
    payload = {
        "name": form.values["name"],
        "country": form.values["country"],
        "nas_identifiers": forms.lines(form.values["nas_identifiers"]),
        **_without_blank_vlans({name: form.values[name] for name in VLANS}),
    }
    version = str(form.values["version"])
    try:
        service.update_site(
            db,
            site,
            forms.parse(SiteUpdate, payload),
            actor=ctx.actor,
            expected_version=int(version) if version.isdigit() else None,
        )
    except FieldErrors as exc:
        db.rollback()
        return _form_page(request, form.add_errors(exc), site, status_code=422)
    return redirect(request, "/sites", flash="site_saved")


@router.get("/sites/{site_id:int}/delete")
def confirm_delete_site(
    request: Request,
    site_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    require(ctx.actor, Perm.MANAGE_SITES)
    site = get_site(db, ctx.actor, site_id)
    return render(request, "sites/confirm_delete.html", {"site": site, "section": "sites"})


@router.post("/sites/{site_id:int}/delete")
def delete_site(
    request: Request,
    site_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    site = get_site(db, ctx.actor, site_id)
    service.delete_site(db, site, actor=ctx.actor)
    return redirect(request, "/sites", flash="site_deleted")
