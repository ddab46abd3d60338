"""Reading occupier users: scoped lists, search by any fragment of name or email, keyset pages.

A search page is found one of two ways, chosen by how many users match:

* few (at most ``FEW_MATCHES``, which the trigram index — SQLite FTS5 / PostgreSQL pg_trgm — tells
  for fragments of three characters or more): the index gives their ids and only those rows are put
  in name order;
* many, or a fragment too short for the index: walk the name-ordered index, testing each row, and
  stop at the first page of matches — short, because matches are frequent.

Each statement leaves the planner one sensible plan. Left to choose, both databases walked the whole
name index for rare fragments (``ORDER BY sort_key LIMIT n`` with a misjudged match count), which
took seconds at a million users.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select, text, true, tuple_
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.authz.scope import user_filter
from occupant.kit.pagination import Page, decode_cursor, encode_cursor, page_of
from occupant.users.models import OccupierUser, UserStatus


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# A fragment with at most this many matches is answered from the trigram index; one with more walks the
# name-ordered index, where a page of matches is usually near the start. Per dialect: SQLite's FTS5 gives
# ids without reading the table, while PostgreSQL rechecks every trigram candidate in the table itself.
# Measured at a million users (bench/search.py): p95 lowest at 5,000 on SQLite, 2,000-3,000 on PostgreSQL.
FEW_MATCHES = {"sqlite": 5000, "postgresql": 3000}


def _needle(q: str | None) -> str:
    return " ".join((q or "").lower().split())


def _fts_matching(needle: str) -> Select[Any]:
    phrase = '"' + needle.replace('"', '""') + '"'
    return (
        select(literal_column("rowid"))
        .select_from(text("occupier_users_fts"))
        .where(text("occupier_users_fts MATCH :phrase").bindparams(phrase=phrase))
    )


def search_clause(session: Session, q: str) -> ColumnElement[bool] | None:
    """The filter for "name or email contains q" (case-insensitive), using the dialect's trigram index."""
    needle = _needle(q)
    if not needle:
        return None
    dialect = session.get_bind().dialect.name
    if len(needle) >= 3 and dialect == "sqlite":
        return OccupierUser.id.in_(_fts_matching(needle))
    if dialect == "postgresql":
        return OccupierUser.search_text.like(f"%{_escape_like(needle)}%", escape="\\")
    return func.instr(OccupierUser.search_text, needle) > 0


def _contains(session: Session, needle: str) -> ColumnElement[bool]:
    """Contains ``needle``, tested on each row walked; never answered from the trigram index."""
    if session.get_bind().dialect.name == "postgresql":
        return func.strpos(OccupierUser.search_text, needle) > 0
    return func.instr(OccupierUser.search_text, needle) > 0


def _keys_from_index(
    session: Session,
    actor: Actor,
    needle: str,
    *,
    occupier_id: int | None,
    status: UserStatus | str | None,
    after: list[Any] | None,
    limit: int,
) -> list[int] | None:
    """Ids of the next ``limit + 1`` users in name order whose name or email contains ``needle``, when
    the trigram index finds at most FEW_MATCHES of them; None when it finds more (or cannot: a fragment
    shorter than three characters).
    """
    if "\x00" in needle:
        return []  # stored text never holds NUL, and neither database accepts it in a pattern
    if len(needle) < 3:
        return None
    dialect = session.get_bind().dialect.name
    few = FEW_MATCHES.get(dialect, 3000)
    if dialect == "postgresql":
        # One statement: the matches (rechecked in the table, so their sort keys come along), counted,
        # and the page of them in name order. The materialized CTE leaves no other plan to pick.
        like = OccupierUser.search_text.like(f"%{_escape_like(needle)}%", escape="\\")
        found = (
            filtered(session, actor, occupier_id=occupier_id, status=status)
            .with_only_columns(OccupierUser.id, OccupierUser.sort_key)
            .where(like)
            .limit(few + 1)
            .cte("found")
            .prefix_with("MATERIALIZED")
        )
        counted = select(func.count().label("total")).select_from(found).subquery("counted")
        page = select(found.c.id, found.c.sort_key)
        if after is not None:
            page = page.where(tuple_(found.c.sort_key, found.c.id) > tuple_(after[0], after[1]))
        lateral = page.order_by(found.c.sort_key, found.c.id).limit(limit + 1).lateral("page")
        rows = session.execute(
            select(counted.c.total, lateral.c.id)
            .select_from(counted.outerjoin(lateral, true()))
            .order_by(lateral.c.sort_key, lateral.c.id)
        ).all()
        if rows[0].total > few:
            return None
        return [row.id for row in rows if row.id is not None]
    ids = list(session.scalars(_fts_matching(needle).limit(few + 1)))
    if len(ids) > few:
        return None
    if not ids:
        return []
    # FTS5 knows only the text: the filters and the order come from the table. Every candidate's key is
    # fetched, without LIMIT: with all of them to fetch, reading them by id is the only sensible plan.
    keys = (
        filtered(session, actor, occupier_id=occupier_id, status=status)
        .with_only_columns(OccupierUser.sort_key, OccupierUser.id)
        .where(OccupierUser.id.in_(ids))
    )
    if after is not None:
        keys = keys.where(tuple_(OccupierUser.sort_key, OccupierUser.id) > tuple_(after[0], after[1]))
    ordered = session.execute(keys.order_by(OccupierUser.sort_key, OccupierUser.id)).all()
    return [row.id for row in ordered[: limit + 1]]


def filtered(
    session: Session,
    actor: Actor,
    *,
    q: str | None = None,
    occupier_id: int | None = None,
    status: UserStatus | str | None = None,
) -> Select[Any]:
    stmt = select(OccupierUser).where(user_filter(actor))
    if occupier_id is not None:
        stmt = stmt.where(OccupierUser.occupier_id == occupier_id)
    if status:
        stmt = stmt.where(OccupierUser.status == str(status))
    clause = search_clause(session, q or "")
    if clause is not None:
        stmt = stmt.where(clause)
    return stmt


def list_users(
    session: Session,
    actor: Actor,
    *,
    q: str | None = None,
    occupier_id: int | None = None,
    status: UserStatus | str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[OccupierUser]:
    """One page of users the actor can see, in name order, with the cursor of the next page."""
    after = decode_cursor(cursor, 2)
    needle = _needle(q)
    if needle:
        ids = _keys_from_index(
            session, actor, needle, occupier_id=occupier_id, status=status, after=after, limit=limit
        )
        if ids is not None:
            return _load_page(session, ids, limit)
    stmt = filtered(session, actor, occupier_id=occupier_id, status=status)
    if needle:
        stmt = stmt.where(_contains(session, needle))
    if after is not None:
        stmt = stmt.where(tuple_(OccupierUser.sort_key, OccupierUser.id) > tuple_(after[0], after[1]))
    stmt = stmt.order_by(OccupierUser.sort_key, OccupierUser.id).limit(limit + 1)
    return page_of(list(session.scalars(stmt)), limit, lambda u: [u.sort_key, u.id])


def _load_page(session: Session, ids: list[int], limit: int) -> Page[OccupierUser]:
    """The users ``ids``, already in name order; one id more than ``limit`` means there is a next page."""
    shown = ids[:limit]
    loaded = {
        user.id: user for user in session.scalars(select(OccupierUser).where(OccupierUser.id.in_(shown)))
    }
    rows = [loaded[i] for i in shown if i in loaded]
    if len(ids) <= limit or not rows:
        return Page(items=rows)
    return Page(items=rows, next_cursor=encode_cursor([rows[-1].sort_key, rows[-1].id]))


def count_users(session: Session, actor: Actor, *, occupier_id: int | None = None) -> int:
    stmt = select(func.count()).select_from(OccupierUser).where(user_filter(actor))
    if occupier_id is not None:
        stmt = stmt.where(OccupierUser.occupier_id == occupier_id)
    return int(session.scalar(stmt) or 0)


def iter_users(
    session: Session, actor: Actor, *, batch: int = 1000, **filters: Any
) -> Iterator[OccupierUser]:
    """Every matching user in name order, a batch at a time (exports)."""
    cursor = None
    while True:
        page = list_users(session, actor, cursor=cursor, limit=batch, **filters)
        yield from page.items
        session.expunge_all()
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
