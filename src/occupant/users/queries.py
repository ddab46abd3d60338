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

from sqlalchemy import ColumnElement, Select, func, literal_column, select, text, tuple_
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.authz.scope import user_filter
from occupant.kit.pagination import Page, decode_cursor, encode_cursor, page_of
from occupant.users.models import OccupierUser, UserStatus


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# A fragment with at most this many matches is answered from the trigram index; one with more walks the
# name-ordered index, where a page of matches is near the start.
FEW_MATCHES = 2000


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


def _few_matches(session: Session, actor: Actor, needle: str) -> list[int] | None:
    """Ids of the users whose name or email contains ``needle``, from the trigram index, when there are
    at most FEW_MATCHES; None when there are more or the fragment is too short for the index.

    On SQLite the ids are every tenant's (the caller applies the actor's scope).
    """
    if "\x00" in needle:
        return []  # stored text never holds NUL, and neither database accepts it in a pattern
    if len(needle) < 3:
        return None
    if session.get_bind().dialect.name == "sqlite":
        stmt = _fts_matching(needle)
    else:
        like = OccupierUser.search_text.like(f"%{_escape_like(needle)}%", escape="\\")
        stmt = select(OccupierUser.id).where(user_filter(actor), like)
    ids = list(session.scalars(stmt.limit(FEW_MATCHES + 1)))
    return ids if len(ids) <= FEW_MATCHES else None


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
    few = _few_matches(session, actor, needle) if needle else None
    if few is not None:
        return _page_of(session, actor, few, occupier_id=occupier_id, status=status, after=after, limit=limit)
    stmt = filtered(session, actor, occupier_id=occupier_id, status=status)
    if needle:
        stmt = stmt.where(_contains(session, needle))
    if after is not None:
        stmt = stmt.where(tuple_(OccupierUser.sort_key, OccupierUser.id) > tuple_(after[0], after[1]))
    stmt = stmt.order_by(OccupierUser.sort_key, OccupierUser.id).limit(limit + 1)
    return page_of(list(session.scalars(stmt)), limit, lambda u: [u.sort_key, u.id])


def _page_of(
    session: Session,
    actor: Actor,
    ids: list[int],
    *,
    occupier_id: int | None,
    status: UserStatus | str | None,
    after: list[Any] | None,
    limit: int,
) -> Page[OccupierUser]:
    """The page of the candidates ``ids`` that the actor can see, in name order."""
    if not ids:
        return Page(items=[])
    # Every candidate's sort key, in order, without LIMIT: with all of them to fetch, fetching them by id
    # is the only sensible plan (with a LIMIT, walking the name index looks cheaper to the planner).
    keys = (
        filtered(session, actor, occupier_id=occupier_id, status=status)
        .with_only_columns(OccupierUser.sort_key, OccupierUser.id)
        .where(OccupierUser.id.in_(ids))
    )
    if after is not None:
        keys = keys.where(tuple_(OccupierUser.sort_key, OccupierUser.id) > tuple_(after[0], after[1]))
    ordered = session.execute(keys.order_by(OccupierUser.sort_key, OccupierUser.id)).all()
    shown = [row.id for row in ordered[:limit]]
    loaded = session.scalars(select(OccupierUser).where(OccupierUser.id.in_(shown)))
    by_id = {user.id: user for user in loaded}
    rows = [by_id[i] for i in shown if i in by_id]
    next_cursor = None
    if len(ordered) > limit and rows:
        next_cursor = encode_cursor([rows[-1].sort_key, rows[-1].id])
    return Page(items=rows, next_cursor=next_cursor)


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
