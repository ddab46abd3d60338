"""``occupant serve`` (the web server, with the background worker inside) and ``occupant worker``."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from occupant.cli.common import (
    console,
    current_revision,
    database_label,
    fail,
    redact_url,
    session_scope,
    upgrade_database,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _public_base(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _queue_label() -> str:
    from occupant.kit.settings import get_settings

    settings = get_settings()
    if os.environ.get("OCCUPANT_QUEUE") == "memory":
        return "an in-memory queue (tests only)"
    if settings.redis_url:
        return f"Redis at {redact_url(settings.redis_url)}"
    return f"the SQLite queue {settings.data_dir / 'queue.db'}"


def _mail_label() -> str:
    from occupant.kit.settings import get_settings

    settings = get_settings()
    if settings.smtp_url:
        return f"sent through {redact_url(settings.smtp_url)}"
    return f"written to {settings.mail_dir}/ (set OCCUPANT_SMTP_URL to send it)"


def web_app() -> FastAPI:
    """The app of each web process of ``serve --workers N`` (the worker then runs once, in the parent)."""
    from occupant.web.app import create_app

    return create_app(run_worker=False)


def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on. Keep 127.0.0.1 behind a reverse proxy.")
    ] = ("127.0.0.1"),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Web processes to run (each stateless).")
    ] = 1,
    run_worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Run the background worker inside this process. Use --no-worker when "
            "**occupant worker** processes run elsewhere (with OCCUPANT_REDIS_URL).",
        ),
    ] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the web server: operator console, REST API and health check.

    Brings the database up to date first. On a database with no staff yet it prints a one-time
    link to create the first operator admin. Mail goes to the mail folder unless OCCUPANT_SMTP_URL is set.
    """
    import uvicorn

    from occupant.kit.settings import get_settings
    from occupant.staff.service import has_any_staff
    from occupant.staff.setup import issue_setup_token

    base = _public_base(host, port)
    if "OCCUPANT_BASE_URL" not in os.environ:  # links in mail point at this server
        os.environ["OCCUPANT_BASE_URL"] = base
        get_settings.cache_clear()

    revision = upgrade_database()
    with session_scope() as session:
        staffed = has_any_staff(session)
    app = None
    if workers == 1:
        from occupant.web.app import create_app

        app = create_app(run_worker=run_worker)

    console.print(f"Occupant: database {database_label()} (schema {revision}).", markup=False)
    if run_worker:
        console.print(f"Background work runs in this process, on {_queue_label()}.", markup=False)
    else:
        console.print(
            f"Background work is left to `occupant worker` processes, on {_queue_label()}.", markup=False
        )
    console.print(f"Mail is {_mail_label()}.", markup=False)
    if staffed:
        console.print(f"Open {base}/", markup=False)
        console.print("Sign in with your operator admin account.", markup=False)
    else:
        token = issue_setup_token()
        console.print(f"Open {base}/setup?token={token} to create the first operator admin.", markup=False)
        console.print("(Or run `occupant admin create --email you@example.com`.)", markup=False)
    console.print("Press Ctrl+C to stop.", markup=False)
    sys.stdout.flush()
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    if log_level.lower() != "debug":  # the worker's per-task lines would bury the address printed above
        logging.getLogger("huey").setLevel(logging.WARNING)

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level.lower(),
        "server_header": False,
    }
    if app is not None:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C, re-raised after the graceful shutdown
            uvicorn.Server(uvicorn.Config(app, **options)).run()
        return
    consumer = None
    if run_worker:
        from occupant.worker.inprocess import start_consumer

        consumer = start_consumer()
    try:
        uvicorn.run("occupant.cli.server:web_app", factory=True, workers=workers, **options)
    finally:
        if consumer is not None:
            consumer.stop(graceful=True)


def worker(
    threads: Annotated[
        int | None,
        typer.Option(
            "--workers", "-w", min=1, max=256, help="Worker threads [default: 2, or OCCUPANT_WORKER_THREADS]."
        ),
    ] = None,
    periodic: Annotated[
        bool,
        typer.Option(
            "--periodic/--no-periodic", help="Also run the periodic sweep that re-queues lost work."
        ),
    ] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run a background worker in the foreground: mail delivery, decommissioning, the sweep.

    Takes work from Redis when OCCUPANT_REDIS_URL is set (run as many workers, on as many machines,
    as you like), else from the SQLite queue in the data folder. Stop it with Ctrl+C or SIGTERM.
    """
    from occupant.kit.settings import get_settings

    if current_revision() is None:
        raise fail(f"the database {database_label()} has no schema yet: run `occupant db upgrade` first")
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    import occupant.worker.tasks  # noqa: F401  (registers the tasks)
    from occupant.worker.queue import huey

    count = threads or get_settings().worker_threads
    console.print(
        f"Worker: {count} thread(s) on {_queue_label()}; database {database_label()}.", markup=False
    )
    console.print("Press Ctrl+C to stop.", markup=False)
    sys.stdout.flush()
    consumer = huey.create_consumer(workers=count, worker_type="thread", periodic=periodic)
    consumer.run()
