"""REST API: the audit log, as pages of JSON and as a CSV export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from occupant.api import responses
from occupant.api.deps import ApiActor, ApiDb
from occupant.api.http import IdFilter, PageParams, naive_utc, page_params, paged
from occupant.api.schemas import PageOut
from occupant.audit import queries
from occupant.audit.schemas import AuditEventOut
from occupant.authz.actor import Actor, ActorKind
from occupant.authz.scope import Perm, require
from occupant.kit.csvout import stream_csv
from occupant.kit.runtime import get_read_session_factory

router = APIRouter(tags=["audit"], responses=responses.COMMON)
EventPage = Annotated[PageParams, Depends(page_params(int))]


def audit_filters(
    action: Annotated[
        str | None, Query(max_length=64, description="`user.created`, or a prefix: `user`.")
    ] = None,
    target_type: Annotated[
        str | None, Query(max_length=32, description="`occupier_user`, `occupier`…")
    ] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    occupier_id: IdFilter = None,
    actor_type: Annotated[ActorKind | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="From this time (inclusive, ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time (exclusive, ISO 8601).")] = None,
) -> dict[str, Any]:
    return {
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "occupier_id": occupier_id,
        "actor_type": actor_type,
        "since": naive_utc(since, "since"),
        "until": naive_utc(until, "until"),
    }


Filters = Annotated[dict[str, Any], Depends(audit_filters)]


def event_out(event: Any) -> AuditEventOut:
    return AuditEventOut.model_validate(event)


@router.get("/audit-events", summary="List audit events")
def list_events(
    request: Request,
    response: Response,
    db: ApiDb,
    actor: ApiActor,
    page: EventPage,
    filters: Filters,
) -> PageOut[AuditEventOut]:
    """Newest first. Events hold opaque ids and field names, never personal values."""
    found = queries.list_events(db, actor, cursor=page.cursor, limit=page.limit, **filters)
    return paged(request, response, found, event_out)


@router.get(
    "/audit-events.csv",
    summary="Export audit events as CSV",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "Every matching event, oldest first."}},
)
def export_events(actor: ApiActor, filters: Filters) -> StreamingResponse:
    """Streams however many events match, oldest first; spreadsheet formulas in cells are neutralised."""
    require(actor, Perm.VIEW_AUDIT)
    return StreamingResponse(
        _csv(actor, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-events.csv"'},
    )


def _csv(actor: Actor, filters: dict[str, Any]) -> Iterator[str]:
    with get_read_session_factory()() as session:  # deferred on SQLite: a slow download locks nothing
        yield from stream_csv(queries.EXPORT_HEADER, queries.export_rows(session, actor, **filters))
