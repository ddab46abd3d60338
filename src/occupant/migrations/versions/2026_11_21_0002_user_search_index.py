"""user search index: FTS5 trigram on SQLite, pg_trgm GIN on PostgreSQL

Revision ID: 0002_user_search
Revises: 0001_core
Create Date: 2026-11-21

Operator-wide search by any fragment of a name or email must stay fast at a million users, so it
cannot be ``LIKE '%x%'`` over the table. Note for later migrations: a SQLite batch rebuild of
``occupier_users`` drops these triggers; recreate them afterwards.
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


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_UP if dialect == "sqlite" else POSTGRES_UP:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_DOWN if dialect == "sqlite" else POSTGRES_DOWN:
        op.execute(statement)
