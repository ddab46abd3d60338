"""user search index: FTS5 trigram on SQLite, pg_trgm GIN on PostgreSQL

Revision ID: 0002_user_search
Revises: 0001_core
Create Date: 2026-11-21

Operator-wide search by any fragment of a name or email must stay fast at a million users, so it
cannot be ``LIKE '%x%'`` over the table. Note for later migrations: a SQLite batch rebuild of
``occupier_users`` drops these triggers; recreate them afterwards.

SQLite also gets planner statistics for ``occupier_users`` (rows in ``sqlite_stat1``). Without any,
its planner assumes that ``operator_id = ?`` selects about ten rows, so a query naming a few users
(``id IN (...)``, the search's candidates) walks the whole operator's index instead: 0.2 to 8 s at a
million users. The statistics describe the table's shape, not its size: one operator's users are
all of them, an occupier's many thousands (real ANALYZE figures, a few hundred per occupier, make a
site manager's search sort all the site's users). A later migration that adds an index to
``occupier_users`` must write its sqlite_stat1 row the same way (see ``sqlite_planner_shape``).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002_user_search"
down_revision: str | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UP = [
    "CREATE VIRTUAL TABLE occupier_users_fts USING fts5("
    "search_text, content='occupier_users', content_rowid='id', tokenize='trigram')",
    # Deleted users' text is removed from the index at once, not left in old segments.
    "INSERT INTO occupier_users_fts(occupier_users_fts, rank) VALUES ('secure-delete', 1)",
    "CREATE TRIGGER occupier_users_fts_ai AFTER INSERT ON occupier_users BEGIN "
    "INSERT INTO occupier_users_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "CREATE TRIGGER occupier_users_fts_ad AFTER DELETE ON occupier_users BEGIN "
    "INSERT INTO occupier_users_fts(occupier_users_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); END",
    "CREATE TRIGGER occupier_users_fts_au AFTER UPDATE OF search_text ON occupier_users BEGIN "
    "INSERT INTO occupier_users_fts(occupier_users_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text); "
    "INSERT INTO occupier_users_fts(rowid, search_text) VALUES (new.id, new.search_text); END",
    "INSERT INTO occupier_users_fts(occupier_users_fts) VALUES ('rebuild')",
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS occupier_users_fts_au",
    "DROP TRIGGER IF EXISTS occupier_users_fts_ad",
    "DROP TRIGGER IF EXISTS occupier_users_fts_ai",
    "DROP TABLE IF EXISTS occupier_users_fts",
]

POSTGRES_UP = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_occupier_users_search_trgm ON occupier_users USING gin (search_text gin_trgm_ops)",
]

POSTGRES_DOWN = ["DROP INDEX IF EXISTS ix_occupier_users_search_trgm"]


# Average rows per value of an index's first column; later columns are taken as (nearly) unique.
_ROWS = 1_000_000
# An occupier is taken to have tens of thousands of users: with fewer, a site manager's list or search
# (occupier_id IN the site's occupiers) sorts every user of the site instead of walking the name index,
# 1-2.5 s instead of a few ms at a million users; an occupier's own list still uses its index.
_ROWS_PER_VALUE = {"operator_id": _ROWS, "occupier_id": 50_000}


def sqlite_planner_shape() -> None:
    """Write sqlite_stat1 rows for every index of occupier_users and make the planner read them."""
    conn = op.get_bind()
    conn.exec_driver_sql("ANALYZE sqlite_schema")  # creates sqlite_stat1 when missing
    conn.exec_driver_sql("DELETE FROM sqlite_stat1 WHERE tbl = 'occupier_users'")
    indexes = [row[0] for row in conn.exec_driver_sql("SELECT name FROM pragma_index_list('occupier_users')")]
    for index in indexes:
        columns = [row[0] for row in conn.exec_driver_sql("SELECT name FROM pragma_index_info(?)", (index,))]
        per_value = [_ROWS_PER_VALUE.get(columns[0], 1)] + [1] * (len(columns) - 1)
        stat = " ".join(str(n) for n in [_ROWS, *per_value])
        conn.exec_driver_sql(
            "INSERT INTO sqlite_stat1(tbl, idx, stat) VALUES ('occupier_users', ?, ?)", (index, stat)
        )
    conn.exec_driver_sql("ANALYZE sqlite_schema")  # reload the statistics in this connection


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_UP if dialect == "sqlite" else POSTGRES_UP:
        op.execute(statement)
    if dialect == "sqlite":
        sqlite_planner_shape()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if (
        dialect == "sqlite"
        and op.get_bind().exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first()
    ):
        op.execute("DELETE FROM sqlite_stat1 WHERE tbl = 'occupier_users'")
    for statement in SQLITE_DOWN if dialect == "sqlite" else POSTGRES_DOWN:
        op.execute(statement)
