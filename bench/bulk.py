"""Benchmark: bulk jobs end to end through the engine, each beside its floor measured in the same run.

    scripts/bench.sh bulk [--backend sqlite|postgresql|both] [--create-rows N]

On a fresh database per backend (SQLite file bench/out/bulk.sqlite, PostgreSQL database
occupant_bench_bulk) built by the migrations, with five sites and one occupier offering both apps
(``bulk_create_service``'s set-up):

1. **create** — the issue's 100,000-row file (``/work/shared/bench/gen_users_csv.py``, seed 42: Wi-Fi on
   every row, invitations, admins) uploaded as a console upload is: ``engine.submit_file`` (read, every row
   checked: the **preview**), ``engine.confirm``, then ``engine.run_job`` as the worker runs it (5,000 rows
   per transaction: users, groups, Wi-Fi accounts with RADIUS rows and password mails, app accounts with
   invitations, audit events, item results). Peak resident memory of the process. Floor: the user rows
   alone in one transaction (SQLite ``executemany``, PostgreSQL ``COPY``).
2. **export** — Download users for the occupier (``users.export``: every column, formula-safe), the CSV
   text consumed; the process's resident memory before and after. Floor: the same columns of
   ``occupier_users`` alone, selected and written with ``csv.writer``.
3. **deactivate from CSV** — a file of the 100,000 emails: ``submit_file`` (match by email, preview),
   confirm, run (Wi-Fi accounts and app accounts suspended, RADIUS refuses, events). Floor: one
   ``UPDATE occupier_users SET status`` for all, rolled back.
4. **delete** — every user of the occupier selected by filter: ``submit`` + confirm + run (the full
   cascade: Wi-Fi, RADIUS rows, app accounts, groups, mail wiped, job items forgotten, search index).
   Floor: ``DELETE FROM occupier_users`` with the foreign keys not checked, rolled back.

Each step runs in its own child process (its memory is its own); the worker's follow-up tasks (Wi-Fi
confirmations, mail) are queued, not consumed: these figures are the job's own work.
"""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from bench import OUT, ROOT
from bench.backends import Backend, pg_server
from bench.build import log
from bench.bulk_create_service import _floor, _setup, csv_file
from bench.report import Row

PG_DATABASE = "occupant_bench_bulk"
STEPS = ("create", "export", "deactivate", "delete")


def _url(backend: Backend, *, fresh: bool) -> str:
    if backend == "sqlite":
        path = OUT / "bulk.sqlite"
        if fresh:
            OUT.mkdir(parents=True, exist_ok=True)
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(f"{path}{suffix}"):
                    os.remove(f"{path}{suffix}")
        return f"sqlite:///{path}"
    server = pg_server()
    if fresh:
        server.recreate(PG_DATABASE)
    return server.url(PG_DATABASE)


def _configure(url: str) -> None:
    """This process's settings: the bench database, a data folder of its own (queue, mail)."""
    data = OUT / "bulk-data"
    data.mkdir(parents=True, exist_ok=True)
    os.environ["OCCUPANT_DATABASE_URL"] = url
    os.environ["OCCUPANT_DATA_DIR"] = str(data)
    os.environ.pop("OCCUPANT_REDIS_URL", None)
    from occupant.kit.settings import get_settings

    get_settings.cache_clear()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _world(factory: Any) -> tuple[Any, int]:
    """The occupier made by the create step, and an operator admin of its operator."""
    from occupant.authz.actor import Actor, ActorKind, Role
    from occupant.occupiers.models import Occupier

    with factory() as session:
        occupier = session.scalars(select(Occupier)).one()
        actor = Actor(kind=ActorKind.STAFF, id=1, operator_id=occupier.operator_id, role=Role.OPERATOR_ADMIN)
        return actor, occupier.id


def _job_figures(factory: Any, job_id: int) -> dict[str, Any]:
    from occupant.bulk.models import BulkJob

    with factory() as session:
        job = session.get_one(BulkJob, job_id)
        return {
            "state": str(job.state),
            "total": job.total,
            "succeeded": job.succeeded,
            "failed": job.failed,
            "excluded": job.excluded,
        }


def _preview_then_run(factory: Any, submit: Any, actor: Any) -> dict[str, Any]:
    """``submit(session)`` makes the PREVIEW job; then confirm and run it as the worker does."""
    from occupant.bulk import engine
    from occupant.bulk.models import BulkJob
    from occupant.kit.db import transaction
    from occupant.worker.queue import huey

    started = time.perf_counter()
    with transaction(factory) as session:
        job_id = submit(session).id
    preview_s = time.perf_counter() - started
    preview = _job_figures(factory, job_id)
    started = time.perf_counter()
    with transaction(factory) as session:
        engine.confirm(session, session.get_one(BulkJob, job_id), actor=actor)
    state = engine.run_job(factory, job_id)
    run_s = time.perf_counter() - started
    huey.flush()  # the follow-up tasks queued meanwhile: not part of the job
    return {
        "preview_s": preview_s,
        "run_s": run_s,
        "state": str(state),
        "preview": preview,
        **_job_figures(factory, job_id),
    }


def step_create(backend: Backend, rows: int) -> dict[str, Any]:
    from occupant.bulk import engine
    from occupant.kit import migrate
    from occupant.kit.db import make_engine, make_session_factory
    from occupant.occupiers.models import Occupier

    path = csv_file(rows)
    url = _url(backend, fresh=True)
    _configure(url)
    db = make_engine(url)
    migrate.upgrade(db)
    factory = make_session_factory(db)
    occupier_id, actor = _setup(factory)
    with open(path, encoding="utf-8", newline="") as handle:
        raw = list(csv.DictReader(handle))
    floor_s = _floor(factory, backend, raw)
    del raw
    data = Path(path).read_bytes()
    before = _rss_mb()

    def submit(session: Any) -> Any:
        return engine.submit_file(
            session,
            kind="create",
            data=data,
            filename=path.name,
            actor=actor,
            occupier=session.get_one(Occupier, occupier_id),
        )

    figures = _preview_then_run(factory, submit, actor)
    figures.update(floor_s=floor_s, peak_rss_mb=_rss_mb(), rss_before_mb=before, counts=_counts(factory))
    figures["confirm_wifi_s"] = _confirm_wifi(factory)
    db.dispose()
    return figures


def _confirm_wifi(factory: Any) -> float:
    """What the worker does next (not part of the job's figures): RADIUS has the credentials, so the
    PROVISIONING accounts become ACTIVE and their users are free for the next jobs."""
    from occupant.kit.db import transaction
    from occupant.wifi.bulk import confirm_provisioning_many
    from occupant.wifi.models import WifiAccount, WifiStatus

    started = time.perf_counter()
    with transaction(factory) as session:
        ids = list(
            session.scalars(select(WifiAccount.id).where(WifiAccount.status == WifiStatus.PROVISIONING))
        )
        confirm_provisioning_many(session, ids)
    return time.perf_counter() - started


def step_export(backend: Backend, rows: int) -> dict[str, Any]:
    from occupant.kit.db import make_engine, make_session_factory
    from occupant.users.export import export_csv, start_export
    from occupant.users.filters import UserFilter
    from occupant.users.models import OccupierUser

    url = _url(backend, fresh=False)
    _configure(url)
    db = make_engine(url)
    factory = make_session_factory(db)
    actor, occupier_id = _world(factory)
    columns = (OccupierUser.id, OccupierUser.first_name, OccupierUser.last_name, OccupierUser.email)
    columns += (OccupierUser.mobile, OccupierUser.direct_line, OccupierUser.job_title, OccupierUser.status)
    with factory() as session:  # the floor: the user columns alone, selected and written
        started = time.perf_counter()
        out = io.StringIO()
        writer = csv.writer(out)
        result = session.execute(
            select(*columns).where(OccupierUser.occupier_id == occupier_id).execution_options(yield_per=5_000)
        )
        for row in result:
            writer.writerow(row)
            if out.tell() > 1 << 20:
                out.seek(0)
                out.truncate()
        floor_s = time.perf_counter() - started
    before = _current_rss_mb()
    started = time.perf_counter()
    size = lines = 0
    with factory() as session:
        export = start_export(session, UserFilter(occupier_id=occupier_id), actor=actor)
        for chunk in export_csv(session, export):
            size += len(chunk)
            lines += chunk.count("\n")
        session.rollback()
    export_s = time.perf_counter() - started
    db.dispose()
    return {
        "export_s": export_s,
        "floor_s": floor_s,
        "lines": lines,
        "chars": size,
        "rss_before_mb": before,
        "rss_after_mb": _current_rss_mb(),
        "peak_rss_mb": _rss_mb(),
    }


def step_deactivate(backend: Backend, rows: int) -> dict[str, Any]:
    from occupant.bulk import engine
    from occupant.kit.db import make_engine, make_session_factory
    from occupant.occupiers.models import Occupier
    from occupant.users.models import OccupierUser

    url = _url(backend, fresh=False)
    _configure(url)
    db = make_engine(url)
    factory = make_session_factory(db)
    actor, occupier_id = _world(factory)
    with factory() as session:
        emails = list(session.scalars(select(OccupierUser.email).order_by(OccupierUser.id)))
        started = time.perf_counter()
        session.execute(text("UPDATE occupier_users SET status = 'DEACTIVATED'"))
        floor_s = time.perf_counter() - started
        session.rollback()
    data = ("email,remove_from_group\n" + "".join(f"{email},\n" for email in emails)).encode()

    def submit(session: Any) -> Any:
        return engine.submit_file(
            session,
            kind="deactivate",
            data=data,
            filename="leavers.csv",
            actor=actor,
            occupier=session.get_one(Occupier, occupier_id),
        )

    figures = _preview_then_run(factory, submit, actor)
    with factory() as session:
        figures["deactivated"] = session.scalar(
            select(func.count()).select_from(OccupierUser).where(OccupierUser.status == "DEACTIVATED")
        )
    figures.update(floor_s=floor_s, peak_rss_mb=_rss_mb())
    db.dispose()
    return figures


def step_delete(backend: Backend, rows: int) -> dict[str, Any]:
    from occupant.bulk import engine, sources
    from occupant.kit.db import make_engine, make_session_factory
    from occupant.occupiers.models import Occupier
    from occupant.users.filters import UserFilter

    url = _url(backend, fresh=False)
    _configure(url)
    db = make_engine(url)
    factory = make_session_factory(db)
    actor, occupier_id = _world(factory)
    with factory() as session:
        connection = session.connection()
        if backend == "sqlite":
            connection.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        else:
            connection.exec_driver_sql("SET session_replication_role = replica")  # no FK triggers
        started = time.perf_counter()
        connection.exec_driver_sql("DELETE FROM occupier_users")
        floor_s = time.perf_counter() - started
        session.rollback()

    def submit(session: Any) -> Any:
        f = UserFilter(occupier_id=occupier_id)
        return engine.submit(
            session,
            kind="delete",
            items=sources.items_from_filter(session, actor, f),
            actor=actor,
            occupier=session.get_one(Occupier, occupier_id),
            selection={"filter": f.non_personal},
        )

    figures = _preview_then_run(factory, submit, actor)
    figures.update(floor_s=floor_s, peak_rss_mb=_rss_mb(), counts=_counts(factory))
    db.dispose()
    return figures


def _counts(factory: Any) -> dict[str, int]:
    from occupant.accounts.models import AppAccount
    from occupant.notify.models import OutboxMessage
    from occupant.radius.models import RadCheck
    from occupant.users.models import OccupierUser
    from occupant.wifi.models import WifiAccount

    with factory() as session:
        return {
            name: session.scalar(select(func.count()).select_from(model)) or 0
            for name, model in (
                ("users", OccupierUser),
                ("wifi_accounts", WifiAccount),
                ("radcheck", RadCheck),
                ("app_accounts", AppAccount),
                ("mails", OutboxMessage),
            )
        }


def _child(step: str, backend: Backend, rows: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.bulk", step, backend, str(rows)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    sys.stderr.write(done.stderr[-4000:])
    if done.returncode != 0:
        raise RuntimeError(f"bench.bulk {step} on {backend} failed (exit {done.returncode})")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def run(backend: Backend, *, rows: int = 100_000) -> list[Row]:
    figures = {}
    for step in STEPS:
        log(f"bulk on {backend}: {step} ...")
        figures[step] = _child(step, backend, rows)
        log(f"bulk on {backend}: {step} {json.dumps(figures[step], default=str)[:300]}")
    return _rows(backend, rows, figures)


def _check(f: dict[str, Any], n: int, outcome: str = "DONE") -> str:
    wrong = []
    if f.get("state") != outcome or f.get("succeeded") != n:
        wrong.append(f"{f.get('state')}, {f.get('succeeded')} of {n} succeeded")
    return ("; WRONG: " + "; ".join(wrong)) if wrong else ""


def _rows(backend: Backend, n: int, f: dict[str, Any]) -> list[Row]:
    create, export, deactivate, delete = (f[s] for s in STEPS)
    counts = create["counts"]
    wrong = _check(create, n)
    if counts["users"] != n or counts["wifi_accounts"] != n or counts["app_accounts"] == 0:
        wrong += f"; WRONG counts {counts}"
    return [
        Row(
            f"bulk create {n:,} users from CSV: preview (submit_file, every row checked)",
            backend,
            target="≤ 5 s",
            rate=f"{n / create['preview_s']:,.0f} rows/s",
            notes=f"{create['preview_s']:.2f} s{wrong}",
            detail=create,
        ),
        Row(
            f"bulk create {n:,} users from CSV: run (confirm + worker, Wi-Fi + invitations)",
            backend,
            target="≤ 15 s, ≤ 300 MB",
            rate=f"{n / create['run_s']:,.0f} rows/s",
            notes=(
                f"{create['run_s']:.2f} s (preview + run {create['preview_s'] + create['run_s']:.2f} s), "
                f"peak RSS {create['peak_rss_mb']:.0f} MB; floor (user rows alone) {create['floor_s']:.2f} s"
                f"{wrong}"
            ),
            detail={"counts": counts},
        ),
        Row(
            f"export {n:,} users (Download users, every column)",
            backend,
            target="≤ 3 s, memory flat",
            rate=f"{n / export['export_s']:,.0f} rows/s",
            notes=(
                f"{export['export_s']:.2f} s, {export['lines'] - 1:,} rows; RSS {export['rss_before_mb']:.0f}"
                f" → {export['rss_after_mb']:.0f} MB; floor (user columns alone) {export['floor_s']:.2f} s"
            ),
            detail=export,
        ),
        Row(
            f"deactivate {n:,} users from CSV (preview + run)",
            backend,
            target="≤ 10 s",
            rate=f"{n / (deactivate['preview_s'] + deactivate['run_s']):,.0f} users/s",
            notes=(
                f"preview {deactivate['preview_s']:.2f} s + run {deactivate['run_s']:.2f} s; "
                f"floor (one UPDATE) {deactivate['floor_s']:.2f} s{_check(deactivate, n)}"
            ),
            detail=deactivate,
        ),
        Row(
            f"delete {n:,} users, full cascade (preview + run)",
            backend,
            target="≤ 15 s",
            rate=f"{n / (delete['preview_s'] + delete['run_s']):,.0f} users/s",
            notes=(
                f"preview {delete['preview_s']:.2f} s + run {delete['run_s']:.2f} s; "
                f"floor (one DELETE, no FK checks) {delete['floor_s']:.2f} s{_check(delete, n)}"
                + ("" if delete["counts"]["users"] == 0 else f"; WRONG: {delete['counts']['users']} left")
            ),
            detail=delete,
        ),
    ]


if __name__ == "__main__":
    step, backend_name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    functions = {"create": step_create, "export": step_export, "deactivate": step_deactivate}
    functions["delete"] = step_delete
    print(json.dumps(functions[step](backend_name, count), default=str))  # type: ignore[arg-type]
