"""Where the benchmark databases live: a SQLite file under bench/out/, a PostgreSQL database."""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql

from bench import OUT

Backend = Literal["sqlite", "postgresql"]
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql")
PG_DATABASE = "occupant_bench"


@dataclass(frozen=True)
class PgServer:
    admin_dsn: str  # libpq DSN of the server's "postgres" database
    throwaway: bool

    def dsn(self, database: str) -> str:
        return self.admin_dsn.rsplit("/", 1)[0] + "/" + database

    def url(self, database: str) -> str:
        return self.dsn(database).replace("postgresql://", "postgresql+psycopg://", 1)

    def exists(self, database: str) -> bool:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            return (
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
                is not None
            )

    def recreate(self, database: str) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')

    def comment(self, database: str) -> str | None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [database]
            ).fetchone()
        return None if row is None else row[0]

    def set_comment(self, database: str, text: str) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'COMMENT ON DATABASE "{database}" IS ' + sql.quote(text))

    def version(self) -> str:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


_server: PgServer | None = None


def use_tuned_throwaway(settings: list[str]) -> PgServer:
    """Start a throwaway server with extra ``name=value`` settings (e.g. shared_buffers=1GB) and use it.

    For comparing with the local server's configuration; the dataset is rebuilt in it on every run.
    """
    global _server
    import shutil
    import subprocess
    import tempfile

    from tests.support import postgres

    workdir = tempfile.mkdtemp(prefix="occupant-bench-pg-")
    datadir = os.path.join(workdir, "data")
    port = postgres._free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        os.chmod(workdir, 0o777)
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, postgres._bin("initdb"), "-D", datadir, "-U", "postgres", "-A", "trust", "-E", "UTF8"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    extra = " ".join(f"-c {setting}" for setting in settings)
    opts = (
        f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off {extra}"
    )
    subprocess.run(
        [
            *as_user,
            postgres._bin("pg_ctl"),
            "-D",
            datadir,
            "-o",
            opts,
            "-l",
            os.path.join(workdir, "log"),
            "-w",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )

    def stop() -> None:
        subprocess.run(
            [*as_user, postgres._bin("pg_ctl"), "-D", datadir, "-m", "fast", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(stop)
    _server = PgServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", throwaway=True)
    return _server


def pg_server() -> PgServer:
    """$OCCUPANT_BENCH_POSTGRES_DSN, else the local server on 127.0.0.1:5432, else a throwaway one.

    A throwaway server (and so its cached database) is gone when this process exits.
    """
    global _server
    if _server is not None:
        return _server
    from tests.support import postgres

    configured = os.environ.get("OCCUPANT_BENCH_POSTGRES_DSN")
    if configured:
        _server = PgServer(configured, throwaway=False)
    elif postgres._reachable(postgres.LOCAL):
        _server = PgServer(postgres.LOCAL, throwaway=False)
    else:
        dsn, stop = postgres.start_throwaway()
        atexit.register(stop)
        _server = PgServer(dsn, throwaway=True)
    return _server


def sqlite_path(name: str) -> str:
    OUT.mkdir(parents=True, exist_ok=True)
    return str(OUT / name)
