"""``python -m bench`` / ``scripts/bench.sh``: run the benchmarks and print one table.

    scripts/bench.sh [all|search|users-tab|api|outbox|accounts|build|explain|radius|export|bulk|...]
                     [--backend sqlite|postgresql|both] [--rebuild] [--users N] [--occupiers N] ...

Results are also written as JSON to bench/out/results-<command>-<time>.json (and -latest.json).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
from typing import Any

from bench import build as build_mod
from bench.backends import BACKENDS, Backend, pg_server
from bench.dataset import Spec
from bench.report import Row, print_table, save_json

COMMANDS = (
    "all",
    "search",
    "users-tab",
    "api",
    "outbox",
    "accounts",
    "build",
    "explain",
    "radius",
    "wifi-create",
    "bulk-lifecycle-service",
    "bulk-create-service",
    "export",
    "bulk",
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="Occupant benchmarks: one command, one table.")
    p.add_argument("command", choices=COMMANDS, nargs="?", default="all")
    p.add_argument("query", nargs="?", help="explain: the search text (omit for the plain list)")
    p.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached datasets")
    p.add_argument("--users", type=int, default=Spec.users, help="dataset size (default 1,000,000)")
    p.add_argument("--occupiers", type=int, default=Spec.occupiers)
    p.add_argument("--seed", type=int, default=Spec.seed)
    p.add_argument("--queries", type=int, default=220, help="timed search queries after warm-up")
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--api-seconds", type=float, default=15.0, help="load per API endpoint")
    p.add_argument(
        "--api-connections",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[4, 16],
        help="concurrent keep-alive connections, comma-separated (default 4,16)",
    )
    p.add_argument("--api-workers", type=int, default=2)
    p.add_argument("--outbox-messages", type=int, default=10_000)
    p.add_argument("--radius-users", type=int, default=100_000, help="radius: Wi-Fi accounts on each side")
    p.add_argument("--radius-requests", type=int, default=25_000, help="radius: requests per side per round")
    p.add_argument("--radius-rounds", type=int, default=4)
    p.add_argument("--radius-inflight", type=int, default=32)
    p.add_argument("--wifi-accounts", type=int, default=10_000, help="wifi-create: accounts per mode")
    p.add_argument(
        "--wifi-bulk-accounts",
        type=int,
        default=100_000,
        help="wifi-create: accounts of the large set-based run (0: skip it)",
    )
    p.add_argument("--export-users", type=int, default=100_000, help="export: users of the big occupier")
    p.add_argument("--export-runs", type=int, default=3, help="export: timed downloads per way")
    p.add_argument("--export-no-http", action="store_true", help="export: skip the download through uvicorn")
    p.add_argument(
        "--create-rows", type=int, default=100_000, help="bulk-create-service: rows of the generated CSV"
    )
    p.add_argument(
        "--lifecycle-users",
        type=int,
        default=100_000,
        help="bulk-lifecycle-service: users deactivated, reactivated and deleted set-based",
    )
    p.add_argument(
        "--signin-users",
        type=int,
        default=3_000,
        help="accounts: ACTIVE accounts to sign in (0: skip sign-in)",
    )
    p.add_argument("--signin-seconds", type=float, default=15.0, help="accounts: load per connection count")
    p.add_argument("--floor-seconds", type=float, default=10.0, help="accounts: argon2 verify loop length")
    p.add_argument(
        "--invitations", type=int, default=100_000, help="accounts: users invited with invite_many"
    )
    p.add_argument(
        "--invitations-one-by-one", type=int, default=10_000, help="accounts: users invited with invite"
    )
    p.add_argument(
        "--invitation-deliveries",
        type=int,
        default=10_000,
        help="accounts: invitation mails then delivered to the SMTP sink (0: skip)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="accounts: cProfile the invitation runs (bench/out/accounts-*.prof and .txt)",
    )
    p.add_argument("--occupier", type=int, help="explain: limit to this occupier")
    p.add_argument("--count", action="store_true", help="explain: also the count query")
    p.add_argument("--site-manager", action="store_true", help="explain: as a site manager of LON01")
    p.add_argument(
        "--quiet",
        type=float,
        metavar="LOAD",
        help="before each benchmark wait (up to --quiet-wait s) until the 1-minute load average is at most "
        "LOAD: on a shared machine, other jobs otherwise set the figures",
    )
    p.add_argument("--quiet-wait", type=float, default=600.0)
    p.add_argument(
        "--pg-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="use a throwaway PostgreSQL with this setting (repeatable), e.g. shared_buffers=1GB",
    )
    return p


def _backends(choice: str) -> list[Backend]:
    return list(BACKENDS) if choice == "both" else [choice]  # type: ignore[list-item]


def _api_ready() -> str | None:
    """None when the REST API has the routes the benchmark calls, else why not."""
    if importlib.util.find_spec("occupant.users.routes") is None:
        return "src/occupant/users/routes.py does not exist yet"
    from bench.common import has_route
    from occupant.web.app import create_app

    app = create_app()
    missing = [path for path in ("/api/v1/users", "/api/v1/users/1") if not has_route(app, "GET", path)]
    if missing:
        return f"the app does not route GET {', '.join(missing)} yet"
    return None


def _outbox_ready() -> str | None:
    if importlib.util.find_spec("occupant.notify.delivery") is None:
        return "src/occupant/notify/delivery.py does not exist yet"
    module = importlib.import_module("occupant.notify.delivery")
    if not hasattr(module, "deliver_due"):
        return "occupant.notify.delivery has no deliver_due yet"
    return None


def _wait_for_quiet(load: float, patience: float) -> None:
    deadline = time.monotonic() + patience
    if os.getloadavg()[0] > load:
        build_mod.log(
            f"waiting for the 1-minute load average to fall to {load:g} (now {os.getloadavg()[0]:.1f})"
        )
    while os.getloadavg()[0] > load and time.monotonic() < deadline:
        time.sleep(5)
    if os.getloadavg()[0] > load:
        build_mod.log(f"still busy (load {os.getloadavg()[0]:.1f}) after {patience:g} s: measuring anyway")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    spec = Spec(users=args.users, occupiers=args.occupiers, seed=args.seed)
    backends = _backends(args.backend)
    started = time.perf_counter()
    rows: list[Row] = []
    context: dict[str, Any] = {"command": args.command, "spec": spec.__dict__, "datasets": {}}
    wanted = {"search", "users-tab", "api", "outbox", "accounts"} if args.command == "all" else {args.command}

    if args.pg_setting:
        from bench.backends import use_tuned_throwaway

        use_tuned_throwaway(args.pg_setting)
        context["pg_settings"] = args.pg_setting
    infos = {}
    if wanted & {"search", "users-tab", "api", "build", "explain"}:
        for backend in backends:
            info = build_mod.ensure(backend, spec, rebuild=args.rebuild)
            infos[backend] = info
            context["datasets"][backend] = {k: v for k, v in info.__dict__.items() if k != "occupier_sizes"}
            if backend == "postgresql":
                context["datasets"][backend]["server"] = info.server or f"PostgreSQL {pg_server().version()}"

    if args.command == "build":
        for backend, info in infos.items():
            print(
                f"{backend}: {info.users:,} users, built {info.built_at} in {info.build_seconds} s, "
                f"{info.extra}, {info.url}"
            )
        return 0
    if args.command == "explain":
        from bench.explain import explain

        for backend, info in infos.items():
            print(f"===== {backend}")
            print(
                explain(
                    info,
                    args.query,
                    occupier_id=args.occupier,
                    count=args.count,
                    as_site_manager=args.site_manager,
                )
            )
        return 0

    def measured(produce: Any) -> list[Row]:
        """Rows of one benchmark, each noting the machine's load average before and after it."""
        if args.quiet is not None:
            _wait_for_quiet(args.quiet, args.quiet_wait)
        before = os.getloadavg()[0]
        made: list[Row] = produce()
        after = os.getloadavg()[0]
        for row in made:
            row.detail["loadavg_1min"] = [round(before, 2), round(after, 2)]
        return made

    accounts_floor: float | None = None
    for backend in backends:
        if "search" in wanted:
            from bench import search

            rows += measured(
                lambda b=backend: search.run(infos[b], spec, queries=args.queries, warmup=args.warmup)
            )
        if "users-tab" in wanted:
            from bench import users_tab

            rows += measured(
                lambda b=backend: users_tab.run(infos[b], iterations=args.queries, warmup=args.warmup)
            )
        if "api" in wanted:
            reason = _api_ready()
            if reason:
                rows.append(Row("REST API GET /api/v1/users/{id}", backend, skipped=reason))
                rows.append(Row("REST API GET /api/v1/users?limit=50", backend, skipped=reason))
            else:
                from bench import api

                rows += measured(
                    lambda b=backend: api.run(
                        infos[b],
                        seconds=args.api_seconds,
                        connections=args.api_connections,
                        workers=args.api_workers,
                    )
                )
        if "outbox" in wanted:
            reason = _outbox_ready()
            if reason:
                rows.append(
                    Row(f"outbox delivery, {args.outbox_messages:,} queued mails", backend, skipped=reason)
                )
            else:
                from bench import outbox

                rows += measured(lambda b=backend: outbox.run(b, spec, messages=args.outbox_messages))
        if "accounts" in wanted:
            from bench import accounts

            if accounts_floor is None:  # the argon2 floor needs no database: once per run
                floor = measured(lambda: accounts.floor_rows(seconds=args.floor_seconds))
                rows += floor
                accounts_floor = float(floor[-1].detail["rate"])
            rows += measured(
                lambda b=backend, f=accounts_floor: accounts.run(
                    b,
                    floor_rate=f,
                    signin_users=args.signin_users,
                    signin_seconds=args.signin_seconds,
                    connections=args.api_connections,
                    workers=args.api_workers,
                    invitations=args.invitations,
                    one_by_one=args.invitations_one_by_one,
                    deliveries=args.invitation_deliveries,
                    profile=args.profile,
                )
            )
        if "wifi-create" in wanted:
            from bench import wifi_create

            rows += measured(
                lambda b=backend: wifi_create.run(
                    b, accounts=args.wifi_accounts, large=args.wifi_bulk_accounts
                )
            )
        if "export" in wanted:
            from bench import export

            rows += measured(
                lambda b=backend: export.run(
                    b, users=args.export_users, runs=args.export_runs, http=not args.export_no_http
                )
            )
        if "bulk-lifecycle-service" in wanted:
            from bench import bulk_lifecycle_service

            rows += measured(lambda b=backend: bulk_lifecycle_service.run(b, users=args.lifecycle_users))
        if "bulk-create-service" in wanted:
            from bench import bulk_create_service

            rows += measured(lambda b=backend: bulk_create_service.run(b, rows=args.create_rows))
        if "bulk" in wanted:
            from bench import bulk

            rows += measured(lambda b=backend: bulk.run(b, rows=args.create_rows))
    if "radius" in wanted:  # FreeRADIUS against PostgreSQL only: one run, both schemas side by side
        from bench import radius

        rows += measured(
            lambda: radius.run(
                users=args.radius_users,
                requests=args.radius_requests,
                rounds=args.radius_rounds,
                inflight=args.radius_inflight,
                rebuild=args.rebuild,
            )
        )

    context["seconds"] = round(time.perf_counter() - started, 1)
    context["loadavg_end"] = os.getloadavg()
    path = save_json(rows, args.command, context)
    loads = [load for r in rows for load in r.detail.get("loadavg_1min", [])]
    busy = (
        f"; machine load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} CPUs" if loads else ""
    )
    # the benchmarks with their own fresh databases do not use the 1M dataset: no size in the title then
    size = f", {spec.users:,} users" if wanted & {"search", "users-tab", "api"} else ""
    print_table(rows, f"Occupant benchmarks ({args.command}{size}{busy}) — JSON: {path}")
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
