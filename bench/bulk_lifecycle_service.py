"""Benchmark (``bulk-lifecycle-service``): deactivating, reactivating and deleting 100,000 users through the
set-based actions of ``users.bulk_lifecycle``, and matching a deactivation file's 100,000 rows.

A fresh database per backend (SQLite file bench/out/bulk_lifecycle.sqlite, PostgreSQL database
occupant_bench_bulk_lifecycle) built by the migrations. Bulk-loaded, not timed (``kit.bulkwrite``): one
operator, two sites, one occupier with 10 groups, and N users (default 100,000), each with a live Wi-Fi
account (its radcheck and radusergroup rows, one accounting session, one sign-in record), an ACTIVE app
account with an open session and a pending password-reset link, one group membership and two mails (one
queued, one sent). Then, timed, commit included, as the bulk engine's chunks run:

- ``match_deactivate_rows`` for N rows (the email, every fifth row also the user id and the occupier id,
  every other row ``remove_from_group`` y), in one call (one query per 5,000 emails);
- ``deactivate_users``, 5,000 users per call and transaction (load the chunk's users, deactivate, commit);
- ``reactivate_users``, the same way (a new Wi-Fi password by email each), then the worker's confirmation
  of the new credentials (not timed: it frees the users);
- ``delete_users``, 5,000 per call and transaction, ``index_purge="deferred"``, then one
  ``purge_search_index`` (counted in the time).

Each row gives seconds, users per second, the per-transaction p50 / p95 and the process's peak RSS
(sampled every 20 ms), and checks what was written (the row is marked NO when a count is wrong). Targets
for these functions: half the whole job's (delete 100,000 ≤ 15 s, deactivate 100,000 from CSV ≤ 10 s).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench import OUT
from bench.backends import Backend, pg_server
from bench.build import log
from bench.report import Row, percentile
from occupant.accounts.models import AccountStatus, AccountToken, AppAccount, AppSession, TokenPurpose
from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.groups.models import AccessGroup, group_members
from occupant.kit import migrate
from occupant.kit.bulkwrite import insert_rows, reserve_ids, table_of
from occupant.kit.clock import utcnow
from occupant.kit.db import make_engine, make_session_factory, transaction
from occupant.kit.idlists import one_of
from occupant.notify.models import OutboxMessage
from occupant.occupiers.schemas import OccupierCreate
from occupant.occupiers.service import create_occupier
from occupant.operators.models import Operator
from occupant.radius import sync
from occupant.radius.models import RadAcct, RadCheck, RadPostAuth, RadUserGroup
from occupant.sites.schemas import SiteCreate
from occupant.sites.service import create_site
from occupant.users import bulk_lifecycle
from occupant.users.bulk_lifecycle import DeactivateRow, UserResult
from occupant.users.models import OccupierUser, UserStatus, derived_keys
from occupant.wifi.bulk import confirm_provisioning_many
from occupant.wifi.models import WifiAccount, WifiStatus

PG_DATABASE = "occupant_bench_bulk_lifecycle"
CHUNK = 5_000
GROUPS = 10
TARGET_DELETE_S = 7.5  # half of "delete 100,000 ≤ 15 s" (the engine's own work is the other half)
TARGET_DEACTIVATE_S = 5.0  # half of "deactivate 100,000 from CSV ≤ 10 s", for matching and deactivating
Factory = sessionmaker[Session]

USER_COLUMNS = (
    *("id", "operator_id", "occupier_id", "first_name", "last_name", "email", "email_key", "language"),
    *(
        "username",
        "external_id",
        "status",
        "sort_key",
        "search_text",
        "version_id",
        "created_at",
        "updated_at",
    ),
)
WIFI_COLUMNS = (
    *("id", "operator_id", "occupier_id", "user_id", "username", "status", "homesite_id", "device_limit"),
    *("nt_hash", "password_changed_at", "provisioned_at", "suspended_with_user", "version_id"),
    *("created_at", "updated_at"),
)
ACCOUNT_COLUMNS = (
    *("id", "operator_id", "occupier_id", "user_id", "role", "status", "portal", "mobile_app"),
    *(
        "password_hash",
        "must_change_password",
        "suspended_with_user",
        "version_id",
        "created_at",
        "updated_at",
    ),
)
MAIL_COLUMNS = (
    *("operator_id", "occupier_user_id", "to_address", "template", "language", "context", "status"),
    *("attempts", "next_attempt_at", "created_at", "sent_at"),
)


class _RssSampler:
    """The process's resident set size every 20 ms, in a thread, while in the block."""

    def __init__(self) -> None:
        self.start = self.peak = self._rss()
        self.cpu = 0.0  # seconds of this process's CPU time in the block
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
        self._cpu_start = time.process_time()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.cpu = time.process_time() - self._cpu_start


@dataclass
class TimedRow(Row):
    """A row with a target in seconds for the whole run, only ok if what was written checks out."""

    seconds: float = 0.0
    target_seconds: float | None = None
    verified: bool = True

    @property
    def ok(self) -> bool | None:
        if not self.verified:
            return False
        if self.target_seconds is None:
            return None
        return self.seconds <= self.target_seconds


def _fresh_database(backend: Backend) -> str:
    if backend == "sqlite":
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "bulk_lifecycle.sqlite"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        return f"sqlite:///{path}"
    server = pg_server()
    server.recreate(PG_DATABASE)
    return server.url(PG_DATABASE)


def _load(factory: Factory, users: int) -> tuple[Actor, int, list[int], list[str]]:
    """Everything a delete or deactivation touches, bulk-loaded. Returns (actor, occupier id, user ids,
    emails)."""
    with transaction(factory) as session:
        operator = Operator(name="Bench Workspaces", wifi_max_devices=5)
        session.add(operator)
        session.flush()
        actor = Actor(kind=ActorKind.STAFF, id=None, operator_id=operator.id, role=Role.OPERATOR_ADMIN)
        sites = [
            create_site(
                session,
                SiteCreate(code=f"S{n}", name=f"Site {n}", country="GB", nas_identifiers=[f"ap-s{n}"]),
                actor=actor,
            )
            for n in (1, 2)
        ]
        occupier = create_occupier(
            session, OccupierCreate(name="Big Tenant", site_ids=[s.id for s in sites]), actor=actor
        )
        now = utcnow()
        group_ids = reserve_ids(session, table_of(AccessGroup), GROUPS)
        insert_rows(
            session,
            table_of(AccessGroup),
            ("id", "operator_id", "occupier_id", "scope_key", "name", "created_at", "updated_at"),
            [
                (g, operator.id, occupier.id, f"occupier:{occupier.id}", f"Group {g}", now, now)
                for g in group_ids
            ],
        )
        ids = reserve_ids(session, table_of(OccupierUser), users)
        emails = [f"person{i:06d}@tenant.bench.example" for i in range(users)]
        user_rows = []
        for i, (user_id, email) in enumerate(zip(ids, emails, strict=True)):
            first, last = f"First{i}", f"Last{i}"
            sort_key, search_text = derived_keys(first, last, email)
            user_rows.append(
                (
                    *(user_id, operator.id, occupier.id, first, last, email, email, "en", f"u{i}"),
                    *(f"ext-{i}", UserStatus.ACTIVE.value, sort_key, search_text, 1, now, now),
                )
            )
        insert_rows(
            session,
            table_of(OccupierUser),
            USER_COLUMNS,
            user_rows,
        )
        del user_rows
        insert_rows(
            session,
            group_members,
            ("group_id", "user_id"),
            [(group_ids[i % GROUPS], user_id) for i, user_id in enumerate(ids)],
        )
        wifi_ids = reserve_ids(session, table_of(WifiAccount), users)
        insert_rows(
            session,
            table_of(WifiAccount),
            WIFI_COLUMNS,
            [
                (
                    *(wifi_id, operator.id, occupier.id, user_id, email, WifiStatus.ACTIVE.value),
                    *(sites[0].id, 2, f"{i:032x}", now, now, False, 1, now, now),
                )
                for i, (wifi_id, user_id, email) in enumerate(zip(wifi_ids, ids, emails, strict=True))
            ],
        )
        sync.write_new_credentials(
            session,
            [sync.NewCredential(email, f"{i:032x}", 2, sites[0], sites) for i, email in enumerate(emails)],
        )
        insert_rows(
            session,
            table_of(RadAcct),
            ("acctsessionid", "acctuniqueid", "username", "nasipaddress", "nasidentifier", "acctstarttime"),
            [(f"s{i}", f"u{i}", email, "10.0.0.1", "ap-s1", now) for i, email in enumerate(emails)],
        )
        insert_rows(
            session,
            table_of(RadPostAuth),
            ("username", "reply", "authdate"),
            [(email, "Access-Accept", now) for email in emails],
        )
        account_ids = reserve_ids(session, table_of(AppAccount), users)
        insert_rows(
            session,
            table_of(AppAccount),
            ACCOUNT_COLUMNS,
            [
                (
                    *(account_id, operator.id, occupier.id, user_id, "user", AccountStatus.ACTIVE.value),
                    *("SIGNED_IN", "NOT_INVITED", "$argon2id$bench", False, False, 1, now, now),
                )
                for account_id, user_id in zip(account_ids, ids, strict=True)
            ],
        )
        later = now.replace(year=now.year + 1)
        insert_rows(
            session,
            table_of(AppSession),
            ("account_id", "app", "token_hash", "created_at", "expires_at", "last_seen_at"),
            [(a, "portal", f"{a:064x}", now, later, now) for a in account_ids],
        )
        insert_rows(
            session,
            table_of(AccountToken),
            ("account_id", "purpose", "token_hash", "created_at", "expires_at"),
            [(a, TokenPurpose.PASSWORD_RESET.value, f"{a:064x}", now, later) for a in account_ids],
        )
        insert_rows(
            session,
            table_of(OutboxMessage),
            MAIL_COLUMNS,
            [
                (
                    operator.id,
                    user_id,
                    email,
                    "welcome",
                    "en",
                    {"first_name": "x"},
                    "QUEUED",
                    0,
                    now,
                    now,
                    None,
                )
                for user_id, email in zip(ids, emails, strict=True)
            ]
            + [
                (operator.id, user_id, "", "wifi_password", "en", {}, "SENT", 1, now, now, now)
                for user_id in ids
            ],
        )
        return actor, occupier.id, ids, emails


def _chunked(
    factory: Factory, ids: Sequence[int], act: Callable[[Session, list[OccupierUser]], list[UserResult]]
) -> tuple[list[float], list[UserResult]]:
    """Each chunk as the engine runs one: a transaction that loads the chunk's users, acts, commits.
    ``SPLIT`` gets the seconds spent in each of the three."""
    timings: list[float] = []
    results: list[UserResult] = []
    SPLIT.clear()
    SPLIT.update(load=0.0, action=0.0, commit=0.0)
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        began = time.perf_counter()
        with transaction(factory) as session:
            stmt = select(OccupierUser).where(one_of(session, OccupierUser.id, chunk))
            loaded = {u.id: u for u in session.scalars(stmt)}
            acting = time.perf_counter()
            results += act(session, [loaded[user_id] for user_id in chunk])
            committing = time.perf_counter()
        SPLIT["load"] += acting - began
        SPLIT["action"] += committing - acting
        SPLIT["commit"] += time.perf_counter() - committing
        timings.append(time.perf_counter() - began)
    return timings, results


SPLIT: dict[str, float] = {}  # of the last _chunked run


def _count(factory: Factory, stmt: Any) -> int:
    with factory() as session:
        return int(session.scalar(stmt) or 0)


def _row(
    name: str,
    backend: Backend,
    count: int,
    seconds: float,
    per_call: list[float],
    memory: _RssSampler,
    *,
    target: float | None,
    what: str,
    wrong: dict[str, Any],
    split: dict[str, float] | None = None,
) -> TimedRow:
    mb = 1024 * 1024
    calls_ms = [t * 1000 for t in per_call]
    notes = (
        f"{seconds:.2f} s for {count:,} ({what}); per transaction p50 {percentile(calls_ms, 50):,.0f} / p95 "
        f"{percentile(calls_ms, 95):,.0f} ms; RSS peak {memory.peak / mb:,.0f} MB "
        f"(+{(memory.peak - memory.start) / mb:,.0f} MB); this process's CPU {memory.cpu:.1f} s"
        + (" (all the work)" if backend == "sqlite" else " (the client's share)")
    )
    if split:
        notes += "; of which " + ", ".join(f"{name} {value:.2f} s" for name, value in split.items())
    if wrong:
        notes += f"; WRONG (got, expected): {wrong}"
    return TimedRow(
        benchmark=name,
        backend=backend,
        p50_ms=percentile(calls_ms, 50),
        p95_ms=percentile(calls_ms, 95),
        max_ms=max(calls_ms),
        target=f"≤ {target:g} s" if target is not None else "—",
        rate=f"{count / seconds:,.0f} users/s",
        notes=notes,
        samples=len(calls_ms),
        seconds=round(seconds, 2),
        target_seconds=target,
        verified=not wrong,
        detail={
            "seconds": round(seconds, 3),
            "users": count,
            "per_transaction_ms": [round(t, 1) for t in calls_ms],
            "rss_start_mb": round(memory.start / mb, 1),
            "rss_peak_mb": round(memory.peak / mb, 1),
            "cpu_seconds": round(memory.cpu, 2),
            "wrong": wrong,
            "split_seconds": {k: round(v, 3) for k, v in (split or {}).items()},
        },
    )


def _timed(run: Callable[[], Any]) -> tuple[float, Any, _RssSampler]:
    with _RssSampler() as memory:
        began = time.perf_counter()
        out = run()
        seconds = time.perf_counter() - began
    return seconds, out, memory


def _expect(found: dict[str, int], expected: dict[str, int]) -> dict[str, Any]:
    return {k: (found[k], v) for k, v in expected.items() if found[k] != v}


def run(backend: Backend, *, users: int = 100_000) -> list[TimedRow]:
    from occupant.worker.queue import huey

    url = _fresh_database(backend)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        began = time.perf_counter()
        actor, occupier_id, ids, emails = _load(factory, users)
        loaded_in = time.perf_counter() - began
        log(f"bulk-lifecycle-service on {backend}: {users:,} users loaded in {loaded_in:.0f} s")
        rows: list[TimedRow] = []

        # 1. a deactivation file's rows, matched to users
        file_rows = [
            DeactivateRow(
                email=email.upper() if i % 3 == 0 else email,
                user_id=str(user_id) if i % 5 == 0 else None,
                occupier=str(occupier_id) if i % 5 == 0 else None,
                remove_from_group="y" if i % 2 else "",
            )
            for i, (user_id, email) in enumerate(zip(ids, emails, strict=True))
        ]

        def match() -> list[Any]:
            with factory() as session:
                return bulk_lifecycle.match_deactivate_rows(session, actor, file_rows)

        seconds, matched, memory = _timed(match)
        wrong: dict[str, Any] = {}
        if sum(r.ok for r in matched) != users:
            wrong["matched"] = (sum(r.ok for r in matched), users)
        if [r.user_id for r in matched] != ids:
            wrong["order"] = ("wrong", "the rows' users in order")
        rows.append(
            _row(
                f"match_deactivate_rows, {users:,} rows in one call",
                backend,
                users,
                seconds,
                [seconds],
                memory,
                target=None,
                what="email lookup per 5,000, identifiers checked",
                wrong=wrong,
            )
        )
        log(f"  match: {seconds:.2f} s")
        match_seconds = seconds

        # 2. deactivate
        seconds, (per_call, results), memory = _timed(
            lambda: _chunked(
                factory, ids, lambda s, chunk: bulk_lifecycle.deactivate_users(s, chunk, actor=actor)
            )
        )
        found = {
            "ok": sum(r.ok for r in results),
            "deactivated": _count(
                factory,
                select(func.count()).select_from(OccupierUser).where(OccupierUser.status == "DEACTIVATED"),
            ),
            "wifi_off": _count(
                factory,
                select(func.count())
                .select_from(WifiAccount)
                .where(WifiAccount.suspended_with_user.is_(True)),
            ),
            "radcheck": _count(factory, select(func.count()).select_from(RadCheck)),
            "open_sessions": _count(
                factory, select(func.count()).select_from(AppSession).where(AppSession.revoked_at.is_(None))
            ),
            "events": _count(
                factory,
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "user.deactivated"),
            ),
        }
        expected = {"ok": users, "deactivated": users, "wifi_off": users, "radcheck": 0, "open_sessions": 0}
        expected["events"] = users
        rows.append(
            _row(
                f"deactivate_users, {users:,} users, {CHUNK:,} per transaction",
                backend,
                users,
                seconds,
                per_call,
                memory,
                target=TARGET_DEACTIVATE_S,
                what="load, Wi-Fi + RADIUS, app sessions + links, audit, commit; with the matching "
                f"{match_seconds + seconds:.2f} s",
                wrong=_expect(found, expected),
                split=dict(SPLIT),
            )
        )
        rows[-1].detail["with_matching_seconds"] = round(match_seconds + seconds, 3)
        rows[-1].seconds = round(match_seconds + seconds, 2)  # the target covers matching and deactivating
        log(f"  deactivate: {seconds:.2f} s")

        # 3. reactivate (new Wi-Fi passwords by email), then the worker's confirmation (not timed)
        seconds, (per_call, results), memory = _timed(
            lambda: _chunked(
                factory, ids, lambda s, chunk: bulk_lifecycle.reactivate_users(s, chunk, actor=actor)
            )
        )
        huey.flush()
        found = {
            "ok": sum(r.ok for r in results),
            "active": _count(
                factory, select(func.count()).select_from(OccupierUser).where(OccupierUser.status == "ACTIVE")
            ),
            "provisioning": _count(
                factory,
                select(func.count())
                .select_from(WifiAccount)
                .where(WifiAccount.status == WifiStatus.PROVISIONING),
            ),
            "radcheck": _count(factory, select(func.count()).select_from(RadCheck)),
            "password_mails": _count(
                factory,
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.template == "wifi_password", OutboxMessage.status == "QUEUED"),
            ),
        }
        expected = {"ok": users, "active": users, "provisioning": users, "radcheck": 2 * users}
        expected["password_mails"] = users
        rows.append(
            _row(
                f"reactivate_users, {users:,} users, {CHUNK:,} per transaction",
                backend,
                users,
                seconds,
                per_call,
                memory,
                target=None,
                what="new password + NT hash, RADIUS rows, sealed mail, hold, app accounts, audit, commit",
                wrong=_expect(found, expected),
                split=dict(SPLIT),
            )
        )
        log(f"  reactivate: {seconds:.2f} s")
        with factory() as session:
            pending = list(session.scalars(select(WifiAccount.id).order_by(WifiAccount.id)))
        for start in range(0, len(pending), CHUNK):
            with transaction(factory) as session:
                confirm_provisioning_many(session, pending[start : start + CHUNK])

        # 4. delete, the index purged once at the end
        def delete_all() -> tuple[list[float], list[UserResult]]:
            per_call, results = _chunked(
                factory,
                ids,
                lambda s, chunk: bulk_lifecycle.delete_users(s, chunk, actor=actor, index_purge="deferred"),
            )
            began = time.perf_counter()
            with transaction(factory) as session:
                bulk_lifecycle.purge_search_index(session)
            per_call.append(time.perf_counter() - began)
            return per_call, results

        seconds, (per_call, results), memory = _timed(delete_all)
        left = {
            name: _count(factory, select(func.count()).select_from(model))
            for name, model in (
                ("users", OccupierUser),
                ("wifi", WifiAccount),
                ("radcheck", RadCheck),
                ("radusergroup", RadUserGroup),
                ("radacct", RadAcct),
                ("radpostauth", RadPostAuth),
                ("app_accounts", AppAccount),
                ("app_sessions", AppSession),
                ("tokens", AccountToken),
            )
        }
        left["memberships"] = _count(factory, select(func.count()).select_from(group_members))
        left["mails_naming_users"] = _count(
            factory,
            select(func.count())
            .select_from(OutboxMessage)
            .where((OutboxMessage.occupier_user_id.is_not(None)) | (OutboxMessage.to_address != "")),
        )
        left["ok"] = sum(r.ok for r in results)
        left["events"] = _count(
            factory, select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "user.deleted")
        )
        expected = {name: 0 for name in left} | {"ok": users, "events": users}
        rows.append(
            _row(
                f"delete_users, {users:,} users, {CHUNK:,} per transaction",
                backend,
                users,
                seconds,
                per_call,
                memory,
                target=TARGET_DELETE_S,
                what="load, full cascade, RADIUS history, outbox wiped, audit, commit; "
                f"+ one search index purge {per_call[-1]:.2f} s",
                wrong=_expect(left, expected),
                split=dict(SPLIT),
            )
        )
        log(f"  delete: {seconds:.2f} s")
        for row in rows:
            row.detail["load_avg"] = os.getloadavg()
        return rows
    finally:
        engine.dispose()
