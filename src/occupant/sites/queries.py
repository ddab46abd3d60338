"""Reading sites within the actor's scope."""

from __future__ import annotations

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.authz.scope import site_filter
from occupant.kit.pagination import Page, decode_cursor, page_of
from occupant.sites.models import Site


def list_sites(session: Session, actor: Actor, *, cursor: str | None = None, limit: int = 50) -> Page[Site]:
    """Sites the actor can see, in code order."""
    stmt = select(Site).where(site_filter(actor))
    after = decode_cursor(cursor, 2)
    if after is not None:
        stmt = stmt.where(tuple_(Site.code, Site.id) > tuple_(after[0], after[1]))
    rows = list(session.scalars(stmt.order_by(Site.code, Site.id).limit(limit + 1)))
    return page_of(rows, limit, lambda s: [s.code, s.id])
