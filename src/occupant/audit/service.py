"""Writing audit events. Actions call :func:`record` in their own transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor
from occupant.kit.bulkwrite import insert_rows, table_of
from occupant.kit.clock import utcnow
from occupant.kit.context import current_request_id


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: int | str | None,
    occupier_id: int | None = None,
    fields: Iterable[str] = (),
    changes: dict[str, Any] | None = None,
    outcome: str = "success",
) -> AuditEvent:
    """Append one event. ``changes`` holds old → new values of non-personal fields only."""
    event = AuditEvent(
        operator_id=actor.operator_id,
        actor_type=actor.kind.value,
        actor_id=actor.audit_id,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        occupier_id=occupier_id,
        fields=sorted(set(fields)),
        changes=changes or {},
        outcome=outcome,
        request_id=current_request_id(),
    )
    session.add(event)
    return event


@dataclass(frozen=True, slots=True)
class Target:
    """One event of :func:`record_many`: whom it is about and what changed."""

    target_id: int | str | None
    occupier_id: int | None = None
    fields: Iterable[str] = ()
    changes: dict[str, Any] | None = None
    outcome: str = "success"


_COLUMNS = (
    "operator_id",
    "actor_type",
    "actor_id",
    "action",
    "target_type",
    "request_id",
    "occurred_at",
    "target_id",
    "occupier_id",
    "fields",
    "changes",
    "outcome",
)


def record_many(
    session: Session, *, actor: Actor, action: str, target_type: str, targets: Sequence[Target]
) -> None:
    """Append one event per target, as :func:`record` would, with one bulk write (COPY on PostgreSQL)."""
    if not targets:
        return
    common = (
        actor.operator_id,
        actor.kind.value,
        actor.audit_id,
        action,
        target_type,
        current_request_id(),
        utcnow(),
    )
    field_lists: dict[tuple[str, ...], list[str]] = {}
    no_changes: dict[str, Any] = {}
    rows = []
    for t in targets:
        # Events of one batch share a few field lists (and their callers a few change sets): one object
        # each, which the bulk write serialises once.
        key = tuple(t.fields)
        fields = field_lists.get(key)
        if fields is None:
            fields = field_lists[key] = sorted(set(key))
        target_id = None if t.target_id is None else str(t.target_id)
        rows.append((*common, target_id, t.occupier_id, fields, t.changes or no_changes, t.outcome))
    insert_rows(session, table_of(AuditEvent), _COLUMNS, rows)
