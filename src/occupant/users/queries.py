"""Reading occupier users: scoped lists, search by any fragment of name or email, keyset pages.

Search uses a trigram index (SQLite FTS5 / PostgreSQL pg_trgm) for fragments of three characters or
more; shorter fragments walk the sorted index and stop at the first page of matches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select, text, tuple_
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.authz.scope import user_filter
from occupant.kit.pagination import Page, decode_cursor, encode_cursor
from occupant.users.models import OccupierUser, UserStatus


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_clause(session: Session, q: str) -> ColumnElement[bool] | None:
    """The filter for "name or email contains q" (case-insensitive), using the dialect's trigram index."""
    needle = " ".join((q or "").lower().split())
    if not needle:
        return None
    dialect = session.get_bind().dialect.name
    if len(needle) >= 3 and dialect == "sqlite":
        phrase = '"' + needle.replace('"', '""') + '"'
        matching = (
            select(literal_column("rowid"))
            .select_from(text("occupier_users_fts"))
            .where(text("occupier_users_fts MATCH :phrase").bindparams(phrase=phrase))
        )
        return OccupierUser.id.in_(matching)
    if dialect == "postgresql":
        return OccupierUser.search_text.like(f"%{_escape_like(needle)}%", escape="\\")
    return func.instr(OccupierUser.search_text, needle) > 0


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
    stmt = filtered(session, actor, q=q, occupier_id=occupier_id, status=status)
    after = decode_cursor(cursor, 2)
    if after is not None:
        stmt = stmt.where(tuple_(OccupierUser.sort_key, OccupierUser.id) > tuple_(after[0], after[1]))
    stmt = stmt.order_by(OccupierUser.sort_key, OccupierUser.id).limit(limit + 1)
    rows = list(session.scalars(stmt))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor([last.sort_key, last.id])
    return Page(items=rows, next_cursor=next_cursor)


def count_users(session: Session, actor: Actor, *, occupier_id: int | None = None) -> int:
    stmt = select(func.count()).select_from(OccupierUser).where(user_filter(actor))
    if occupier_id is not None:
        stmt = stmt.where(OccupierUser.occupier_id == occupier_id)
    return int(session.scalar(stmt) or 0)


def iter_users(session: Session, actor: Actor, *, batch: int = 1000, **filters: Any) -> Iterator[OccupierUser]:
    """Every matching user in name order, a batch at a time (exports)."""
    cursor = None
    while True:
        page = list_users(session, actor, cursor=cursor, limit=batch, **filters)
        yield from page.items
        session.expunge_all()
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
