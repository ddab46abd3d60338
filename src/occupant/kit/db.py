"""Engine, sessions, the declarative base, and after-commit hooks.

Services flush; the request, the CLI command or the task commits. Side effects that must only happen
once the change is durable (enqueueing work) go through :func:`on_commit`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from occupant.kit.clock import utcnow

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)


def _sqlite_module() -> Any:
    """pysqlite3 ships a recent SQLite (FTS5 secure-delete); the standard library's is the fallback."""
    try:
        import pysqlite3.dbapi2 as module
    except ImportError:  # pragma: no cover - platforms without the wheel
        import sqlite3 as module
    return module


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            module=_sqlite_module(),
            connect_args={"check_same_thread": False, "timeout": 30},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (BEGIN IMMEDIATE below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        # Deleted rows are overwritten, so a deleted user's data does not linger in free pages.
        cur.execute("PRAGMA secure_delete=ON")
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers queue on the lock up front instead of failing to upgrade a read lock later;
        # read-only sessions (GET requests) begin deferred so that they never wait for a writer.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    if read_only and engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="DEFERRED")
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


_HOLDER_KEY = "occupant_holder"


@contextmanager
def working_for(session: Session, holder: str) -> Iterator[None]:
    """Inside the block, users held busy by ``holder`` (e.g. ``"bulk:42"``, a bulk job) are not busy to
    this session's actions: the job's own items go through the same actions as everyone's."""
    previous = session.info.get(_HOLDER_KEY)
    session.info[_HOLDER_KEY] = holder
    try:
        yield
    finally:
        if previous is None:
            session.info.pop(_HOLDER_KEY, None)
        else:
            session.info[_HOLDER_KEY] = previous


def holder_of(session: Session | None) -> str | None:
    """Whose holds ``session`` works for (see :func:`working_for`), if anyone's."""
    return None if session is None else session.info.get(_HOLDER_KEY)


def reader_beside(session: Session) -> Session:
    """A new read-only session on ``session``'s database: on SQLite it begins deferred, so it takes no write
    lock and waits for none. (Bound to a connection, as in the tests, it shares that connection.)"""
    bind = session.get_bind()
    if isinstance(bind, Engine):
        if bind.dialect.name == "sqlite":
            bind = bind.execution_options(sqlite_begin="DEFERRED")
        return Session(bind=bind, expire_on_commit=False)
    return Session(bind=bind, join_transaction_mode="create_savepoint", expire_on_commit=False)


# --- after-commit hooks -------------------------------------------------------------------------

_HOOKS_KEY = "occupant_on_commit"


def on_commit(session: Session, callback: Callable[[], None], *, key: Hashable | None = None) -> None:
    """Run ``callback`` after the session's transaction commits; drop it on rollback.

    With ``key``, a callback is registered once per transaction however often it is asked for.
    """
    hooks: dict[Any, Callable[[], None]] = session.info.setdefault(_HOOKS_KEY, {})
    hooks[key if key is not None else id(callback)] = callback


def discard_commit_hooks(session: Session) -> None:
    """Forget the after-commit callbacks registered so far in this transaction (work that was only tried
    inside savepoints since rolled back, e.g. a preview)."""
    session.info.pop(_HOOKS_KEY, None)


@event.listens_for(Session, "after_commit")
def _run_commit_hooks(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint was released: the real commit is still to come
        return
    hooks = session.info.pop(_HOOKS_KEY, None)
    if not hooks:
        return
    for callback in hooks.values():
        try:
            callback()
        except Exception:  # a failed wake-up only delays work: the periodic sweep picks it up
            log.exception("on_commit.failed")


@event.listens_for(Session, "after_rollback")
def _drop_commit_hooks(session: Session) -> None:
    if not session.in_transaction():
        session.info.pop(_HOOKS_KEY, None)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits at the end of the block, or rolls back on an exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def flush_in_savepoint(session: Session, *new: object, changed: tuple[object, ...] = ()) -> None:
    """Add ``new`` objects and flush inside a savepoint, so a constraint violation leaves the session usable.

    On IntegrityError the new objects are gone from the session and ``changed`` objects are expired
    (reloaded from the database on next access); the error is re-raised for the caller to translate.
    """
    from sqlalchemy.exc import IntegrityError

    try:
        with session.begin_nested():
            session.add_all(new)
            session.flush()
    except IntegrityError:
        for obj in new:
            if obj in session:
                session.expunge(obj)
        for obj in changed:
            session.expire(obj)
        raise
