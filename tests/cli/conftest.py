"""Fixtures for the command line: a fresh data folder and database (SQLite and PostgreSQL) per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from occupant.cli.common import release_engine
from occupant.cli.main import app
from occupant.kit.db import make_engine
from occupant.kit.settings import get_settings
from tests.support import postgres


@dataclass
class Cli:
    """Runs ``occupant`` in-process against one data folder and database."""

    backend: str
    url: str
    data_dir: Path
    runner: CliRunner = field(default_factory=CliRunner)

    @property
    def env(self) -> dict[str, str | None]:
        return {"OCCUPANT_DATA_DIR": str(self.data_dir), "OCCUPANT_DATABASE_URL": self.url}

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(app, list(args), env=self.env, input=input, catch_exceptions=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        engine = make_engine(self.url)
        try:
            with sessionmaker(bind=engine, expire_on_commit=False)() as session:
                yield session
        finally:
            engine.dispose()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Commands re-read the settings; afterwards the rest of the suite reads its own again."""
    yield
    release_engine()
    get_settings.cache_clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    data_dir = tmp_path / "data"
    if request.param == "sqlite":
        yield Cli("sqlite", f"sqlite:///{data_dir / 'occupant.db'}", data_dir)
        return
    admin_dsn = os.environ["OCCUPANT_TEST_POSTGRES_DSN"]
    name = f"occupant_cli_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    url = postgres.recreate_database(admin_dsn, name)
    try:
        yield Cli("postgresql", url, data_dir)
    finally:
        release_engine()
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Cli:
    data_dir = tmp_path / "data"
    return Cli("sqlite", f"sqlite:///{data_dir / 'occupant.db'}", data_dir)
