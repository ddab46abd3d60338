"""Reading occupier users: scoped lists, search by any fragment of name or email, keyset pages.

A search page is found one of four ways, chosen by how many users match:

* very many (".com"): the first ``PEEK`` users in name order already hold a page of matches;
* few (at most ``FEW_MATCHES``, which the trigram index — SQLite FTS5 / PostgreSQL pg_trgm — tells
  for fragments of three characters or more): the index gives their ids and only those rows are put
  in name order;
* many: walk the name-ordered index, testing each row, and stop at the first page of matches — short,
  because matches are frequent;
* a fragment too short for the index: walk the first ``SHORT_WALK`` users in name order; if they hold
  less than a page of matches, the fragment is rare and all its matches are collected and sorted.

Each statement leaves the planner one sensible plan. Left to choose, both databases walked the whole
name index for rare fragments (``ORDER BY sort_key LIMIT n`` with a misjudged match count), which
took seconds at a million users.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, Select, column, func, literal_column, select, table, text, true, tuple_
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.authz.scope import user_filter
from occupant.kit.pagination import Page, decode_cursor, encode_cursor, page_of
from occupant.users.models import OccupierUser, UserStatus


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# A fragment with at most this many matches is answered from the trigram index (its matches put in name
# order); one with more walks the name-ordered index, where a page of matches is usually near the start.
# At a million users (bench/search.py) the p95 is lowest around 5,000 on both databases: fewer sends
# clustered matches (a common surname: all near one spot of the name order) to long walks; more makes
# the sort of the matches cost more than the walk it saves.
FEW_MATCHES = 5000
# Every search first looks at this many users in name order: a common fragment (".com", "son") has a
# page of matches among them, found before asking the trigram index, which would list all its matches.
PEEK = 500
# A fragment too short for the trigram index looks at this many users in name order before deciding that
# it is rare (fewer than a page of matches among them) and collecting all its matches instead.
SHORT_WALK = 20_000


def _needle(q: str | None) -> str:
    return " ".join((q or "").lower().split())


def _fts_phrase(needle: str) -> str:
    return '"' + needle.replace('"', '""') + '"'


def _fts_matching(needle: str) -> Select[Any]:
    return (
        select(literal_column("rowid"))
        .select_from(text("occupier_users_fts"))
        .where(text("occupier_users_fts MATCH :phrase").bindparams(phrase=_fts_phrase(needle)))
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


def _contains(session: Session, needle: str, column: Any = OccupierUser.search_text) -> ColumnElement[bool]:
    """Contains ``needle``, tested on each row walked; never answered from the trigram index."""
    if session.get_bind().dialect.name == "postgresql":
        return func.strpos(column, needle) > 0
    return func.instr(column, needle) > 0


def _candidates(
    session: Session,
    actor: Actor,
    *,
    occupier_id: int | None,
    status: UserStatus | str | None,
    after: list[Any] | None,
) -> Select[int, str, str]:
    """The users the actor can see after the cursor: id, sort key and search text (no ORM objects)."""
    stmt = filtered(session, actor, occupier_id=occupier_id, status=status).with_only_columns(
        OccupierUser.id, OccupierUser.sort_key, OccupierUser.search_text
    )
    if after is not None:
        stmt = stmt.where(tuple_(OccupierUser.sort_key, OccupierUser.id) > tuple_(after[0], after[1]))
    return stmt


def _keys_in_window(
    session: Session, needle: str, candidates: Select[int, str, str], window: int, limit: int
) -> list[int] | None:
    """Ids of the next ``limit + 1`` matches when the next ``window`` users in name order hold them."""
    walked = candidates.order_by(OccupierUser.sort_key, OccupierUser.id).limit(window).subquery("walked")
    ids = list(
        session.scalars(
            select(walked.c.id)
            .where(_contains(session, needle, walked.c.search_text))
            .order_by(walked.c.sort_key, walked.c.id)
            .limit(limit + 1)
        )
    )
    return ids if len(ids) > limit else None


def _keys_of_all_matches(
    session: Session, needle: str, candidates: Select[int, str, str], limit: int
) -> list[int]:
    """Ids of the next ``limit + 1`` matches, found by testing every candidate once and sorting the matches:
    for a rare fragment the trigram index cannot answer, where walking on in name order would read every
    user one by one (seconds at a million). The materialized CTE keeps the scan from following the index.
    """
    matches = (
        candidates.with_only_columns(OccupierUser.id, OccupierUser.sort_key)
        .where(_contains(session, needle))
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    return list(
        session.scalars(select(matches.c.id).order_by(matches.c.sort_key, matches.c.id).limit(limit + 1))
    )


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
    if len(needle) < 3:
        return None
    few = FEW_MATCHES
    if session.get_bind().dialect.name == "postgresql":
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
        if actor.is_operator_admin or actor.occupier_id is not None or occupier_id is not None:
            return None  # dense where the actor looks too; or one occupier's users, a short walk anyway
        # Many matches, but perhaps few at this site manager's sites: FTS5 knows only the text, so its
        # matches are checked against the scope as it streams them, FEW_MATCHES at most.
        # (SQLite compares text as code points, as Python does: sorting here gives the database's order.)
        fts = table("occupier_users_fts", column("rowid"))
        scoped = (
            filtered(session, actor, occupier_id=occupier_id, status=status)
            .with_only_columns(OccupierUser.sort_key, OccupierUser.id)
            .select_from(fts)
            .join(OccupierUser, OccupierUser.id == fts.c.rowid)
            .where(text("occupier_users_fts MATCH :phrase").bindparams(phrase=_fts_phrase(needle)))
        )
        if after is not None:
            scoped = scoped.where(tuple_(OccupierUser.sort_key, OccupierUser.id) > tuple_(after[0], after[1]))
        in_scope = session.execute(scoped.limit(few + 1)).all()
        if len(in_scope) > few:
            return None
        return [user_id for _key, user_id in sorted((row.sort_key, row.id) for row in in_scope)[: limit + 1]]
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
        if "\x00" in needle:
            return Page(items=[])  # stored text never holds NUL, and neither database accepts it in a pattern
        filters: dict[str, Any] = {"occupier_id": occupier_id, "status": status, "after": after}
        candidates = _candidates(session, actor, **filters)
        ids = _keys_in_window(session, needle, candidates, PEEK, limit)
        if ids is None:
            ids = _keys_from_index(session, actor, needle, **filters, limit=limit)
        if ids is None and len(needle) < 3 and occupier_id is None and actor.occupier_id is None:
            ids = _keys_in_window(session, needle, candidates, SHORT_WALK, limit)
            if ids is None:
                ids = _keys_of_all_matches(session, needle, candidates, limit)
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
