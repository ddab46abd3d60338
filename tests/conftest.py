"""Test fixtures. Every database test runs twice: on SQLite and on PostgreSQL.

The schema is built by running the migrations. Each test runs inside a transaction that is rolled
back (``db``); tests that need real commits (concurrency, workers) use ``committed`` instead.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator

_TMP = tempfile.mkdtemp(prefix="occupant-tests-")
os.environ.setdefault("OCCUPANT_DATA_DIR", _TMP)
os.environ.setdefault("OCCUPANT_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("OCCUPANT_QUEUE", "memory")
os.environ.pop("OCCUPANT_DATABASE_URL", None)
os.environ.pop("OCCUPANT_SMTP_URL", None)
os.environ.pop("OCCUPANT_REDIS_URL", None)

import pytest  # noqa: E402
from sqlalchemy import Engine, delete  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from occupant.kit import migrate, runtime  # noqa: E402
from occupant.kit.db import Base, make_engine  # noqa: E402
from tests.support import postgres  # noqa: E402

# One chromium per test process (session-scoped here, shared by the console and portal browser tests:
# two Playwright instances cannot run in one thread).
from tests.web.browser import chromium  # noqa: E402, F401

BACKENDS = ["sqlite", "postgresql"]


def pytest_configure(config: pytest.Config) -> None:
    # The controller finds or starts PostgreSQL once; xdist workers inherit the DSN.
    if not hasattr(config, "workerinput"):
        if "OCCUPANT_TEST_POSTGRES_DSN" not in os.environ:
            os.environ["OCCUPANT_TEST_POSTGRES_DSN"] = postgres.ensure_server()
        # Databases are named per run, so that runs sharing one server never touch each other's.
        os.environ.setdefault("OCCUPANT_TEST_RUN_ID", uuid.uuid4().hex[:8])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``postgres_only`` (PostgreSQL features: roles, functions) run on PostgreSQL alone."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_sqlite = callspec is not None and callspec.params.get("engine") == "sqlite"
        (drop if on_sqlite and item.get_closest_marker("postgres_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session", params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "sqlite":
        path = os.path.join(_TMP, f"test-{_worker()}.db")
        if os.path.exists(path):
            os.remove(path)
        url = f"sqlite:///{path}"
    else:
        name = f"occupant_test_{os.environ['OCCUPANT_TEST_RUN_ID']}_{_worker()}"
        url = postgres.recreate_database(os.environ["OCCUPANT_TEST_POSTGRES_DSN"], name)
    eng = make_engine(url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()
    if request.param == "postgresql":
        postgres.drop_database(os.environ["OCCUPANT_TEST_POSTGRES_DSN"], name)


@pytest.fixture
def backend(engine: Engine) -> str:
    return engine.dialect.name


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose every commit is undone after the test; the app under test shares it."""
    connection = engine.connect()
    outer = connection.begin()
    factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    session = factory()
    runtime.use_session_factory(factory)
    try:
        yield session
    finally:
        runtime.use_session_factory(None)
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def committed(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """A session factory whose commits are real (concurrency, workers); the tables are emptied after."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    runtime.use_session_factory(factory)
    try:
        yield factory
    finally:
        runtime.use_session_factory(None)
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(delete(table))
