"""A PostgreSQL server for the tests: the one on 127.0.0.1:5432 when reachable, else a throwaway one."""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time

import psycopg

LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except Exception:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: run scripts/test.sh, which installs it.")
    return found


def start_throwaway() -> tuple[str, callable]:  # type: ignore[valid-type]
    """initdb + pg_ctl on a free loopback port; returns (admin dsn, stop)."""
    workdir = tempfile.mkdtemp(prefix="occupant-pg-")
    datadir = os.path.join(workdir, "data")
    port = _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        os.chmod(workdir, 0o777)
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, _bin("initdb"), "-D", datadir, "-U", "postgres", "-A", "trust", "-E", "UTF8"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    opts = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    subprocess.run(
        [
            *as_user,
            _bin("pg_ctl"),
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
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def stop() -> None:
        subprocess.run(
            [*as_user, _bin("pg_ctl"), "-D", datadir, "-m", "fast", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(workdir, ignore_errors=True)

    for _ in range(50):
        if _reachable(dsn):
            break
        time.sleep(0.1)
    return dsn, stop


def ensure_server() -> str:
    """The admin DSN of a server to use; starts (and registers the stop of) a throwaway one if needed."""
    configured = os.environ.get("OCCUPANT_TEST_POSTGRES_DSN")
    if configured:
        return configured
    if _reachable(LOCAL):
        return LOCAL
    dsn, stop = start_throwaway()
    atexit.register(stop)
    return dsn


def recreate_database(admin_dsn: str, name: str) -> str:
    """Drop and create database ``name``; returns its SQLAlchemy URL."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_dsn.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name


def drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
