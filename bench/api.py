"""Benchmark 3: the REST API under load — requests per second with 2 uvicorn worker processes.

uvicorn runs ``occupant.web.app:create_app`` with ``--workers 2`` on 127.0.0.1 against the cached
1,000,000-user database; a fresh operator API key (made with ``staff.service.create_api_key`` and
revoked afterwards) authenticates every request. The load generator (bench/loadgen.py) keeps N
keep-alive connections busy for a fixed time per endpoint, after a warm-up, and counts the 2xx
answers; latencies are client-side (they include queueing behind the other connections).

* ``GET /api/v1/users/{id}``: ids drawn at random (seeded) from the whole operator;
* ``GET /api/v1/users?limit=50``: the first page of the operator-wide list, in name order.

The generator runs on the same 2 cores as the workers, so the figures are what this machine
serves with its own client, a lower bound for a separate client machine.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from sqlalchemy import func, select

from bench import OUT, ROOT
from bench.build import DatasetInfo, log
from bench.common import app_sessions
from bench.fixtures import api_key, revoke_api_key
from bench.loadgen import LoadResult, run_load
from bench.report import Row, percentile
from occupant.users.models import OccupierUser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(info: DatasetInfo, port: int, workers: int) -> subprocess.Popen[bytes]:
    return start_server(info.url, info.backend, port, workers)


def start_server(url: str, label: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    """``uvicorn occupant.web.app:create_app --workers N`` on 127.0.0.1 against ``url``, once /healthz
    answers; its output goes to bench/out/uvicorn-<label>.log. Stop it with :func:`stop_server`."""
    env = dict(os.environ)
    env.update(
        {
            "OCCUPANT_DATABASE_URL": url,
            "OCCUPANT_DATA_DIR": str(OUT / "data"),
            "OCCUPANT_QUEUE": "memory",
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "occupant.web.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    log_file = open(OUT / f"uvicorn-{label}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}; see {log_file.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError(f"uvicorn did not answer /healthz within 60 s; see {log_file.name}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # uvicorn's supervisor and its workers: our own process group
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _row(name: str, info: DatasetInfo, result: LoadResult, connections: int, workers: int) -> Row:
    ms = [t * 1000 for t in result.latencies]
    bad = {s: n for s, n in result.statuses.items() if not 200 <= s < 300}
    notes = f"{connections} connections, {workers} workers, {result.seconds:.0f} s, {result.ok:,} ok"
    if result.server_ms:
        notes += (
            f"; in the app (Server-Timing) p50 {percentile(result.server_ms, 50):.1f} / "
            f"p95 {percentile(result.server_ms, 95):.1f} ms"
        )
    if bad or result.errors:
        notes += f"; NOT OK: {bad} statuses, {result.errors} connection errors"
    return Row(
        benchmark=name,
        backend=info.backend,
        p50_ms=percentile(ms, 50),
        p95_ms=percentile(ms, 95),
        max_ms=max(ms) if ms else None,
        rate=f"{result.rate:,.0f} req/s",
        notes=notes,
        samples=len(ms),
        detail={
            "statuses": result.statuses,
            "errors": result.errors,
            "bytes": result.bytes,
            "rate": round(result.rate, 1),
            "app_ms_p50": percentile(result.server_ms, 50) if result.server_ms else None,
            "app_ms_p95": percentile(result.server_ms, 95) if result.server_ms else None,
        },
    )


def run(info: DatasetInfo, *, seconds: float, connections: list[int], workers: int) -> list[Row]:
    """Each endpoint at each concurrency in ``connections`` (the server is started once)."""
    with app_sessions(info) as (_engine, factory):
        key_id, token = api_key(factory, info)
        with factory() as session:
            first_id, last_id = session.execute(
                select(func.min(OccupierUser.id), func.max(OccupierUser.id))
            ).one()
            session.rollback()
    port = _free_port()
    log(
        f"api on {info.backend}: uvicorn --workers {workers} on 127.0.0.1:{port}, {connections} connections, "
        f"{seconds:g} s per endpoint"
    )
    proc = _start_server(info, port, workers)
    rows = []
    try:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        rng = random.Random(5)
        endpoints = [
            ("REST API GET /api/v1/users/{id}", lambda: f"/api/v1/users/{rng.randint(first_id, last_id)}"),
            ("REST API GET /api/v1/users?limit=50", lambda: "/api/v1/users?limit=50"),
        ]
        for name, make_path in endpoints:
            for n in connections:
                result = run_load("127.0.0.1", port, make_path, headers, connections=n, seconds=seconds)
                rows.append(_row(f"{name}, {n} connections", info, result, n, workers))
    finally:
        stop_server(proc)
        with app_sessions(info) as (_engine, factory):
            revoke_api_key(factory, info, key_id)
    return rows
