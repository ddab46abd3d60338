"""Reading access groups within the actor's scope."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select, tuple_
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.authz.scope import occupier_filter
from occupant.groups.models import AccessGroup
from occupant.kit.pagination import Page, decode_cursor, page_of
from occupant.occupiers.models import Occupier


def visible_groups(actor: Actor) -> Select[Any]:
    """Groups the actor can see: the occupier groups of visible occupiers; site groups for operator staff."""
    visible_occupiers = select(Occupier.id).where(occupier_filter(actor))
    clause: ColumnElement[bool] = AccessGroup.occupier_id.in_(visible_occupiers)
    if actor.is_operator_staff:
        clause = or_(clause, AccessGroup.site_id.is_not(None))
    return select(AccessGroup).where(AccessGroup.operator_id == actor.operator_id, clause)


def list_groups(
    session: Session,
    actor: Actor,
    *,
    site_id: int | None = None,
    occupier_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[AccessGroup]:
    """Groups in name order, optionally those of one site or of one occupier."""
    stmt = visible_groups(actor)
    if site_id is not None:
        stmt = stmt.where(AccessGroup.site_id == site_id)
    if occupier_id is not None:
        stmt = stmt.where(AccessGroup.occupier_id == occupier_id)
    after = decode_cursor(cursor, 2)
    if after is not None:
        stmt = stmt.where(tuple_(AccessGroup.name, AccessGroup.id) > tuple_(after[0], after[1]))
    rows = list(session.scalars(stmt.order_by(AccessGroup.name, AccessGroup.id).limit(limit + 1)))
    return page_of(rows, limit, lambda g: [g.name, g.id])
