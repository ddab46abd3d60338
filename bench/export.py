"""Benchmark: Download users — 100,000 users of one occupier to CSV, through the service and over HTTP.

A fresh database per backend (SQLite file bench/out/export.sqlite, PostgreSQL database occupant_bench_export)
built by the migrations; an operator, two sites and 22 occupiers made with the service actions; then,
bulk-inserted and not timed (``kit.bulkwrite``: COPY on PostgreSQL), ``users`` users of the big occupier, a
tenth as many of a small one and 5,000 of each of the others (interleaved in id order, as users created over
time are; names in an order unrelated to creation), each with a Wi-Fi account, an app account and one access
group, and ANALYZE.

Timed, as the REST API does it: ``users.export.start_export`` in a transaction of its own (permission,
scope, the count, the ``users.exported`` event, commit), then every chunk of ``stream_export`` (its own
read session, keyset batches of ``BATCH`` users) consumed and its bytes counted. ``RUNS`` runs; p50 / p95 /
max are of the runs, the rate is rows / median run.

Memory, shown flat: the same export under ``tracemalloc`` (slower, so not timed) for the small occupier and
for the big one — the peak of Python allocations should not grow with the number of users — and the
process's resident set (sampled every 20 ms) during a timed run of the big one, minus what it was before.

Over HTTP: ``uvicorn`` (one worker) on 127.0.0.1 against the same database, a fresh operator API key,
``GET /api/v1/users/export.csv?occupier_id=…`` read to the end by a plain client in this process: seconds to
the last byte, and the worker's peak resident set (VmHWM) before and after the downloads.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
import tracemalloc
import urllib.request
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from bench import OUT
from bench.backends import Backend, pg_server
from bench.build import log
from bench.report import Row
from occupant.accounts.models import AccountRole, AccountStatus, AppAccount, InviteState
from occupant.authz.actor import Actor
from occupant.groups import service as groups
from occupant.groups.models import group_members
from occupant.kit import migrate, runtime
from occupant.kit.bulkwrite import insert_rows, reserve_ids, table_of
from occupant.kit.clock import utcnow
from occupant.kit.db import make_engine, make_session_factory, transaction
from occupant.occupiers.schemas import OccupierCreate
from occupant.occupiers.service import create_occupier
from occupant.operators.models import Operator
from occupant.sites.schemas import SiteCreate
from occupant.sites.service import create_site
from occupant.staff import service as staff_service
from occupant.users.export import BATCH, start_export, stream_export
from occupant.users.filters import UserFilter
from occupant.users.models import OccupierUser, UserStatus
from occupant.wifi.models import WifiAccount, WifiStatus

PG_DATABASE = "occupant_bench_export"
USERS = 100_000
OTHER_OCCUPIERS = 20
OTHER_USERS = 5_000
RUNS = 3
TARGET_MS = 3000.0
LANGUAGES = ["en", "fr", "de", "es", "nl"]
WIFI_STATES = [WifiStatus.ACTIVE] * 8 + [WifiStatus.DEACTIVATED, WifiStatus.PROVISIONING]
ACCOUNT_STATES = [
    (AccountStatus.ACTIVE, InviteState.SIGNED_IN, InviteState.INVITED),
    (AccountStatus.AWAITING_SIGN_IN, InviteState.INVITED, InviteState.NOT_INVITED),
    (AccountStatus.AWAITING_SIGN_IN, InviteState.INVITED, InviteState.INVITED),
    (AccountStatus.DEACTIVATED, InviteState.SIGNED_IN, InviteState.NOT_INVITED),
]
Factory = sessionmaker[Session]


@dataclass
class Tenants:
    actor: Actor
    big: int
    small: int


def _fresh_database(backend: Backend) -> str:
    if backend == "sqlite":
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "export.sqlite"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        return f"sqlite:///{path}"
    server = pg_server()
    server.recreate(PG_DATABASE)
    return server.url(PG_DATABASE)


_USER_COLUMNS = (
    "id",
    "operator_id",
    "occupier_id",
    "first_name",
    "last_name",
    "email",
    "email_key",
    "job_title",
    "mobile",
    "direct_line",
    "language",
    "status",
    "sort_key",
    "search_text",
    "version_id",
    "created_at",
    "updated_at",
)
_WIFI_COLUMNS = (
    "operator_id",
    "occupier_id",
    "user_id",
    "username",
    "status",
    "homesite_id",
    "device_limit",
    "suspended_with_user",
    "version_id",
    "created_at",
    "updated_at",
)
_ACCOUNT_COLUMNS = (
    "operator_id",
    "occupier_id",
    "user_id",
    "role",
    "status",
    "portal",
    "mobile_app",
    "must_change_password",
    "suspended_with_user",
    "version_id",
    "created_at",
    "updated_at",
)


def _people(
    session: Session,
    operator_id: int,
    plan: list[tuple[int, int]],
    sites: list[int],
    teams: dict[int, list[int]],
    doors: list[int],
) -> None:
    """One user per ``(occupier id, rank in the occupier)`` of ``plan``, in that order (users of different
    occupiers interleave in id order, as they are created over time), each with a Wi-Fi account, an app
    account and one group (bulk writes, 10,000 users at a time)."""
    now = utcnow()
    sizes: dict[int, int] = {}
    for occupier_id, _rank in plan:
        sizes[occupier_id] = sizes.get(occupier_id, 0) + 1
    for start in range(0, len(plan), 10_000):
        part = plan[start : start + 10_000]
        ids = reserve_ids(session, table_of(OccupierUser), len(part))
        users, wifi, accounts, members = [], [], [], []
        for uid, (occupier_id, i) in zip(ids, part, strict=True):
            # Names in an order unrelated to creation: a name-ordered read jumps about the tables.
            first, last = f"First{i:06d}", f"Last{(i * 7919) % sizes[occupier_id]:06d}"
            email = f"person{i:06d}.o{occupier_id}@tenant.bench.example"
            users.append(
                (
                    uid,
                    operator_id,
                    occupier_id,
                    first,
                    last,
                    email,
                    email,
                    "Analyst" if i % 3 else None,
                    f"+4479{i % 100_000_000:08d}",
                    None,
                    LANGUAGES[i % len(LANGUAGES)],
                    UserStatus.ACTIVE if i % 20 else UserStatus.DEACTIVATED,
                    f"{last} {first}".lower(),
                    f"{first} {last} {email}".lower(),
                    1,
                    now,
                    now,
                )
            )
            wifi.append(
                (
                    operator_id,
                    occupier_id,
                    uid,
                    email,
                    WIFI_STATES[i % len(WIFI_STATES)],
                    sites[i % len(sites)],
                    1 + i % 3,
                    False,
                    1,
                    now,
                    now,
                )
            )
            status, portal, mobile = ACCOUNT_STATES[i % len(ACCOUNT_STATES)]
            role = AccountRole.ADMIN if i % 50 == 0 else AccountRole.USER
            accounts.append(
                (operator_id, occupier_id, uid, role, status, portal, mobile, False, False, 1, now, now)
            )
            choices = doors + teams[occupier_id]
            members.append((choices[i % len(choices)], uid))
        insert_rows(session, table_of(OccupierUser), _USER_COLUMNS, users)
        insert_rows(session, table_of(WifiAccount), _WIFI_COLUMNS, wifi)
        insert_rows(session, table_of(AppAccount), _ACCOUNT_COLUMNS, accounts)
        insert_rows(session, group_members, ("group_id", "user_id"), members)


def _setup(factory: Factory, users: int) -> Tenants:
    """The operator, two sites, the big occupier (``users`` users), a small one (a tenth as many) and
    ``OTHER_OCCUPIERS`` more with ``OTHER_USERS`` users each, their users interleaved."""
    with transaction(factory) as session:
        operator = Operator(name="Bench Workspaces")
        session.add(operator)
        session.flush()
        actor = Actor.system(operator.id)
        sites = [
            create_site(session, SiteCreate(code=f"S{n:02d}", name=f"Site {n}", country="GB"), actor=actor)
            for n in (1, 2)
        ]
        names = ["Big Tenant", "Small Tenant", *(f"Tenant {n:02d}" for n in range(OTHER_OCCUPIERS))]
        made = [
            create_occupier(session, OccupierCreate(name=name, site_ids=[s.id for s in sites]), actor=actor)
            for name in names
        ]
        tenants = Tenants(actor=actor, big=made[0].id, small=made[1].id)
        doors = [
            groups.create_group(session, actor=actor, name=f"Door {g}", site_id=sites[g % 2].id).id
            for g in range(3)
        ]
        teams = {
            o.id: [
                groups.create_group(session, actor=actor, name=f"Team {g}", occupier_id=o.id).id
                for g in range(2)
            ]
            for o in made
        }
        counts = [users, max(1, users // 10), *([OTHER_USERS] * OTHER_OCCUPIERS)]
        plan = [(o.id, rank) for o, n in zip(made, counts, strict=True) for rank in range(n)]
        random.Random(42).shuffle(plan)
        _people(session, operator.id, plan, [s.id for s in sites], teams, doors)
    return tenants


def _analyze(factory: Factory) -> None:
    with factory() as session:
        session.execute(text("ANALYZE"))
        session.commit()


def _export_once(factory: Factory, actor: Actor, occupier_id: int) -> tuple[float, int, int]:
    """One download as the API serves it: (seconds, rows, bytes)."""
    started = time.perf_counter()
    with transaction(factory) as session:
        export = start_export(session, UserFilter(occupier_id=occupier_id), actor=actor)
    size = 0
    rows = 0

    def counted(n: int) -> None:
        nonlocal rows
        rows = n

    for chunk in stream_export(export, on_rows=counted):
        size += len(chunk.encode("utf-8"))
    return time.perf_counter() - started, rows, size


class _RssSampler:
    """This process's resident set every 20 ms while in the block."""

    def __init__(self) -> None:
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> _RssSampler:
        self.start = self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


def _traced_peak(factory: Factory, actor: Actor, occupier_id: int) -> tuple[float, int]:
    """The peak of Python allocations during one download (MB), and its rows."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        _, rows, _ = _export_once(factory, actor, occupier_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20, rows


def _vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _over_http(url: str, factory: Factory, tenants: Tenants, runs: int) -> dict[str, Any]:
    """Downloads through uvicorn: the small occupier once, the big one ``runs`` + 1 times (the first warms
    up). Returns the big ones' timings, their rows, and the worker's peak RSS (VmHWM) along the way."""
    from bench.api import _free_port, start_server, stop_server

    with transaction(factory) as session:
        _key, token = staff_service.create_api_key(session, actor=tenants.actor, name="bench export")
    port = _free_port()
    proc = start_server(url, "export", port, 1)

    def download(occupier_id: int) -> tuple[float, int]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/users/export.csv?occupier_id={occupier_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
        started = time.perf_counter()
        lines = 0
        with urllib.request.urlopen(request, timeout=120) as response:
            assert response.status == 200
            while chunk := response.read(1 << 16):
                lines += chunk.count(b"\n")
        return time.perf_counter() - started, lines - 1  # the header line

    try:
        hwm = {"started": _vm_hwm_mb(proc.pid)}
        _seconds, small_rows = download(tenants.small)
        hwm[f"after {small_rows:,} rows"] = _vm_hwm_mb(proc.pid)
        download(tenants.big)
        hwm["after the first big download"] = _vm_hwm_mb(proc.pid)
        timings, rows = [], 0
        for _ in range(runs):
            seconds, rows = download(tenants.big)
            timings.append(seconds)
        hwm[f"after {runs} more"] = _vm_hwm_mb(proc.pid)
    finally:
        stop_server(proc)
    return {"timings": timings, "rows": rows, "vmhwm_mb": {k: round(v, 1) for k, v in hwm.items()}}


def _row(
    name: str, backend: Backend, timings: list[float], rows: int, notes: str, detail: dict[str, Any]
) -> Row:
    ms = [t * 1000 for t in timings]
    median = statistics.median(timings)
    return Row(
        benchmark=name,
        backend=backend,
        p50_ms=statistics.median(ms),
        p95_ms=max(ms),
        max_ms=max(ms),
        target=f"≤ {TARGET_MS / 1000:g} s",
        target_p95_ms=TARGET_MS,
        rate=f"{rows / median:,.0f} rows/s",
        notes=notes,
        samples=len(ms),
        detail={"seconds": [round(t, 3) for t in timings], "rows": rows, **detail},
    )


def run(backend: Backend, *, users: int = USERS, runs: int = RUNS, http: bool = True) -> list[Row]:
    url = _fresh_database(backend)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        runtime.use_session_factory(factory)  # stream_export opens its read session through the runtime
        started = time.perf_counter()
        tenants = _setup(factory, users)
        _analyze(factory)
        log(
            f"export on {backend}: {users:,} + {users // 10:,} + {OTHER_OCCUPIERS} × {OTHER_USERS:,} users "
            f"ready in {time.perf_counter() - started:.0f} s"
        )

        _export_once(factory, tenants.actor, tenants.big)  # warm the caches, as a running server has them
        timings, rows, size = [], 0, 0
        for _ in range(runs):
            seconds, rows, size = _export_once(factory, tenants.actor, tenants.big)
            timings.append(seconds)
        with _RssSampler() as rss:
            _export_once(factory, tenants.actor, tenants.big)
        rss_mb = (rss.peak - rss.start) / 2**20
        small_peak, small_rows = _traced_peak(factory, tenants.actor, tenants.small)
        big_peak, big_rows = _traced_peak(factory, tenants.actor, tenants.big)
        log(
            f"export on {backend}: {rows:,} rows in {statistics.median(timings):.2f} s; traced peak "
            f"{small_peak:.1f} MB ({small_rows:,} rows) vs {big_peak:.1f} MB ({big_rows:,} rows); "
            f"RSS +{rss_mb:.1f} MB"
        )
        memory = (
            f"memory flat: traced peak {small_peak:.1f} MB for {small_rows:,} rows, {big_peak:.1f} MB for "
            f"{big_rows:,}; RSS +{rss_mb:.1f} MB during a run"
        )
        rows_out = [
            _row(
                f"export {rows:,} users of one occupier (service: start_export + stream_export)",
                backend,
                timings,
                rows,
                f"{size / 2**20:.1f} MB of CSV, {BATCH:,} users per batch; {memory}",
                {
                    "bytes": size,
                    "traced_peak_mb": {
                        str(small_rows): round(small_peak, 2),
                        str(big_rows): round(big_peak, 2),
                    },
                    "rss_delta_mb": round(rss_mb, 1),
                },
            )
        ]
        if http:
            over_http = _over_http(url, factory, tenants, runs)
            hwm = over_http["vmhwm_mb"]
            log(
                f"export on {backend} over HTTP: {statistics.median(over_http['timings']):.2f} s, VmHWM {hwm}"
            )
            rows_out.append(
                _row(
                    f"export {over_http['rows']:,} users over HTTP (GET /api/v1/users/export.csv, uvicorn, "
                    "1 worker)",
                    backend,
                    over_http["timings"],
                    over_http["rows"],
                    "to the last byte (client here, server in its own process); worker peak RSS (VmHWM) "
                    + ", ".join(f"{k} {v:.0f} MB" for k, v in hwm.items()),
                    {"vmhwm_mb": hwm},
                )
            )
        return rows_out
    finally:
        runtime.use_session_factory(None)
        engine.dispose()
