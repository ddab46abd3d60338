"""Reads the API lists need that no domain query module offers yet (candidates for sites/ and groups/)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select, tuple_
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.authz.scope import occupier_filter, site_filter
from occupant.groups.models import AccessGroup
from occupant.kit.pagination import Page, decode_cursor, encode_cursor
from occupant.occupiers.models import Occupier
from occupant.sites.models import Site


def list_sites(session: Session, actor: Actor, *, cursor: str | None = None, limit: int = 50) -> Page[Site]:
    """Sites the actor can see, in code order."""
    stmt = select(Site).where(site_filter(actor))
    after = decode_cursor(cursor, 2)
    if after is not None:
        stmt = stmt.where(tuple_(Site.code, Site.id) > tuple_(after[0], after[1]))
    rows = list(session.scalars(stmt.order_by(Site.code, Site.id).limit(limit + 1)))
    return _page(rows, limit, lambda s: [s.code, s.id])


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
    return _page(rows, limit, lambda g: [g.name, g.id])


def _page(rows: list[Any], limit: int, key: Any) -> Page[Any]:
    if len(rows) <= limit:
        return Page(items=rows)
    rows = rows[:limit]
    return Page(items=rows, next_cursor=encode_cursor(key(rows[-1])))
