"""Reading the audit log within the actor's scope: filters, keyset pages, export."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor, Role
from occupant.authz.scope import Perm, occupier_filter, require
from occupant.kit.pagination import Page, decode_cursor, page_of
from occupant.occupiers.models import Occupier

EXPORT_HEADER = [
    "id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "occupier_id",
    "fields",
    "changes",
    "outcome",
    "request_id",
]


def _filtered(
    actor: Actor,
    *,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    occupier_id: int | None = None,
    actor_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[Any]:
    require(actor, Perm.VIEW_AUDIT)
    stmt = select(AuditEvent).where(AuditEvent.operator_id == actor.operator_id)
    if actor.role is not Role.OPERATOR_ADMIN:
        # Site managers and occupier admins see only events of the occupiers in their scope.
        visible = select(Occupier.id).where(occupier_filter(actor))
        stmt = stmt.where(AuditEvent.occupier_id.in_(visible))
    if action:
        stmt = stmt.where(
            or_(AuditEvent.action == action, AuditEvent.action.startswith(action.rstrip(".") + "."))
        )
    if target_type:
        stmt = stmt.where(AuditEvent.target_type == target_type)
    if target_id:
        stmt = stmt.where(AuditEvent.target_id == str(target_id))
    if occupier_id is not None:
        stmt = stmt.where(AuditEvent.occupier_id == occupier_id)
    if actor_type:
        stmt = stmt.where(AuditEvent.actor_type == actor_type)
    if since:
        stmt = stmt.where(AuditEvent.occurred_at >= since)
    if until:
        stmt = stmt.where(AuditEvent.occurred_at < until)
    return stmt


def list_events(
    session: Session, actor: Actor, *, cursor: str | None = None, limit: int = 50, **filters: Any
) -> Page[AuditEvent]:
    """Newest first."""
    stmt = _filtered(actor, **filters)
    after = decode_cursor(cursor, 1)
    if after is not None:
        stmt = stmt.where(AuditEvent.id < int(after[0]))
    rows = list(session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    return page_of(rows, limit, lambda e: [e.id])


def export_rows(session: Session, actor: Actor, **filters: Any) -> Iterator[list[Any]]:
    """Every matching event as a CSV row, oldest first, read in batches."""
    import json

    last_id = 0
    while True:
        stmt = _filtered(actor, **filters).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(1000)
        batch = list(session.scalars(stmt))
        if not batch:
            return
        for e in batch:
            yield [
                e.id,
                e.occurred_at.isoformat(timespec="seconds"),
                e.actor_type,
                e.actor_id or "",
                e.action,
                e.target_type,
                e.target_id or "",
                e.occupier_id or "",
                ";".join(e.fields or []),
                json.dumps(e.changes or {}, sort_keys=True),
                e.outcome,
                e.request_id or "",
            ]
        last_id = batch[-1].id
        session.expunge_all()
