"""Reading occupiers within the actor's scope."""

from __future__ import annotations

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.authz.scope import occupier_filter
from occupant.kit.pagination import Page, decode_cursor, page_of
from occupant.occupiers.models import Occupier
from occupant.users.models import OccupierUser


def list_occupiers(
    session: Session,
    actor: Actor,
    *,
    q: str | None = None,
    state: str | None = None,
    site_id: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Occupier]:
    stmt = select(Occupier).where(occupier_filter(actor))
    needle = (q or "").strip().lower()
    if needle:
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Occupier.sort_key.like(f"%{escaped}%", escape="\\"))
    if state:
        stmt = stmt.where(Occupier.state == state)
    if site_id is not None:
        stmt = stmt.where(Occupier.sites.any(id=site_id))
    after = decode_cursor(cursor, 2)
    if after is not None:
        stmt = stmt.where(tuple_(Occupier.sort_key, Occupier.id) > tuple_(after[0], after[1]))
    rows = list(session.scalars(stmt.order_by(Occupier.sort_key, Occupier.id).limit(limit + 1)))
    return page_of(rows, limit, lambda o: [o.sort_key, o.id])


def user_counts(session: Session, occupier_ids: list[int]) -> dict[int, int]:
    if not occupier_ids:
        return {}
    stmt = (
        select(OccupierUser.occupier_id, func.count())
        .where(OccupierUser.occupier_id.in_(occupier_ids))
        .group_by(OccupierUser.occupier_id)
    )
    return {occ_id: n for occ_id, n in session.execute(stmt)}
