"""Benchmark: time to create 10,000 Wi-Fi accounts through the service, one by one and set-based.

A fresh database per backend (SQLite file bench/out/wifi_create.sqlite, PostgreSQL database
occupant_bench_wifi_create) built by the migrations; an operator, four sites and twenty occupiers made
with the service actions; the users bulk-inserted (not timed). Then, timed, every user gets a Wi-Fi
account through the service, the whole action included: permission and state checks, a random
password and its NT hash, the account row, radcheck and radusergroup rows, the password email sealed
into the outbox, the audit event, and the commit. Three ways:

- **one per transaction**, as the REST API or the console does it: load the user,
  ``create_wifi_account``, commit;
- **200 per transaction**, a loop of ``create_wifi_account`` calls (a bulk job's batch, one by one);
- **set-based, 1,000 per call**: ``wifi.bulk.create_wifi_accounts`` with 1,000 users per call and
  transaction (load the users, create, commit);

then the set-based way again for 100,000 more accounts (a bulk job's maximum), and the worker's
set-based confirmation of those 100,000 (``confirm_provisioning_many``, 1,000 ids per transaction as
one queue message carries them): PROVISIONING → ACTIVE, users freed.

The rate is accounts / wall time; p50 / p95 are per account (per transaction in the first mode, the
transaction's time divided by its size in the others).
"""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import func, insert, select

from bench import OUT
from bench.backends import Backend, pg_server
from bench.build import log
from bench.report import Row, percentile
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.kit import migrate
from occupant.kit.db import make_engine, make_session_factory, transaction
from occupant.notify.models import OutboxMessage
from occupant.occupiers.models import Occupier
from occupant.occupiers.schemas import OccupierCreate
from occupant.occupiers.service import create_occupier
from occupant.operators.models import Operator
from occupant.radius.models import RadCheck, RadUserGroup
from occupant.sites.schemas import SiteCreate
from occupant.sites.service import create_site
from occupant.users.models import OccupierUser, UserStatus
from occupant.wifi.bulk import confirm_provisioning_many, create_wifi_accounts
from occupant.wifi.models import WifiAccount, WifiStatus
from occupant.wifi.service import create_wifi_account
from occupant.worker.tasks import WIFI_CONFIRMATION_BATCH

PG_DATABASE = "occupant_bench_wifi_create"
LANGUAGES = ["en", "fr", "de", "es", "nl"]
OCCUPIERS = 20
BATCH = 200
SET_BATCH = 1_000
LARGE = 100_000


def _fresh_database(backend: Backend) -> str:
    if backend == "sqlite":
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "wifi_create.sqlite"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        return f"sqlite:///{path}"
    server = pg_server()
    server.recreate(PG_DATABASE)
    return server.url(PG_DATABASE)


def _setup(factory: Any, users: int) -> tuple[Actor, list[tuple[int, int]]]:
    """The operator, sites, occupiers and ``users`` users; returns (actor, [(user id, homesite id)])."""
    with transaction(factory) as session:
        operator = Operator(name="Bench Workspaces", wifi_max_devices=5)
        session.add(operator)
        session.flush()
        actor = Actor(kind=ActorKind.SYSTEM, id=None, operator_id=operator.id, role=Role.OPERATOR_ADMIN)
        sites = [
            create_site(
                session,
                SiteCreate(
                    code=f"S{n:02d}",
                    name=f"Site {n}",
                    country="GB",
                    nas_identifiers=[f"ap-s{n:02d}-{k}" for k in range(1, 5)],
                ),
                actor=actor,
            )
            for n in range(1, 5)
        ]
        occupiers = [
            create_occupier(
                session,
                OccupierCreate(name=f"Tenant {o:02d}", site_ids=[sites[o % 4].id, sites[(o + 1) % 4].id]),
                actor=actor,
            )
            for o in range(OCCUPIERS)
        ]
        homes = {o.id: o.sites[0].id for o in occupiers}
        rows = []
        for i in range(users):
            occupier = occupiers[i % OCCUPIERS]
            email = f"person{i:06d}@tenant{i % OCCUPIERS:02d}.bench.example"
            rows.append(
                {
                    "operator_id": operator.id,
                    "occupier_id": occupier.id,
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
        for start in range(0, len(rows), 2000):
            session.execute(insert(OccupierUser), rows[start : start + 2000])
        people = session.execute(select(OccupierUser.id, OccupierUser.occupier_id).order_by(OccupierUser.id))
        return actor, [(uid, homes[occ]) for uid, occ in people]


def _one_per_transaction(factory: Any, actor: Actor, people: list[tuple[int, int]]) -> list[float]:
    timings = []
    for user_id, homesite_id in people:
        started = time.perf_counter()
        with transaction(factory) as session:
            user = session.get(OccupierUser, user_id)
            assert user is not None
            create_wifi_account(session, user, homesite_id=homesite_id, actor=actor)
        timings.append(time.perf_counter() - started)
    return timings


def _batched(factory: Any, actor: Actor, people: list[tuple[int, int]]) -> list[float]:
    timings = []
    for start in range(0, len(people), BATCH):
        chunk = people[start : start + BATCH]
        started = time.perf_counter()
        with transaction(factory) as session:
            ids = [uid for uid, _ in chunk]
            loaded = {u.id: u for u in session.scalars(select(OccupierUser).where(OccupierUser.id.in_(ids)))}
            for user_id, homesite_id in chunk:
                create_wifi_account(session, loaded[user_id], homesite_id=homesite_id, actor=actor)
        timings += [(time.perf_counter() - started) / len(chunk)] * len(chunk)
    return timings


def _set_based(factory: Any, actor: Actor, people: list[tuple[int, int]]) -> list[float]:
    timings = []
    for start in range(0, len(people), SET_BATCH):
        chunk = people[start : start + SET_BATCH]
        started = time.perf_counter()
        with transaction(factory) as session:
            ids = [uid for uid, _ in chunk]
            loaded = {u.id: u for u in session.scalars(select(OccupierUser).where(OccupierUser.id.in_(ids)))}
            results = create_wifi_accounts(
                session, [(loaded[user_id], homesite_id, None) for user_id, homesite_id in chunk], actor=actor
            )
            failed = [r.error for r in results if r.error is not None]
            assert not failed, failed[:3]
        timings += [(time.perf_counter() - started) / len(chunk)] * len(chunk)
    return timings


def _confirm(factory: Any) -> tuple[int, list[float]]:
    """The worker's set-based confirmation of every PROVISIONING account, one queue message's worth of ids
    per transaction. Returns (accounts confirmed, per-account timings)."""
    with factory() as session:
        pending = list(
            session.scalars(
                select(WifiAccount.id)
                .where(WifiAccount.status == WifiStatus.PROVISIONING)
                .order_by(WifiAccount.id)
            )
        )
    timings: list[float] = []
    confirmed = 0
    for start in range(0, len(pending), WIFI_CONFIRMATION_BATCH):
        chunk = pending[start : start + WIFI_CONFIRMATION_BATCH]
        started = time.perf_counter()
        with transaction(factory) as session:
            outcome = confirm_provisioning_many(session, chunk)
        assert not outcome.not_live, outcome.not_live[:3]
        confirmed += len(outcome.confirmed)
        timings += [(time.perf_counter() - started) / len(chunk)] * len(chunk)
    return confirmed, timings


def _row(
    benchmark: str, backend: Backend, count: int, seconds: float, timings: list[float], notes: str
) -> Row:
    ms = [t * 1000 for t in timings]
    rate = count / seconds
    return Row(
        benchmark=benchmark,
        backend=backend,
        p50_ms=percentile(ms, 50),
        p95_ms=percentile(ms, 95),
        max_ms=max(ms),
        rate=f"{rate:,.0f} accounts/s",
        notes=f"{seconds:.1f} s for {count:,} accounts ({notes})",
        samples=len(ms),
        detail={"seconds": round(seconds, 2), "rate": round(rate, 1), "accounts": count},
    )


def run(backend: Backend, *, accounts: int = 10_000, large: int = LARGE) -> list[Row]:
    from occupant.worker.queue import huey

    url = _fresh_database(backend)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        actor, people = _setup(factory, 3 * accounts + large)
        log(f"wifi-create on {backend}: {len(people):,} users ready")
        rows = []
        what = "password, NT hash, RADIUS rows, sealed email, audit event, busy hold, commit"
        modes: list[tuple[str, list[tuple[int, int]], Any]] = [
            (f"{accounts:,}, one per transaction (API)", people[:accounts], _one_per_transaction),
            (f"{accounts:,}, {BATCH} per transaction, one by one", people[accounts : 2 * accounts], _batched),
            (
                f"{accounts:,}, set-based, {SET_BATCH:,} per call",
                people[2 * accounts : 3 * accounts],
                _set_based,
            ),
        ]
        if large:
            modes.append(
                (f"{large:,}, set-based, {SET_BATCH:,} per call", people[3 * accounts :], _set_based)
            )
        for mode, people_part, timed in modes:
            started = time.perf_counter()
            timings = timed(factory, actor, people_part)
            seconds = time.perf_counter() - started
            huey.flush()  # the in-memory queue of confirmations: nothing consumes it here
            log(f"wifi-create on {backend}, {mode}: {len(people_part) / seconds:,.0f} accounts/s")
            rows.append(
                _row(f"create Wi-Fi accounts: {mode}", backend, len(people_part), seconds, timings, what)
            )
        started = time.perf_counter()
        confirmed, timings = _confirm(factory)
        seconds = time.perf_counter() - started
        log(f"wifi-create on {backend}, confirm: {confirmed / seconds:,.0f} accounts/s")
        rows.append(
            _row(
                f"confirm {confirmed:,} PROVISIONING accounts, set-based, {WIFI_CONFIRMATION_BATCH:,} per "
                "transaction (worker)",
                backend,
                confirmed,
                seconds,
                timings,
                "ACTIVE, users freed, commit",
            )
        )
        with factory() as session:
            counts = {
                "accounts": session.scalar(select(func.count()).select_from(WifiAccount)),
                "radcheck": session.scalar(select(func.count()).select_from(RadCheck)),
                "radusergroup": session.scalar(select(func.count()).select_from(RadUserGroup)),
                "mails": session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.template == "wifi_password")
                ),
                "occupiers": session.scalar(select(func.count()).select_from(Occupier)),
            }
        total = 3 * accounts + large
        expected = {"accounts": total, "radcheck": 2 * total, "radusergroup": 2 * total, "mails": total}
        wrong = {k: (counts[k], v) for k, v in expected.items() if counts[k] != v}
        if confirmed != total:
            wrong["confirmed"] = (confirmed, total)
        for row in rows:
            row.detail["counts"] = counts
            if wrong:
                row.notes += f"; WRONG COUNTS (got, expected): {wrong}"
        return rows
    finally:
        engine.dispose()
