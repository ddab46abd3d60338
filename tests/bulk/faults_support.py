"""Fixtures for the fault tests (``test_faults.py``): a fresh database per test, real ``occupant worker``
processes on it (killed with SIGKILL, restarted), a throwaway Redis, many users made set-based.

The worker is the real command (``python -m occupant.cli worker``) configured through the environment
(``OCCUPANT_DATA_DIR``, ``OCCUPANT_DATABASE_URL``, ``OCCUPANT_REDIS_URL``): its queue is the SQLite huey in
the data folder, or Redis. The test process confirms jobs through the engine; the message the engine sends
on commit (``worker.tasks.enqueue_bulk_job``) is put on that worker's queue instead of the test process's
in-memory one. Every process started here is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from occupant.authz.actor import Actor
from occupant.bulk.models import FINISHED, BulkJob, JobState
from occupant.kit import migrate, runtime
from occupant.kit.clock import utcnow
from occupant.kit.db import make_engine, make_session_factory, transaction
from occupant.notify.models import MessageStatus, OutboxMessage
from occupant.occupiers.models import Occupier
from occupant.users.bulk import NewUserRow, create_users
from occupant.users.models import OccupierUser
from occupant.wifi.bulk import confirm_provisioning_many
from occupant.wifi.models import WifiAccount
from tests.factories import admin_actor, make_occupier, make_operator, make_site
from tests.support import postgres

START_TIMEOUT = 90.0  # a worker's cold start on a busy 2-core machine
RUN_TIMEOUT = 120.0  # a 10,000-item job, start to end, on the same machine
PICKUP_TIMEOUT = 15.0  # a restarted worker's first sweep re-enqueues a stalled job at once: ~1 s idle
POLL = 0.01  # seconds between two looks at a job's counters while waiting to kill


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the instance: a data folder and a database ------------------------------------------------------


@dataclass
class Instance:
    """One Occupant installation: its data folder (the SQLite queue, the mail folder) and its database,
    shared by the test process and the worker processes."""

    backend: str
    url: str
    data_dir: Path
    engine: Engine
    factory: sessionmaker[Session]  # writes (SQLite: BEGIN IMMEDIATE)
    reader: sessionmaker[Session]  # reads that never wait for a writer (SQLite: BEGIN DEFERRED)
    redis_url: str | None = None

    def job(self, job_id: int) -> BulkJob:
        with self.reader() as s:
            job = s.get(BulkJob, job_id)
            assert job is not None
            return job

    def scalar(self, stmt: Any) -> Any:
        with self.reader() as s:
            return s.scalar(stmt)

    def rows(self, stmt: Any) -> list[Any]:
        with self.reader() as s:
            return list(s.execute(stmt).all())


@pytest.fixture(params=["sqlite", "postgresql"])
def instance(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Instance]:
    """A fresh, migrated database (SQLite: a file in the test's folder; PostgreSQL: a new database)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{data_dir / 'occupant.db'}"
    else:
        name = f"occupant_faults_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
        url = postgres.recreate_database(os.environ["OCCUPANT_TEST_POSTGRES_DSN"], name)
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    runtime.use_session_factory(factory)
    try:
        yield Instance(
            request.param, url, data_dir, engine, factory, make_session_factory(engine, read_only=True)
        )
    finally:
        runtime.use_session_factory(None)
        engine.dispose()
        if name is not None:
            with psycopg.connect(os.environ["OCCUPANT_TEST_POSTGRES_DSN"], autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the worker's queue -------------------------------------------------------------------------------


def _queue_storage(inst: Instance) -> Any:
    """The storage of the queue a worker of ``inst`` reads (the same choice as ``worker.queue``)."""
    from huey import RedisHuey, SqliteHuey

    if inst.redis_url:
        return RedisHuey("occupant", url=inst.redis_url).storage
    return SqliteHuey("occupant", filename=str((inst.data_dir / "queue.db").resolve())).storage


def enqueue_run(inst: Instance, job_id: int) -> None:
    """One ``run_bulk_job(job_id)`` message on the worker's queue, as ``worker.tasks.enqueue_bulk_job``
    sends it (serialised by the test process's huey: the same registry, the same task names)."""
    from occupant.worker import tasks
    from occupant.worker.queue import huey

    task = tasks.run_bulk_job.s(job_id)
    _queue_storage(inst).enqueue(huey.serialize_task(task), task.priority)


@pytest.fixture
def to_worker(instance: Instance, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """The engine's wake-up on commit (``confirm``) goes to the worker's queue."""
    from occupant.worker import tasks

    def send(job_id: int) -> None:
        enqueue_run(instance, job_id)

    monkeypatch.setattr(tasks, "enqueue_bulk_job", send)
    return send


# --- worker processes ---------------------------------------------------------------------------------


class Worker:
    """``occupant worker`` as a process of its own, its output in a log file."""

    def __init__(self, inst: Instance, log: Path, *, threads: int = 2) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OCCUPANT_")}
        env.update(
            OCCUPANT_DATA_DIR=str(inst.data_dir),
            OCCUPANT_DATABASE_URL=inst.url,
            OCCUPANT_SECRET_KEY=os.environ.get("OCCUPANT_SECRET_KEY", "test-secret-key-not-for-production"),
            PYTHONUNBUFFERED="1",
            NO_COLOR="1",
        )
        if inst.redis_url:
            env["OCCUPANT_REDIS_URL"] = inst.redis_url
        self.log_path = log
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "occupant.cli", "worker", "--workers", str(threads)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_started(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Huey consumer started" in self.output:
                return
            if self.proc.poll() is not None:
                pytest.fail(f"occupant worker exited with {self.proc.returncode}:\n{self.output}")
            time.sleep(0.05)
        pytest.fail(f"occupant worker did not start within {timeout:g} s:\n{self.output}")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when the machine dies."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


@pytest.fixture
def workers(instance: Instance, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers on the instance: ``start(threads=2)`` returns once the worker runs (``wait=False``: at
    once, to set data up while it boots; ``Worker.wait_started`` then). All are stopped at the end."""
    started: list[Worker] = []

    def start(*, threads: int = 2, wait: bool = True) -> Worker:
        worker = Worker(instance, tmp_path / f"worker-{len(started) + 1}.log", threads=threads)
        started.append(worker)
        if wait:
            worker.wait_started()
        return worker

    yield start
    for worker in started:
        worker.stop()


# --- Redis ----------------------------------------------------------------------------------------------


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis URL: a throwaway ``redis-server`` on a free loopback port (no persistence) when the binary
    is installed, else the server on 127.0.0.1:6379 (database 15) when one answers; else the test skips."""
    binary = shutil.which("redis-server")
    if binary is None:
        url = "redis://127.0.0.1:6379/15"
        if not _redis_answers(url):
            pytest.skip("needs Redis: no redis-server binary to start and nothing answers on 127.0.0.1:6379")
        yield url
        return
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [binary, *args, "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 20
        while not _redis_answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"redis-server did not start on 127.0.0.1:{port} (exit {proc.poll()})")
            time.sleep(0.05)
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()  # this process only, by its PID
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def on_redis(instance: Instance, redis_server: str) -> Iterator[Instance]:
    """The instance with its queue on Redis (emptied before and after)."""
    instance.redis_url = redis_server
    storage = _queue_storage(instance)
    storage.flush_all()
    try:
        yield instance
    finally:
        storage.flush_all()
        instance.redis_url = None


# --- data -------------------------------------------------------------------------------------------------


@dataclass
class Tenant:
    actor: Actor
    occupier_id: int


def make_tenant(inst: Instance) -> Tenant:
    """An operator with a site LON01 and an occupier there."""
    with transaction(inst.factory) as s:
        operator = make_operator(s, name="Fault Workspaces")
        site = make_site(s, operator, code="LON01", name="London Bridge", nas=["ap-lon01"])
        occupier = make_occupier(s, operator, sites_=[site], primary_site_id=site.id, name="Fault Studio")
        return Tenant(admin_actor(operator, staff_id=7), occupier.id)


def make_many_users(inst: Instance, tenant: Tenant, count: int, *, chunk: int = 5_000) -> dict[int, str]:
    """``count`` users set-based, each with a Wi-Fi account (live in RADIUS: confirmed, so the user is not
    held any more) and an app account invited to the portal; their id → Wi-Fi username. The mails this
    makes are cancelled: they are not what the tests look at, and a worker would spend its time sending
    them."""
    made: dict[int, str] = {}
    for start in range(0, count, chunk):
        rows = [
            NewUserRow(
                line=n + 2,
                first_name=f"First{n}",
                last_name=f"Last{n}",
                email=f"user{n}@fault.example",
                wifi=True,
                wifi_homesite="LON01",
                invite_portal=True,
            )
            for n in range(start, min(start + chunk, count))
        ]
        with transaction(inst.factory) as s:
            occupier = s.get(Occupier, tenant.occupier_id)
            assert occupier is not None
            results = create_users(s, occupier, rows, actor=tenant.actor)
            assert all(r.ok for r in results), [r.errors for r in results if not r.ok][:3]
    with transaction(inst.factory) as s:
        account_ids = list(s.scalars(select(WifiAccount.id)))
        confirmed = confirm_provisioning_many(s, account_ids)
        assert confirmed.not_live == []
        s.execute(update(OutboxMessage).values(status=MessageStatus.CANCELLED))
        made = {uid: name for uid, name in s.execute(select(WifiAccount.user_id, WifiAccount.username))}
        busy = s.scalar(select(func.count()).where(OccupierUser.busy_owner.is_not(None)))
        assert busy == 0
    assert len(made) == count
    return made


# --- following a job ----------------------------------------------------------------------------------


def kill_mid_run(inst: Instance, worker: Worker, job_id: int, timeout: float = RUN_TIMEOUT) -> BulkJob:
    """SIGKILL the worker once the job has committed some chunks but not all; the job as it was left."""
    deadline = time.monotonic() + timeout
    while True:
        job = inst.job(job_id)
        if job.state == JobState.RUNNING and 0 < job.processed < job.total:
            worker.kill()
            break
        if job.state in FINISHED:
            pytest.fail(f"job {job_id} finished ({job.state}) before the worker could be killed mid-run")
        if worker.proc.poll() is not None:
            pytest.fail(f"the worker exited with {worker.proc.returncode}:\n{worker.output}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"job {job_id} did not get going within {timeout:g} s ({job.state}):\n{worker.output}"
            )
        time.sleep(POLL)
    return inst.job(job_id)


def wait_finished(
    inst: Instance, job_id: int, running: list[Worker], timeout: float = RUN_TIMEOUT
) -> BulkJob:
    deadline = time.monotonic() + timeout
    while True:
        job = inst.job(job_id)
        if job.state in FINISHED:
            return job
        for worker in running:
            if worker.proc.poll() is not None:
                pytest.fail(f"a worker exited with {worker.proc.returncode}:\n{worker.output}")
        if time.monotonic() > deadline:
            logs = "\n".join(w.output for w in running)
            pytest.fail(
                f"job {job_id} is still {job.state} ({job.processed:,}/{job.total:,}) after {timeout:g} s:\n"
                + logs
            )
        time.sleep(0.1)


def wait_taken_up(inst: Instance, job_id: int, worker: Worker, timeout: float = PICKUP_TIMEOUT) -> float:
    """Seconds until a chunk of the (aged) job runs again after ``worker`` started: its heartbeat moves."""
    start = time.monotonic()
    aged = inst.job(job_id).heartbeat_at
    while True:
        job = inst.job(job_id)
        if job.state in FINISHED or job.heartbeat_at != aged:
            return time.monotonic() - start
        if worker.proc.poll() is not None:
            pytest.fail(f"the worker exited with {worker.proc.returncode}:\n{worker.output}")
        if time.monotonic() - start > timeout:
            pytest.fail(
                f"the restarted worker has not taken job {job_id} up within {timeout:g} s "
                f"({job.state}, {job.processed:,}/{job.total:,}):\n{worker.output[-3000:]}"
            )
        time.sleep(0.05)


def age_heartbeat(inst: Instance, job_id: int, minutes: int = 2) -> None:
    """Make the job look abandoned for ``minutes``, as it is once its killed worker has been gone that long:
    the sweep re-enqueues jobs whose heartbeat is older than a minute (``engine.stalled_jobs``)."""
    with transaction(inst.factory) as s:
        s.execute(
            update(BulkJob)
            .where(BulkJob.id == job_id)
            .values(heartbeat_at=utcnow() - timedelta(minutes=minutes))
        )
