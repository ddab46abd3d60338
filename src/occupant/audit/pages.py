"""Console pages for the audit log: browse with filters (newest first, "Load more"), export as CSV."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select

from occupant.audit import queries
from occupant.authz.actor import ActorKind
from occupant.authz.scope import Perm, occupier_filter, require
from occupant.kit.clock import utcnow
from occupant.kit.csvout import stream_csv
from occupant.kit.errors import FieldErrors
from occupant.kit.runtime import get_session_factory
from occupant.occupiers.models import Occupier
from occupant.staff.models import StaffUser
from occupant.web.deps import ConsoleDb, StaffContext, console
from occupant.web.forms import Form
from occupant.web.render import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
TARGET_TYPES = ["occupier_user", "occupier", "site", "access_group", "staff_user", "api_key"]
FILTERS = ("action", "target_type", "target_id", "occupier_id", "actor_type", "since", "until")


def _day(value: str, field: str, errors: list[dict[str, str]]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append({"field": field, "code": "invalid_date", "message": "Enter a date as YYYY-MM-DD."})
        return None


def parse_filters(params: dict[str, str]) -> tuple[Form, dict[str, Any]]:
    """The filter form as entered, and the keyword filters of ``audit.queries`` (dates as whole days)."""
    form = Form(values={name: (params.get(name) or "").strip() for name in FILTERS})
    values, errors = form.values, []
    filters: dict[str, Any] = {
        name: values[name] or None for name in ("action", "target_type", "target_id", "actor_type")
    }
    if values["occupier_id"]:
        if values["occupier_id"].isdigit():
            filters["occupier_id"] = int(values["occupier_id"])
        else:
            errors.append({"field": "occupier_id", "code": "invalid", "message": "Enter an occupier number."})
    since, until = _day(values["since"], "since", errors), _day(values["until"], "until", errors)
    if since:
        filters["since"] = datetime.combine(since, datetime.min.time())
    if until:
        filters["until"] = datetime.combine(until + timedelta(days=1), datetime.min.time())
    if errors:
        form.add_errors(FieldErrors(errors))
    return form, {k: v for k, v in filters.items() if v is not None}


@router.get("/audit")
def audit_log(
    request: Request,
    db: ConsoleDb,
    cursor: str | None = None,
    ctx: StaffContext = Depends(console),
) -> Response:
    require(ctx.actor, Perm.VIEW_AUDIT)
    form, filters = parse_filters(dict(request.query_params))
    page = queries.list_events(db, ctx.actor, cursor=cursor, limit=PAGE_SIZE, **filters)
    # Names for the ids on this page, two queries whatever the page size.
    staff_ids = {int(e.actor_id) for e in page.items if e.actor_type == ActorKind.STAFF and e.actor_id}
    staff_names = dict(
        db.execute(
            select(StaffUser.id, StaffUser.name).where(
                StaffUser.id.in_(staff_ids), StaffUser.operator_id == ctx.actor.operator_id
            )
        ).all()
    )
    occupier_ids = {e.occupier_id for e in page.items if e.occupier_id}
    occupier_names = dict(
        db.execute(
            select(Occupier.id, Occupier.name).where(
                Occupier.id.in_(occupier_ids), occupier_filter(ctx.actor)
            )
        ).all()
    )
    query = urlencode({k: v for k, v in form.values.items() if v})
    context = {
        "events": page.items,
        "next_cursor": page.next_cursor,
        "form": form,
        "query": query,
        "staff_names": staff_names,
        "occupier_names": occupier_names,
        "target_types": TARGET_TYPES,
        "actor_types": [k.value for k in ActorKind],
        "section": "audit",
    }
    return render(
        request,
        "audit/list.html",
        context,
        partial={"audit-results": "audit/_results.html", "audit-more": "audit/_rows.html"},
        status_code=422 if form.has_errors else 200,
    )


@router.get("/audit/export.csv")
def export(request: Request, ctx: StaffContext = Depends(console)) -> Response:
    """Every event matching the filters, oldest first, as CSV (streamed; memory stays flat)."""
    require(ctx.actor, Perm.VIEW_AUDIT)
    form, filters = parse_filters(dict(request.query_params))
    if form.has_errors:
        raise FieldErrors([{"field": f, "code": "invalid", "message": m[0]} for f, m in form.errors.items()])
    actor = ctx.actor

    def rows() -> Iterator[str]:
        with get_session_factory()() as session:
            yield from stream_csv(queries.EXPORT_HEADER, queries.export_rows(session, actor, **filters))

    name = f"audit-{utcnow():%Y%m%d-%H%M%S}.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
