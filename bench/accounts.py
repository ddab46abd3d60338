"""Benchmark: app accounts — sign-in through the HTTP stack, and invitations for a bulk job.

**The floor.** ``kit.security.verify_password`` (argon2id with the parameters the app hashes with) in a
loop, in one process and in two processes at once: what the 2 cores can verify at all. Backend-free;
measured once per run.

**Sign-in** (``POST /api/v1/auth/token``, the mobile app's token sign-in). A fresh database
(bench/out/accounts_signin.sqlite, PostgreSQL database occupant_bench_accounts_signin) built by the
migrations; an operator, two sites and twenty occupiers (portal and mobile app offered) made with the
service actions; ``signin_users`` users bulk-inserted. Every user is invited to the mobile app with
``accounts.service.invite_many``; the first one sets its password through its invitation link
(``set_password_with_link``, the argon2id hash the app writes) and that hash is copied to every other
account (ACTIVE): the verify cost does not depend on the salt or the password, and hashing thousands
of passwords would take minutes. Then ``uvicorn --workers 2`` on 127.0.0.1 (as bench/api.py starts
it) and the asyncio load generator (bench/loadgen.py) keeps 4, then 16 keep-alive connections busy,
each request signing in a user not signed in before with the right password. The throttles
(``kit.throttle``) count failures only, per account and per address: every request here succeeds, so
no throttle row is ever written (checked after the run) and all requests may come from 127.0.0.1.
Rate = 200 answers per second; p50 / p95 client-side; the app's own time from ``Server-Timing``; the
workers' peak resident size (a verify holds its memory cost, 64 MiB now, while it runs).

**Invitations** (what the bulk engine will do for up to 100,000 users in one job). A fresh database
(accounts_invite.sqlite, occupant_bench_accounts_invite): the same tenants and ``invitations +
one_by_one`` users bulk-inserted (not timed). Timed, commit included:

- ``invite_many(session, users, App.PORTAL, actor=…)``, ``SET_BATCH`` users per call and transaction
  (load the users, invite, commit): account rows, invitation tokens, ``app_invitation`` mails with the
  sealed link, audit events;
- then ``one_by_one`` users with ``invite`` per user, ``BATCH`` per transaction, for comparison.

Counted afterwards: accounts awaiting sign-in, pending invitation tokens, queued ``app_invitation``
mails and ``app_account.invited`` events must each equal the users invited, else the row says NO.
Memory: the process's resident size sampled every 20 ms during the run (peak, and growth over the
start), and its lifetime peak (``ru_maxrss``).

**Delivery**: ``deliveries`` of those invitation mails sent by one ``notify.delivery.deliver_due`` run
to the counting SMTP server of bench/outbox.py.

Rates are per account / wall time; p50 / p95 per account (a transaction's time divided by its size),
per call in the notes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bench import OUT
from bench.api import _free_port, start_server, stop_server
from bench.backends import Backend, pg_server
from bench.build import log
from bench.loadgen import LoadResult, run_load
from bench.report import Row, percentile
from occupant.accounts import service as accounts
from occupant.accounts.models import (
    AccountStatus,
    AccountToken,
    App,
    AppAccount,
    AppSession,
    TokenPurpose,
)
from occupant.accounts.sessions import issue_link
from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor
from occupant.kit import migrate
from occupant.kit.clock import utcnow
from occupant.kit.db import make_engine, make_session_factory, transaction
from occupant.kit.security import hash_password, verify_password
from occupant.kit.throttle import Throttle
from occupant.notify.models import OutboxMessage
from occupant.occupiers.schemas import OccupierCreate
from occupant.occupiers.service import create_occupier
from occupant.operators.models import Operator
from occupant.sites.schemas import SiteCreate
from occupant.sites.service import create_site
from occupant.users.models import OccupierUser, UserStatus

LANGUAGES = ["en", "fr", "de", "es", "nl"]
OCCUPIERS = 20
SET_BATCH = 1_000
BATCH = 200
PASSWORD = "bench sign-in password, not a secret"
FLOOR_LABEL = "— (CPU only)"
Factory = sessionmaker[Session]


# --- the floor: argon2id verify on its own --------------------------------------------------------


def argon2_parameters() -> dict[str, Any]:
    """The parameters of a hash the app writes now (kit.security.hash_password)."""
    from argon2 import extract_parameters

    p = extract_parameters(hash_password("parameters probe"))
    return {
        "type": p.type.name.lower(),
        "version": p.version,
        "memory_kib": p.memory_cost,
        "time_cost": p.time_cost,
        "parallelism": p.parallelism,
        "hash_len": p.hash_len,
        "salt_len": p.salt_len,
        "argon2_cffi": version("argon2-cffi"),
        "argon2_cffi_bindings": version("argon2-cffi-bindings"),
    }


def _describe(params: dict[str, Any]) -> str:
    return (
        f"{params['type']} m={params['memory_kib']:,} KiB, t={params['time_cost']}, "
        f"p={params['parallelism']} (argon2-cffi {params['argon2_cffi']})"
    )


@dataclass
class _Loop:
    verifies: list[float] = field(default_factory=list)  # seconds per verify
    wall: float = 0.0
    cpu: float = 0.0  # this process's CPU time (argon2 computes its lanes in threads)


def _verify_loop(stored: str, seconds: float) -> _Loop:
    out = _Loop()
    started, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        t = time.perf_counter()
        if not verify_password(stored, PASSWORD):
            raise RuntimeError("argon2 verify failed for the right password")
        out.verifies.append(time.perf_counter() - t)
    out.wall, out.cpu = time.perf_counter() - started, time.process_time() - cpu
    return out


def _child(stored: str, seconds: float, barrier: Any, results: Any) -> None:
    barrier.wait()  # both children imported and ready: start together
    loop = _verify_loop(stored, seconds)
    results.put((loop.verifies, loop.wall, loop.cpu))


def _in_processes(stored: str, seconds: float, processes: int) -> list[_Loop]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    children = [
        ctx.Process(target=_child, args=(stored, seconds, barrier, results)) for _ in range(processes)
    ]
    for child in children:
        child.start()
    loops = []
    try:
        for _ in children:
            verifies, wall, cpu = results.get(timeout=seconds + 120)
            loops.append(_Loop(verifies, wall, cpu))
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
                child.join()
    return loops


def floor_rows(*, seconds: float = 10.0) -> list[Row]:
    """argon2id verify in one process, then in two processes at once. The 2-process row's
    ``detail["rate"]`` is the floor the sign-in rows compare with."""
    params = argon2_parameters()
    stored = hash_password(PASSWORD)
    verify_password(stored, PASSWORD)  # warm
    rows = []
    for processes in (1, 2):
        loops = [_verify_loop(stored, seconds)] if processes == 1 else _in_processes(stored, seconds, 2)
        count = sum(len(loop.verifies) for loop in loops)
        rate = sum(len(loop.verifies) / loop.wall for loop in loops)
        ms = [v * 1000 for loop in loops for v in loop.verifies]
        cpu_ms = sum(loop.cpu for loop in loops) / count * 1000
        cores = sum(loop.cpu for loop in loops) / max(loop.wall for loop in loops)
        log(f"accounts: argon2 floor, {processes} process(es): {rate:.1f} verify/s, {cpu_ms:.0f} ms CPU each")
        rows.append(
            Row(
                benchmark=f"argon2id verify_password, {processes} process{'es' if processes > 1 else ''} "
                "(the floor of a sign-in)",
                backend=FLOOR_LABEL,
                p50_ms=percentile(ms, 50),
                p95_ms=percentile(ms, 95),
                max_ms=max(ms),
                rate=f"{rate:,.1f} verify/s",
                notes=f"{_describe(params)}; {cpu_ms:.0f} ms CPU per verify, {cores:.2f} cores busy; "
                f"{count:,} verifies in {seconds:g} s",
                samples=len(ms),
                detail={
                    "rate": round(rate, 2),
                    "processes": processes,
                    "cpu_ms_per_verify": round(cpu_ms, 1),
                    "cores_busy": round(cores, 2),
                    "argon2": params,
                },
            )
        )
    return rows


# --- databases and tenants -------------------------------------------------------------------------


def _fresh_database(backend: Backend, name: str) -> str:
    if backend == "sqlite":
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{name}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        return f"sqlite:///{path}"
    server = pg_server()
    server.recreate(f"occupant_bench_{name}")
    return server.url(f"occupant_bench_{name}")


@contextmanager
def _database(backend: Backend, name: str) -> Iterator[tuple[Engine, Factory]]:
    engine = make_engine(_fresh_database(backend, name))
    try:
        migrate.upgrade(engine)
        yield engine, make_session_factory(engine)
    finally:
        engine.dispose()


def _analyze(engine: Engine) -> None:
    """Planner statistics after the bulk load, as a live database would have them."""
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


def _email(i: int) -> str:
    return f"person{i:06d}@tenant{i % OCCUPIERS:02d}.bench.example"


def _setup(factory: Factory, users: int) -> Actor:
    """The operator, two sites, the occupiers (portal and mobile app offered) and ``users`` users
    (Core inserts, 2,000 rows at a time); returns the operator's system actor."""
    with transaction(factory) as session:
        operator = Operator(name="Bench Workspaces", support_email="support@bench.example")
        session.add(operator)
        session.flush()
        actor = Actor.system(operator.id)
        sites = [
            create_site(session, SiteCreate(code=f"S{n:02d}", name=f"Site {n}", country="GB"), actor=actor)
            for n in range(1, 3)
        ]
        occupiers = [
            create_occupier(
                session,
                OccupierCreate(
                    name=f"Tenant {o:02d}",
                    site_ids=[sites[o % 2].id],
                    portal_offered=True,
                    mobile_app_offered=True,
                ),
                actor=actor,
            )
            for o in range(OCCUPIERS)
        ]
        for start in range(0, users, 2000):
            rows = []
            for i in range(start, min(users, start + 2000)):
                email = _email(i)
                rows.append(
                    {
                        "operator_id": operator.id,
                        "occupier_id": occupiers[i % OCCUPIERS].id,
                        "first_name": f"First{i}",
                        "last_name": f"Last{i}",
                        "email": email,
                        "email_key": email,
                        "language": LANGUAGES[i % len(LANGUAGES)],
                        "status": UserStatus.ACTIVE,
                        "sort_key": f"last{i} first{i}",
                        "search_text": f"first{i} last{i} {email}",
                    }
                )
            session.execute(insert(OccupierUser), rows)
    return actor


def _user_ids(factory: Factory) -> list[int]:
    with factory() as session:
        return list(session.scalars(select(OccupierUser.id).order_by(OccupierUser.id)))


def _load_users(session: Session, ids: list[int]) -> list[OccupierUser]:
    return list(
        session.scalars(select(OccupierUser).where(OccupierUser.id.in_(ids)).order_by(OccupierUser.id))
    )


def _invite_set_based(factory: Factory, actor: Actor, ids: list[int], app: App) -> list[float]:
    """``invite_many`` per ``SET_BATCH`` users, one transaction each; returns each call's seconds."""
    timings = []
    for start in range(0, len(ids), SET_BATCH):
        chunk = ids[start : start + SET_BATCH]
        started = time.perf_counter()
        with transaction(factory) as session:
            results = accounts.invite_many(session, _load_users(session, chunk), app, actor=actor)
            failed = [(r.user.id, r.error) for r in results if not r.ok]
            if failed:
                raise RuntimeError(f"invite_many refused {len(failed)} users, e.g. {failed[:3]}")
        timings.append(time.perf_counter() - started)
    return timings


def _invite_one_by_one(factory: Factory, actor: Actor, ids: list[int], app: App) -> list[float]:
    """``invite`` per user, ``BATCH`` users per transaction; returns each transaction's seconds."""
    timings = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        started = time.perf_counter()
        with transaction(factory) as session:
            for user in _load_users(session, chunk):
                accounts.invite(session, user, app, actor=actor)
        timings.append(time.perf_counter() - started)
    return timings


def _flush_queue() -> None:
    from occupant.worker.queue import huey

    huey.flush()  # the in-memory queue of delivery wake-ups: nothing consumes it here


# --- sign-in through the HTTP stack ----------------------------------------------------------------


def _prepare_sign_in(engine: Engine, factory: Factory, users: int) -> tuple[list[str], str]:
    """``users`` ACTIVE accounts invited to the mobile app, all with the password PASSWORD; returns
    (their emails, the stored hash)."""
    actor = _setup(factory, users)
    ids = _user_ids(factory)
    _invite_set_based(factory, actor, ids, App.MOBILE_APP)
    _flush_queue()
    with transaction(factory) as session:  # the first user sets the password through the link
        first = session.get(OccupierUser, ids[0])
        assert first is not None
        account = accounts.account_of(session, first, for_update=True)
        assert account is not None
        token = issue_link(session, account, TokenPurpose.INVITATION)
        account, _ = accounts.set_password_with_link(session, token, PASSWORD, address=None)
        stored = account.password_hash
        assert stored is not None and account.status == AccountStatus.ACTIVE
    with transaction(factory) as session:
        session.execute(
            update(AppAccount)
            .where(AppAccount.password_hash.is_(None))
            .values(password_hash=stored, password_changed_at=utcnow(), status=AccountStatus.ACTIVE)
        )
    _analyze(engine)
    with factory() as session:  # the service itself signs one of them in (rolled back)
        probe = accounts.sign_in(
            session, email=_email(users - 1), password=PASSWORD, app=App.MOBILE_APP, address="127.0.0.1"
        )
        assert probe.refresh_token is not None
        session.rollback()
        emails = list(session.scalars(select(OccupierUser.email).order_by(OccupierUser.id)))
    return emails, stored


@dataclass
class _Crowd:
    """Sign-in bodies, each for a user not signed in before (wrapping round only when all have been)."""

    emails: list[str]
    used: int = 0

    def body(self) -> bytes:
        email = self.emails[self.used % len(self.emails)]
        self.used += 1
        return json.dumps({"email": email, "password": PASSWORD}).encode()


def _workers_peak_rss_mb(parent: int, workers: int) -> list[float]:
    """The lifetime peak resident size (VmHWM) of uvicorn's worker processes, largest first."""
    peaks = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(parent) and "VmHWM" in fields:
            peaks.append(round(int(fields["VmHWM"].split()[0]) / 1024, 1))
    return sorted(peaks, reverse=True)[:workers]


def _sign_in_row(
    backend: Backend,
    result: LoadResult,
    connections: int,
    workers: int,
    floor_rate: float | None,
    peak_rss_mb: list[float],
) -> Row:
    ms = [t * 1000 for t in result.latencies]
    bad = {s: n for s, n in result.statuses.items() if s != 200}
    notes = f"{connections} connections, {workers} workers, {result.seconds:.0f} s, {result.ok:,} signed in"
    if result.server_ms:
        notes += (
            f"; in the app (Server-Timing) p50 {percentile(result.server_ms, 50):.0f} / "
            f"p95 {percentile(result.server_ms, 95):.0f} ms"
        )
    share = result.rate / floor_rate if floor_rate else None
    if share is not None:
        notes += f"; {share * 100:.0f} % of the 2-process argon2 floor ({floor_rate:.1f}/s)"
    if peak_rss_mb:
        notes += f"; workers' peak RSS {' / '.join(f'{mb:,.0f}' for mb in peak_rss_mb)} MB"
    if bad or result.errors:
        notes += f"; NOT OK: {bad} statuses, {result.errors} connection errors"
    return Row(
        benchmark=f"sign-in POST /api/v1/auth/token (mobile, argon2id), {connections} connections",
        backend=backend,
        p50_ms=percentile(ms, 50),
        p95_ms=percentile(ms, 95),
        max_ms=max(ms) if ms else None,
        rate=f"{result.rate:,.1f} req/s",
        notes=notes,
        samples=len(ms),
        detail={
            "statuses": result.statuses,
            "errors": result.errors,
            "rate": round(result.rate, 2),
            "share_of_floor": None if share is None else round(share, 3),
            "app_ms_p50": percentile(result.server_ms, 50) if result.server_ms else None,
            "app_ms_p95": percentile(result.server_ms, 95) if result.server_ms else None,
            "workers_peak_rss_mb": peak_rss_mb,
        },
    )


def sign_in_rows(
    backend: Backend,
    *,
    users: int,
    seconds: float,
    connections: list[int],
    workers: int,
    floor_rate: float | None,
) -> list[Row]:
    with _database(backend, "accounts_signin") as (engine, factory):
        started = time.perf_counter()
        emails, _stored = _prepare_sign_in(engine, factory, users)
        log(
            f"accounts on {backend}: {users:,} ACTIVE accounts ready in {time.perf_counter() - started:.0f} s"
        )
        random.Random(7).shuffle(emails)
        crowd = _Crowd(emails)
        port = _free_port()
        url = str(engine.url.render_as_string(hide_password=False))
        proc = start_server(url, f"accounts-{backend}", port, workers)
        rows = []
        try:
            headers = {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "occupant-bench",
            }
            for n in connections:
                result = run_load(
                    "127.0.0.1",
                    port,
                    lambda: "/api/v1/auth/token",
                    headers,
                    connections=n,
                    seconds=seconds,
                    make_body=crowd.body,
                )
                log(f"accounts on {backend}: sign-in, {n} connections: {result.rate:.1f} req/s")
                peaks = _workers_peak_rss_mb(proc.pid, workers)  # cumulative: the runs go 4, then 16
                rows.append(_sign_in_row(backend, result, n, workers, floor_rate, peaks))
        finally:
            stop_server(proc)
        with factory() as session:
            throttled = session.scalar(select(func.count()).select_from(Throttle))
            opened = session.scalar(select(func.count()).select_from(AppSession))
        for row in rows:
            row.detail.update(
                users=users, sign_ins_sent=crowd.used, sessions_opened=opened, throttle_rows=throttled
            )
            if crowd.used > users:
                row.notes += f"; users reused ({crowd.used:,} sign-ins over {users:,} users)"
            if throttled:
                row.notes += f"; {throttled} THROTTLE ROWS (failed sign-ins)"
        return rows


# --- invitations ----------------------------------------------------------------------------------


class _RssSampler:
    """The process's resident set size every ``every`` seconds, in a thread, while in the block."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> _RssSampler:
        self.start = self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


@dataclass
class CheckedRow(Row):
    """A row whose figures only count if what was written has been verified (``ok`` is False if not)."""

    verified: bool | None = None

    @property
    def ok(self) -> bool | None:
        return False if self.verified is False else None


def _counts(factory: Factory) -> dict[str, int]:
    now = utcnow()
    with factory() as session:
        queries: dict[str, Any] = {
            "accounts_awaiting": select(func.count())
            .select_from(AppAccount)
            .where(AppAccount.status == AccountStatus.AWAITING_SIGN_IN),
            "pending_invitation_tokens": select(func.count())
            .select_from(AccountToken)
            .where(
                AccountToken.purpose == TokenPurpose.INVITATION,
                AccountToken.used_at.is_(None),
                AccountToken.revoked_at.is_(None),
                AccountToken.expires_at > now,
            ),
            "distinct_token_accounts": select(func.count(AccountToken.account_id.distinct())),
            "invitation_mails": select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.template == "app_invitation", OutboxMessage.sealed_secrets.is_not(None)),
            "audit_invited": select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "app_account.invited"),
        }
        return {name: int(session.scalar(q) or 0) for name, q in queries.items()}


def _invitation_row(
    name: str,
    backend: Backend,
    count: int,
    seconds: float,
    per_call: list[float],
    call_size: int,
    memory: _RssSampler,
    counts: dict[str, int],
    expected: int,
) -> CheckedRow:
    per_account = [t / call_size * 1000 for t in per_call for _ in range(call_size)][:count]
    calls_ms = [t * 1000 for t in per_call]
    wrong = {k: v for k, v in counts.items() if v != expected}
    mb = 1024 * 1024
    notes = (
        f"{seconds:.1f} s for {count:,} (tokens, sealed mails, audit, commit); per "
        f"{call_size:,}-user transaction p50 {percentile(calls_ms, 50):,.0f} / p95 "
        f"{percentile(calls_ms, 95):,.0f} ms; RSS peak {memory.peak / mb:,.0f} MB "
        f"(+{(memory.peak - memory.start) / mb:,.0f} MB over the start)"
    )
    if wrong:
        notes += f"; WRONG COUNTS (expected {expected:,} each): {wrong}"
    rate = count / seconds
    return CheckedRow(
        benchmark=name,
        backend=backend,
        p50_ms=percentile(per_account, 50),
        p95_ms=percentile(per_account, 95),
        max_ms=max(per_account),
        rate=f"{rate:,.0f} accounts/s",
        notes=notes,
        samples=len(per_account),
        verified=not wrong,
        detail={
            "seconds": round(seconds, 2),
            "rate": round(rate, 1),
            "accounts": count,
            "per_call_ms_p50": percentile(calls_ms, 50),
            "per_call_ms_p95": percentile(calls_ms, 95),
            "rss_start_mb": round(memory.start / mb, 1),
            "rss_peak_mb": round(memory.peak / mb, 1),
            "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "counts": counts,
            "expected_each": expected,
        },
    )


def invitation_rows(
    backend: Backend,
    *,
    invitations: int,
    one_by_one: int,
    deliveries: int,
    profile: bool = False,
) -> list[Row]:
    rows: list[Row] = []
    with _database(backend, "accounts_invite") as (engine, factory):
        started = time.perf_counter()
        actor = _setup(factory, invitations + one_by_one)
        _analyze(engine)
        ids = _user_ids(factory)
        log(f"accounts on {backend}: {len(ids):,} users ready in {time.perf_counter() - started:.0f} s")
        modes: list[tuple[str, list[int], int, Callable[..., list[float]]]] = [
            (
                f"invite {invitations:,} users to the portal: invite_many, {SET_BATCH:,} per call",
                ids[:invitations],
                SET_BATCH,
                _invite_set_based,
            ),
            (
                f"invite {one_by_one:,} users to the portal: invite one by one, {BATCH} per transaction",
                ids[invitations:],
                BATCH,
                _invite_one_by_one,
            ),
        ]
        expected = 0
        for name, part, size, timed in modes:
            if not part:
                continue
            profiler = _start_profile() if profile else None
            with _RssSampler() as memory:
                begun = time.perf_counter()
                per_call = timed(factory, actor, part, App.PORTAL)
                seconds = time.perf_counter() - begun
            if profiler is not None:
                _save_profile(profiler, f"accounts-{timed.__name__.strip('_')}-{backend}")
            _flush_queue()
            expected += len(part)
            counts = _counts(factory)
            log(f"accounts on {backend}: {name}: {len(part) / seconds:,.0f}/s, {seconds:.1f} s; {counts}")
            rows.append(
                _invitation_row(name, backend, len(part), seconds, per_call, size, memory, counts, expected)
            )
        if deliveries:
            rows.append(_delivery_row(backend, factory, deliveries))
    return rows


def _delivery_row(backend: Backend, factory: Factory, limit: int) -> Row:
    from bench.outbox import deliver_to_sink

    done = deliver_to_sink(factory, limit=limit)
    report, ms = done.report, done.gaps_ms
    notes = (
        f"{report.sent:,} sent, {done.received:,} received by the SMTP server in {done.seconds:.1f} s "
        "(app_invitation, the link unsealed; bench/outbox.py's sink)"
    )
    if report.sent != limit or done.received != limit:
        notes += f"; NOT ALL DELIVERED: {report}"
    log(f"accounts on {backend}: delivery {done.rate:,.0f} msg/s")
    return CheckedRow(
        benchmark=f"deliver {limit:,} of those invitation mails → local SMTP",
        backend=backend,
        p50_ms=percentile(ms, 50),
        p95_ms=percentile(ms, 95),
        max_ms=max(ms) if ms else None,
        rate=f"{done.rate:,.0f} msg/s",
        notes=notes,
        samples=len(ms),
        verified=report.sent == limit and done.received == limit,
        detail={
            "sent": report.sent,
            "retried": report.retried,
            "dead": report.dead,
            "deferred": report.deferred,
            "received": done.received,
            "received_bytes": done.received_bytes,
            "delivery_seconds": round(done.seconds, 2),
            "rate": round(done.rate, 1),
            "batch_size": done.batch_size,
        },
    )


def _start_profile() -> Any:
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _save_profile(profiler: Any, name: str) -> None:
    import io
    import pstats

    profiler.disable()
    path = OUT / f"{name}.prof"
    profiler.dump_stats(str(path))
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(40)
    (OUT / f"{name}.txt").write_text(buffer.getvalue())
    log(f"profile: {path} (top 40 by cumulative time in {name}.txt)")


def run(
    backend: Backend,
    *,
    floor_rate: float | None,
    signin_users: int = 3_000,
    signin_seconds: float = 15.0,
    connections: list[int] | None = None,
    workers: int = 2,
    invitations: int = 100_000,
    one_by_one: int = 10_000,
    deliveries: int = 10_000,
    profile: bool = False,
) -> list[Row]:
    rows: list[Row] = []
    if signin_users:
        rows += sign_in_rows(
            backend,
            users=signin_users,
            seconds=signin_seconds,
            connections=connections or [4, 16],
            workers=workers,
            floor_rate=floor_rate,
        )
    if invitations or one_by_one:
        rows += invitation_rows(
            backend, invitations=invitations, one_by_one=one_by_one, deliveries=deliveries, profile=profile
        )
    return rows
