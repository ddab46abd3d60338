"""``bench explain``: the query plans of what ``list_users`` really sends, for a slow query's diagnosis.

The statements are captured from the engine while ``list_users`` runs, then explained with the same
parameters: EXPLAIN QUERY PLAN on SQLite, EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event

from bench.build import DatasetInfo
from bench.common import app_sessions, operator_admin, site_manager
from occupant.users.queries import count_users, list_users


def _short(statement: str) -> str:
    """The statement with its long select list elided."""
    flat = " ".join(statement.split())
    head, sep, tail = flat.partition(" FROM ")
    return ("SELECT … FROM " + tail) if sep and head.upper().startswith("SELECT") and len(head) > 80 else flat


def explain(
    info: DatasetInfo,
    q: str | None,
    *,
    occupier_id: int | None = None,
    count: bool = False,
    as_site_manager: bool = False,
    all_statements: bool = False,
) -> str:
    lines: list[str] = []
    with app_sessions(info) as (engine, factory):
        actor = site_manager(info, factory) if as_site_manager else operator_admin(info)
        captured: list[tuple[str, Any]] = []

        def capture(
            _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
        ) -> None:
            if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                captured.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", capture)
        with factory() as session:
            started = time.perf_counter()
            page = list_users(session, actor, q=q, occupier_id=occupier_id, limit=50)
            total = count_users(session, actor, occupier_id=occupier_id) if count else None
            elapsed = time.perf_counter() - started
            session.rollback()
        event.remove(engine, "before_cursor_execute", capture)
        lines.append(
            f"q={q!r} occupier_id={occupier_id} -> {len(page.items)} rows"
            + (f", count {total}" if total is not None else "")
            + f" in {elapsed * 1000:.1f} ms"
        )
        with engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            for statement, params in captured:
                if "occupier_users" not in statement and not all_statements:
                    continue  # the relationship loads (sites, NAS) are tiny and always fast
                lines.append("")
                lines.append(_short(statement))
                lines.append(f"-- params: {params}")
                cur = dbapi.cursor()
                if info.backend == "sqlite":
                    cur.execute("EXPLAIN QUERY PLAN " + statement, params)
                    for row in cur.fetchall():
                        lines.append(f"   {row[0]:>3} {row[1]:>3}  {row[3]}")
                else:
                    cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                    lines.extend("   " + row[0] for row in cur.fetchall())
                cur.close()
            conn.rollback()
    return "\n".join(lines)
