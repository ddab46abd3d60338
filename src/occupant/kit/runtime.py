"""The process's engine and session factory, made once from the settings."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from occupant.kit.db import make_engine, make_session_factory
from occupant.kit.settings import get_settings

_override: sessionmaker[Session] | None = None


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.resolved_database_url)


def get_session_factory() -> sessionmaker[Session]:
    if _override is not None:
        return _override
    return _default_factory()


def get_read_session_factory() -> sessionmaker[Session]:
    """Sessions for requests that only read (on SQLite they do not take the write lock)."""
    if _override is not None:
        return _override
    return _read_factory()


@lru_cache
def _default_factory() -> sessionmaker[Session]:
    return make_session_factory(get_engine())


@lru_cache
def _read_factory() -> sessionmaker[Session]:
    return make_session_factory(get_engine(), read_only=True)


def use_session_factory(factory: sessionmaker[Session] | None) -> None:
    """Point the process at another database (tests, benchmarks)."""
    global _override
    _override = factory
