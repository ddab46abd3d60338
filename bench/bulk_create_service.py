"""Benchmark: creating 100,000 users from the issue's CSV through ``users.bulk`` (the service, no engine).

The file is ``/work/shared/bench/gen_users_csv.py N users.csv`` (seed 42: every row valid, Wi-Fi on every
row, homesites LON01 PAR01 BER01 MAD01 AMS01, invitations on most rows, 5 % admins), generated once into
bench/out/. A fresh database per backend (SQLite file bench/out/bulk_create.sqlite, PostgreSQL database
occupant_bench_bulk_create) built by the migrations; the five sites with NAS identifiers and one occupier
with all five, portal and mobile app offered, made with the service actions. Then, timed:

- **read**: the CSV parsed (``csv.DictReader``; ``kit.csvin`` is the engine's) and each row converted
  with ``users.bulk.row_from_csv``;
- **preview**: ``check_new_users`` on all rows at once, in one read-only transaction;
- **run**: ``create_users`` per chunk of 5,000 rows, one transaction each, split into its parts —
  validation (the re-check), users (ids, rows, search index, ``user.created`` events), groups, Wi-Fi
  (accounts, radcheck, radusergroup, password mails, ``wifi.created``), invitations (accounts, links,
  mails, events) and the commit.

The floors are measured in the same run on the same machine: the user rows alone, one transaction,
SQLite ``executemany`` / PostgreSQL ``COPY``. Each backend runs in its own child process, so that its
peak resident memory (``ru_maxrss``) is its own.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import OUT, ROOT
from bench.backends import Backend, pg_server
from bench.build import log
from bench.report import Row

PG_DATABASE = "occupant_bench_bulk_create"
GENERATOR = Path("/work/shared/bench/gen_users_csv.py")
SITES = [("LON01", "London", "GB"), ("PAR01", "Paris", "FR"), ("BER01", "Berlin", "DE")]
SITES += [("MAD01", "Madrid", "ES"), ("AMS01", "Amsterdam", "NL")]
CHUNK = 5_000
PARTS = ("validation", "users", "groups", "wifi", "invitations", "commit")
BUDGET = {"validation": 2.0, "users": 3.0, "groups": None, "wifi": 4.0, "invitations": 3.0}


def csv_file(rows: int) -> Path:
    path = OUT / f"users-{rows}.csv"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(GENERATOR), str(rows), str(path)], check=True)
    return path


def _fresh_database(backend: Backend) -> str:
    if backend == "sqlite":
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "bulk_create.sqlite"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        return f"sqlite:///{path}"
    server = pg_server()
    server.recreate(PG_DATABASE)
    return server.url(PG_DATABASE)


class Clock:
    """Seconds spent in each part of ``create_users``, by wrapping the functions it calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def part(self, name: str) -> Any:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def wrap(self, module: Any, attribute: str, part: str) -> Callable[[], None]:
        original = getattr(module, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.part(part):
                return original(*args, **kwargs)

        setattr(module, attribute, timed)
        return lambda: setattr(module, attribute, original)


def _setup(factory: Any) -> tuple[int, Any]:
    from occupant.authz.actor import Actor, ActorKind, Role
    from occupant.kit.db import transaction
    from occupant.occupiers.schemas import OccupierCreate
    from occupant.occupiers.service import create_occupier
    from occupant.operators.models import Operator
    from occupant.sites.schemas import SiteCreate
    from occupant.sites.service import create_site

    with transaction(factory) as session:
        operator = Operator(name="Bench Workspaces", wifi_max_devices=5)
        session.add(operator)
        session.flush()
        actor = Actor(kind=ActorKind.STAFF, id=1, operator_id=operator.id, role=Role.OPERATOR_ADMIN)
        sites = [
            create_site(
                session,
                SiteCreate(
                    code=code,
                    name=name,
                    country=country,
                    nas_identifiers=[f"ap-{code.lower()}-{k}" for k in range(1, 5)],
                ),
                actor=actor,
            )
            for code, name, country in SITES
        ]
        occupier = create_occupier(
            session,
            OccupierCreate(
                name="Griffiths Cox and Smith",
                site_ids=[s.id for s in sites],
                primary_site_id=sites[0].id,
                portal_offered=True,
                mobile_app_offered=True,
            ),
            actor=actor,
        )
        return occupier.id, actor


def _floor(factory: Any, backend: Backend, rows: list[dict[str, str]]) -> float:
    """The user rows alone, one transaction, the fastest way each database takes them (then rolled back)."""
    from occupant.kit.bulkwrite import insert_rows, table_of
    from occupant.kit.clock import utcnow
    from occupant.occupiers.models import Occupier
    from occupant.users.models import OccupierUser

    now = utcnow()
    columns = ("operator_id", "occupier_id", "first_name", "last_name", "email", "email_key", "job_title")
    columns += ("mobile", "direct_line", "language", "status", "sort_key", "search_text", "version_id")
    columns += ("created_at", "updated_at")
    with factory() as session:
        occupier = session.scalars(select(Occupier)).one()
        values = [
            (
                occupier.operator_id,
                occupier.id,
                r["first_name"],
                r["last_name"],
                r["email"],
                r["email"],
                r["job_title"],
                r["mobile"],
                r["direct_line"] or None,
                r["language"],
                "ACTIVE",
                f"{r['last_name']} {r['first_name']}".lower(),
                f"{r['first_name']} {r['last_name']} {r['email']}".lower(),
                1,
                now,
                now,
            )
            for r in rows
        ]
        connection = session.connection()
        started = time.perf_counter()
        if backend == "sqlite":
            connection.exec_driver_sql("DROP TRIGGER occupier_users_fts_ai")  # the bare table, as the floor
        insert_rows(session, table_of(OccupierUser), columns, values)
        seconds = time.perf_counter() - started
        session.rollback()
    return seconds


def measure(backend: Backend, rows: int) -> dict[str, Any]:
    """One backend's figures (run in a child process: its peak memory is its own)."""
    from occupant.kit import migrate
    from occupant.kit.db import make_engine, make_session_factory
    from occupant.occupiers.models import Occupier
    from occupant.users import bulk
    from occupant.worker.queue import huey

    path = csv_file(rows)
    url = _fresh_database(backend)
    engine = make_engine(url)
    result: dict[str, Any] = {"backend": backend, "rows": rows}
    try:
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        occupier_id, actor = _setup(factory)
        with open(path, encoding="utf-8", newline="") as handle:
            raw = list(csv.DictReader(handle))
        result["floor_s"] = _floor(factory, backend, raw)
        del raw
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        started = time.perf_counter()
        with open(path, encoding="utf-8", newline="") as handle:
            parsed = [bulk.row_from_csv(values, line=n) for n, values in enumerate(csv.DictReader(handle), 2)]
        result["read_s"] = time.perf_counter() - started
        log(f"bulk-create on {backend}: {len(parsed):,} rows read in {result['read_s']:.1f} s")

        preview_factory = make_session_factory(engine, read_only=True)
        started = time.perf_counter()
        with preview_factory() as session:
            occupier = session.get_one(Occupier, occupier_id)
            checks = bulk.check_new_users(session, occupier, parsed, on_existing="fail", actor=actor)
            session.rollback()
        result["preview_s"] = time.perf_counter() - started
        bad = [c for c in checks if not c.ok]
        result["preview_errors"] = len(bad)
        if bad:
            result["preview_error_sample"] = [(c.line, c.code, c.message) for c in bad[:3]]
        del checks
        log(f"bulk-create on {backend}: preview {result['preview_s']:.1f} s, {len(bad)} rows refused")

        clock = Clock()
        from occupant.accounts import service as accounts
        from occupant.groups import service as groups
        from occupant.wifi import bulk as wifi_bulk

        restore = [
            clock.wrap(bulk, "_plan", "validation"),
            clock.wrap(bulk, "_write_new_users", "writes"),
            clock.wrap(groups, "add_memberships_many", "groups"),
            clock.wrap(wifi_bulk, "write_new_accounts", "wifi"),
            clock.wrap(accounts, "create_accounts", "invitations"),
        ]
        failed = 0
        started = time.perf_counter()
        try:
            for start in range(0, len(parsed), CHUNK):
                session = factory()
                try:
                    occupier = session.get_one(Occupier, occupier_id)
                    results = bulk.create_users(
                        session, occupier, parsed[start : start + CHUNK], on_existing="fail", actor=actor
                    )
                    failed += sum(not r.ok for r in results)
                    with clock.part("commit"):
                        session.commit()
                finally:
                    session.close()
                huey.flush()  # the in-memory queue of Wi-Fi confirmations: nothing consumes it here
        finally:
            for undo in restore:
                undo()
        result["run_s"] = time.perf_counter() - started
        parts = dict(clock.seconds)
        parts["users"] = parts.pop("writes") - parts.get("groups", 0) - parts["wifi"] - parts["invitations"]
        result["parts"] = parts
        result["run_failed"] = failed
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result["rss_before_mb"] = rss_before / 1024
        log(f"bulk-create on {backend}: run {result['run_s']:.1f} s, {failed} rows failed")
        result["counts"] = _counts(factory)
        result["search_finds"] = _search(factory, actor, parsed[len(parsed) // 2])
    finally:
        engine.dispose()
    return result


def _counts(factory: Any) -> dict[str, int]:
    from occupant.accounts.models import AccountToken, AppAccount
    from occupant.audit.models import AuditEvent
    from occupant.notify.models import OutboxMessage
    from occupant.radius.models import RadCheck, RadUserGroup
    from occupant.users.models import OccupierUser
    from occupant.wifi.models import WifiAccount

    with factory() as session:
        counts = {
            name: session.scalar(select(func.count()).select_from(model)) or 0
            for name, model in (
                ("users", OccupierUser),
                ("wifi_accounts", WifiAccount),
                ("radcheck", RadCheck),
                ("radusergroup", RadUserGroup),
                ("app_accounts", AppAccount),
                ("links", AccountToken),
                ("mails", OutboxMessage),
                ("audit_events", AuditEvent),
            )
        }
        session.rollback()
    return counts


def _search(factory: Any, actor: Any, row: Any) -> bool:
    """The search box finds a user of the middle of the file by a fragment of their email."""
    from occupant.users.queries import list_users

    with factory() as session:
        fragment = (row.email or "").split("@")[0]
        page = list_users(session, actor, q=fragment, limit=50)
        found = any(user.email == row.email for user in page.items)
        session.rollback()
    return found


def run(backend: Backend, *, rows: int = 100_000) -> list[Row]:
    """Measure in a child process and turn its figures into the table's rows."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.bulk_create_service", backend, str(rows)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    sys.stderr.write(done.stderr)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return _rows(figures)


def _rows(f: dict[str, Any]) -> list[Row]:
    backend, n = f["backend"], f["rows"]
    counts = f["counts"]
    wrong = []
    if counts["users"] != n or counts["wifi_accounts"] != n or counts["radcheck"] != 2 * n:
        wrong.append(f"counts {counts}")
    if f["preview_errors"] or f["run_failed"]:
        wrong.append(f"{f['preview_errors']} refused in preview, {f['run_failed']} in the run")
    if not f["search_finds"]:
        wrong.append("search does not find a bulk-created user")
    note = ("; WRONG: " + "; ".join(wrong)) if wrong else ""
    detail = {k: v for k, v in f.items() if k not in ("backend",)}
    rows = [
        Row(
            f"bulk create {n:,} users (CSV, Wi-Fi, invitations): preview (check_new_users)",
            backend,
            target="≤ 5 s",
            rate=f"{n / f['preview_s']:,.0f} rows/s",
            notes=f"{f['preview_s']:.2f} s; read + convert {f['read_s']:.2f} s{note}",
            detail=detail,
        ),
        Row(
            f"bulk create {n:,} users: run (create_users, {CHUNK:,} per transaction)",
            backend,
            target="≤ 15 s, ≤ 300 MB",
            rate=f"{n / f['run_s']:,.0f} rows/s",
            notes=(
                f"{f['run_s']:.2f} s, peak RSS {f['peak_rss_mb']:.0f} MB; floor (user rows alone) "
                f"{f['floor_s']:.2f} s, ×{f['run_s'] / f['floor_s']:.1f}{note}"
            ),
            detail=detail,
        ),
    ]
    for part in PARTS:
        seconds = f["parts"].get(part, 0.0)
        budget = BUDGET.get(part)
        rows.append(
            Row(
                f"  run part: {part}",
                backend,
                target=f"≤ {budget:g} s" if budget else "—",
                notes=f"{seconds:.2f} s",
                detail={"seconds": round(seconds, 3)},
            )
        )
    return rows


if __name__ == "__main__":
    figures = measure(sys.argv[1], int(sys.argv[2]))  # type: ignore[arg-type]
    print(json.dumps(figures, default=str))
