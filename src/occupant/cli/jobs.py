"""``occupant jobs``: bulk jobs, acting as the operator itself — list, show (with the failed items), confirm,
retry the failed items, cancel, download the results.

The commands that start a job (``jobs confirm``, ``jobs retry`` and ``users import`` / ``users deactivate``)
share one flow, :func:`start_and_follow`: the preview's summary, a question (or ``--yes``; without a
terminal the question cannot be asked, so ``--yes`` is needed), then the run with a progress bar. The job
runs in this process, unless a worker is configured (``OCCUPANT_REDIS_URL``): then this command follows the
worker's progress, and runs the job itself if no worker has picked it up within a few seconds. Running
twice at once is safe: the engine's job lock makes chunks take turns, no item is ever done twice.

Exit status: 0 when the job ends DONE, 1 when it ends PARTIALLY_DONE, FAILED or CANCELLED (and for any
error).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from occupant.cli.common import console, err_console, fail, print_json, session_scope, upgrade_database
from occupant.cli.staff import JsonOption, OperatorOption, _operator_id

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from occupant.authz.actor import Actor
    from occupant.bulk.models import BulkJob

app = typer.Typer(
    help="Bulk jobs (imports, deactivations, the console's bulk edits): list them, show one and its failed "
    "items, confirm a preview, retry the failed items, cancel, download the results.",
    no_args_is_help=True,
)

JobArg = Annotated[int, typer.Argument(help="The job's ID (as `occupant jobs list` shows it).", min=1)]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

FAILED_SHOWN = 20  # failing rows a summary lists; `jobs show ID --failed` lists them all
JSON_FAILED = 100  # failing items a --json summary carries
WORKER_GRACE = 10.0  # seconds a configured worker has to pick a job up before this process runs it
POLL = 0.25  # seconds between two looks at the job's counters
REQUESTED_BY = "occupant command line"


# --- reading jobs ---------------------------------------------------------------------------------------


def operator_actor(session: Session, operator_id: int | None) -> Actor:
    """The operator (the first one by default) acting as itself, as every command does."""
    from occupant.authz.actor import Actor

    op_id, _ = _operator_id(session, operator_id)
    return Actor.system(op_id)


def find_job(session: Session, actor: Actor, job_id: int, *, for_update: bool = False) -> BulkJob:
    from occupant.bulk import engine
    from occupant.kit.errors import NotFound

    try:
        return engine.get_job(session, actor, job_id, for_update=for_update)
    except NotFound:
        raise fail(f"there is no job {job_id}") from None


def job_record(session: Session, job: BulkJob) -> dict[str, Any]:
    """The job as the API shows it, with what its items did (``outcomes``: created, deactivated, …)."""
    from occupant.bulk import queries
    from occupant.bulk.kinds import KINDS
    from occupant.bulk.schemas import JobOut

    kind = KINDS.get(job.kind)
    record = JobOut.of(job, title=kind.title if kind is not None else job.kind).model_dump(mode="json")
    record["outcomes"] = queries.item_counts(session, job).outcomes
    return record


def failing_items(session: Session, job: BulkJob, limit: int | None) -> Iterator[Any]:
    """The job's failed and excluded items in order, ``limit`` of them (None: all, read a page at a time)."""
    from occupant.bulk import queries
    from occupant.bulk.models import ItemStatus

    cursor, left = None, limit
    while left is None or left > 0:
        size = 500 if left is None else min(left, 500)
        page = queries.item_page(
            session, job, statuses=[ItemStatus.FAILED, ItemStatus.EXCLUDED], cursor=cursor, limit=size
        )
        yield from page.items
        if left is not None:
            left -= len(page.items)
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _is_file(job: BulkJob) -> bool:
    return "file" in (job.selection or {}) or "rows" in (job.selection or {})


def failing_table(job: BulkJob, items: Iterator[Any]) -> Table:
    """One line per problem: a row with several invalid fields has a line for each."""
    file_job = _is_file(job)
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("Line" if file_job else "#", justify="right")
    table.add_column("Email" if file_job else "User", overflow="fold")
    table.add_column("Field")
    table.add_column("Problem", overflow="fold")
    for item in items:
        errors = item.errors or [{"field": "", "code": item.code or "", "message": item.message or ""}]
        for n, err in enumerate(errors):
            first = n == 0
            table.add_row(
                str(item.position) if first else "",
                (item.identifier or (f"user {item.user_id}" if item.user_id else "")) if first else "",
                err.get("field") or "",
                f"{err.get('message') or ''} ({err.get('code') or item.code})",
            )
    return table


def _failures_json(session: Session, job: BulkJob) -> list[dict[str, Any]]:
    from occupant.bulk.schemas import ItemOut

    return [ItemOut.of(i, job).model_dump(mode="json") for i in failing_items(session, job, JSON_FAILED)]


def print_failures(session: Session, job: BulkJob) -> None:
    """The first failing rows, and where to see the others."""
    refused = job.failed + job.excluded
    if not refused:
        return
    console.print(failing_table(job, failing_items(session, job, FAILED_SHOWN)))
    if refused > FAILED_SHOWN:
        console.print(
            f"… and {refused - FAILED_SHOWN:,} more: occupant jobs show {job.id} --failed", markup=False
        )


def _describe(job: BulkJob, record: dict[str, Any]) -> str:
    selection = job.selection or {}
    source = f" from {selection['file']}" if "file" in selection else ""
    return f"Job {job.id}: {record['title']}{source}"


def print_preview(session: Session, job: BulkJob) -> None:
    record = job_record(session, job)
    console.print(_describe(job, record), markup=False)
    would, refused = job.pending, job.failed + job.excluded
    noun = "rows" if _is_file(job) else "items"
    console.print(
        f"Checked {job.total:,} {noun}: {would:,} would be applied, {job.failed:,} fail"
        + (f", {job.excluded:,} excluded" if job.excluded else "")
        + ". Nothing has been changed yet.",
        markup=False,
    )
    if refused:
        print_failures(session, job)


def print_outcome(session: Session, job: BulkJob) -> None:
    """Counts per outcome, then the failing rows."""
    from occupant.bulk.models import JobState

    record = job_record(session, job)
    took = ""
    if job.started_at and job.finished_at:
        took = f" in {(job.finished_at - job.started_at).total_seconds():,.1f} s"
    console.print(f"{_describe(job, record)}: {job.state}{took}.", markup=False)
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("Outcome")
    table.add_column("Items", justify="right")
    for outcome, count in sorted(record["outcomes"].items()):
        table.add_row(outcome, f"{count:,}")
    for label, count in (("failed", job.failed), ("excluded", job.excluded)):
        if count:
            table.add_row(label, f"{count:,}")
    if job.pending:
        table.add_row("not started" if job.state == JobState.CANCELLED else "pending", f"{job.pending:,}")
    console.print(table)
    print_failures(session, job)
    if job.failed + job.excluded:
        console.print(f"Retry the failed ones with: occupant jobs retry {job.id}", markup=False)


# --- starting and following a job -----------------------------------------------------------------------


def ask(question: str, yes: bool, job_id: int) -> None:
    """Go on with ``--yes`` or a "y" at the prompt; without a terminal there is nobody to ask."""
    if yes:
        return
    if sys.stdin is None or not sys.stdin.isatty():
        raise fail(
            f"standard input is not a terminal, so there is nobody to ask: add --yes to start the job "
            f"(the preview is kept as job {job_id} for 24 hours: occupant jobs confirm {job_id} --yes)"
        )
    if not typer.confirm(question, err=True):
        err_console.print(
            f"Not started. The preview is kept as job {job_id} for 24 hours "
            f"(occupant jobs confirm {job_id}).",
            markup=False,
        )
        raise typer.Exit(1)


def start_and_follow(job_id: int, operator_id: int | None, *, yes: bool, json_out: bool) -> None:
    """Show the preview, ask, confirm, run with a progress bar, show the outcome; exit 1 unless DONE."""
    from occupant.bulk import engine
    from occupant.bulk.models import JobState

    with session_scope() as session:
        actor = operator_actor(session, operator_id)
        job = find_job(session, actor, job_id)
        if job.state != JobState.PREVIEW:
            raise fail(f"job {job_id} is {job.state}: only a preview can be started")
        if not json_out:
            print_preview(session, job)
        if job.pending == 0:
            if json_out:
                print_json({**job_record(session, job), "failed_items": _failures_json(session, job)})
            raise fail("nothing would be applied: every item fails")
        where = f" in {_occupier_name(session, job.occupier_id)}" if job.occupier_id else ""
        question = f"Start job {job.id} on {job.pending:,} items{where}?" + (
            f" The {job.failed + job.excluded:,} failing ones are left out."
            if job.failed + job.excluded
            else ""
        )
    ask(question, yes, job_id)
    with session_scope() as session:
        actor = operator_actor(session, operator_id)
        engine.confirm(session, find_job(session, actor, job_id, for_update=True), actor=actor)
    state = follow(job_id, show=not json_out)
    finish(job_id, operator_id, json_out=json_out, state=state)


def _occupier_name(session: Session, occupier_id: int) -> str:
    from occupant.occupiers.models import Occupier

    occupier = session.get(Occupier, occupier_id)
    return occupier.name if occupier is not None else f"occupier {occupier_id}"


def follow(job_id: int, *, show: bool) -> str:
    """Run the job here (or follow a configured worker), the progress bar on standard error; its end state.

    Ctrl+C stops following, not the job: it is left QUEUED or RUNNING, and the periodic sweep of any worker
    finishes it (or ``occupant jobs cancel``)."""
    from occupant.bulk import engine
    from occupant.bulk.models import FINISHED, BulkJob, JobState
    from occupant.kit.runtime import get_read_session_factory, get_session_factory
    from occupant.kit.settings import get_settings

    errors: list[BaseException] = []
    runner: threading.Thread | None = None

    def run_here() -> None:
        nonlocal runner

        def work() -> None:
            try:
                engine.run_job(get_session_factory(), job_id)
            except BaseException as exc:  # shown by the main thread
                errors.append(exc)

        runner = threading.Thread(target=work, name=f"bulk-job-{job_id}", daemon=True)
        runner.start()

    waiting_since = time.monotonic()
    if not get_settings().redis_url:
        run_here()
    reader = get_read_session_factory()
    bar, task = _progress_bar() if show else (None, None)
    state: str = JobState.QUEUED
    try:
        with bar if bar is not None else nullcontext():
            while True:
                with reader() as session:
                    job = session.get(BulkJob, job_id)
                    if job is None:
                        raise fail(f"job {job_id} is gone")
                    state, processed, total = job.state, job.processed, job.total
                if bar is not None and task is not None:
                    bar.update(task, completed=processed, total=total)
                if state in FINISHED:
                    break
                if (
                    runner is None
                    and state == JobState.QUEUED
                    and time.monotonic() - waiting_since > WORKER_GRACE
                ):
                    err_console.print(
                        f"No worker has picked job {job_id} up in {WORKER_GRACE:g} s: running it here.",
                        markup=False,
                    )
                    run_here()
                if runner is not None and not runner.is_alive():
                    if errors:
                        raise errors[0]
                    continue  # one more look: the last chunk's counts
                time.sleep(POLL)
    except KeyboardInterrupt:
        raise fail(
            f"interrupted: job {job_id} is left {state}; a worker's sweep finishes it "
            f"(occupant jobs show {job_id}), or stop it with occupant jobs cancel {job_id}",
            code=130,
        ) from None
    return state


def _progress_bar() -> tuple[Any, Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    class Rate(TextColumn):
        def __init__(self) -> None:
            super().__init__("")

        def render(self, task: Any) -> Any:
            from rich.text import Text

            speed = task.speed
            return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")

    bar = Progress(
        TextColumn("Running"),
        BarColumn(),
        MofNCompleteColumn(),
        Rate(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
    )
    return bar, bar.add_task("job", total=None)


def finish(job_id: int, operator_id: int | None, *, json_out: bool, state: str) -> None:
    from occupant.bulk.models import JobState

    with session_scope() as session:
        actor = operator_actor(session, operator_id)
        job = find_job(session, actor, job_id)
        if json_out:
            print_json({**job_record(session, job), "failed_items": _failures_json(session, job)})
        else:
            print_outcome(session, job)
        done = job.state == JobState.DONE
    if not done:
        raise typer.Exit(1)


def after_preview(job_id: int, operator_id: int | None, *, dry_run: bool, yes: bool, json_out: bool) -> None:
    """What the commands that submit do next: stop at the preview (``--dry-run``), or start and follow."""
    if dry_run:
        with session_scope() as session:
            job = find_job(session, operator_actor(session, operator_id), job_id)
            if json_out:
                print_json({**job_record(session, job), "failed_items": _failures_json(session, job)})
            else:
                print_preview(session, job)
                console.print(
                    f"Dry run: nothing was changed. The preview is kept as job {job.id} for 24 hours "
                    f"(occupant jobs confirm {job.id} starts it); then it is deleted.",
                    markup=False,
                )
            clean = job.failed + job.excluded == 0
        if not clean:
            raise typer.Exit(1)
        return
    start_and_follow(job_id, operator_id, yes=yes, json_out=json_out)


# --- the commands ---------------------------------------------------------------------------------------


@app.command("list")
def list_jobs(
    occupier: Annotated[
        int | None, typer.Option("--occupier", min=1, help="Only this occupier's jobs.")
    ] = None,
    state: Annotated[
        str | None,
        typer.Option(help="PREVIEW, QUEUED, RUNNING, DONE, PARTIALLY_DONE, FAILED or CANCELLED."),
    ] = None,
    kind: Annotated[str | None, typer.Option(help="create, deactivate, delete, edit, …")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 20,
    operator_id: OperatorOption = None,
    json_out: JsonOption = False,
) -> None:
    """The newest bulk jobs: kind, state, occupier, how many items are settled and how many failed."""
    from occupant.bulk import queries
    from occupant.bulk.models import JobState

    wanted = None
    if state is not None:
        try:
            wanted = JobState(state.strip().upper())
        except ValueError:
            raise fail(f"--state must be one of {', '.join(JobState)}, not {state!r}") from None
    upgrade_database()
    with session_scope() as session:
        actor = operator_actor(session, operator_id)
        page = queries.list_jobs(session, actor, occupier_id=occupier, kind=kind, state=wanted, limit=limit)
        if json_out:
            print_json([job_record(session, job) for job in page.items])
            return
        names = queries.occupier_names(session, page.items)
        if not page.items:
            console.print("No jobs.", markup=False)
            return
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        table.add_column("ID", justify="right", no_wrap=True)
        table.add_column("Kind", no_wrap=True)
        table.add_column("State", no_wrap=True)
        table.add_column("Occupier", overflow="fold")
        table.add_column("Settled", justify="right", no_wrap=True)
        table.add_column("Failed", justify="right", no_wrap=True)
        table.add_column("Created", no_wrap=True)
        for job in page.items:
            table.add_row(
                str(job.id),
                job.kind,
                job.state,
                names.get(job.occupier_id or 0, "—"),
                f"{job.processed:,}/{job.total:,}",
                f"{job.failed + job.excluded:,}",
                job.created_at.strftime("%Y-%m-%d %H:%M"),
            )
        console.print(table)


@app.command("show")
def show(
    job_id: JobArg,
    failed: Annotated[
        bool,
        typer.Option("--failed", help="List every failed and excluded item (line, email, field, problem)."),
    ] = False,
    operator_id: OperatorOption = None,
    json_out: JsonOption = False,
) -> None:
    """A job's state and counts, what its items did, and its failing rows (the first few, or all with
    --failed)."""
    from occupant.bulk.models import JobState
    from occupant.bulk.schemas import ItemOut

    upgrade_database()
    with session_scope() as session:
        job = find_job(session, operator_actor(session, operator_id), job_id)
        if json_out:
            record = job_record(session, job)
            if failed:
                record["failed_items"] = [
                    ItemOut.of(i, job).model_dump(mode="json") for i in failing_items(session, job, None)
                ]
            print_json(record)
            return
        if failed:
            table = failing_table(job, failing_items(session, job, None))
            if not table.rows:
                console.print(f"Job {job.id}: no item failed.", markup=False)
            elif console.is_terminal and len(table.rows) > console.height:
                with console.pager():
                    console.print(table)
            else:
                console.print(table)
            return
        by = job.requested_by_name or job.requested_by_kind
        console.print(f"Requested by {by} on {job.created_at:%Y-%m-%d %H:%M} (UTC).", markup=False)
        if job.state == JobState.PREVIEW:
            print_preview(session, job)
            console.print(f"Start it with: occupant jobs confirm {job.id}", markup=False)
        else:
            print_outcome(session, job)


@app.command("confirm")
def confirm(
    job_id: JobArg, yes: YesOption = False, operator_id: OperatorOption = None, json_out: JsonOption = False
) -> None:
    """Start a previewed job (a dry run's, or one submitted through the API) and follow it to the end.

    Exit status 0 when it ends DONE, 1 when PARTIALLY_DONE, FAILED or CANCELLED."""
    upgrade_database()
    start_and_follow(job_id, operator_id, yes=yes, json_out=json_out)


@app.command("retry")
def retry(
    job_id: JobArg, yes: YesOption = False, operator_id: OperatorOption = None, json_out: JsonOption = False
) -> None:
    """A new job of the failed and excluded items of a finished one (same kind and options): previewed,
    then, once confirmed, run here with a progress bar.

    Exit status 0 when the new job ends DONE, 1 otherwise."""
    from occupant.bulk import engine

    upgrade_database()
    with session_scope() as session:
        actor = operator_actor(session, operator_id)
        new_id = engine.retry_failed(session, find_job(session, actor, job_id), actor=actor).id
    if not json_out:
        console.print(f"Job {new_id} retries the failed items of job {job_id}.", markup=False)
    start_and_follow(new_id, operator_id, yes=yes, json_out=json_out)


@app.command("cancel")
def cancel(
    job_id: JobArg, yes: YesOption = False, operator_id: OperatorOption = None, json_out: JsonOption = False
) -> None:
    """Stop a job before its next chunk (or drop a preview). Items not started stay untouched."""
    from occupant.bulk import engine

    upgrade_database()
    with session_scope() as session:
        job = find_job(session, operator_actor(session, operator_id), job_id)
        question = (
            f"Cancel job {job.id} ({job.kind}, {job.state}, {job.processed:,} of {job.total:,} settled)?"
        )
    if not yes:
        if sys.stdin is None or not sys.stdin.isatty():
            raise fail("standard input is not a terminal: add --yes to cancel without a prompt")
        typer.confirm(question, abort=True, err=True)
    with session_scope() as session:
        actor = operator_actor(session, operator_id)
        job = engine.cancel(session, find_job(session, actor, job_id, for_update=True), actor=actor)
        if json_out:
            print_json(job_record(session, job))
        else:
            console.print(
                f"Cancelled job {job.id}: {job.succeeded:,} items were applied, {job.pending:,} not started.",
                markup=False,
            )


@app.command("results")
def results(
    job_id: JobArg,
    out: Annotated[
        str | None,
        typer.Option(
            "--out", "-o", help="The CSV file, or - for standard output [default: bulk-job-<ID>-results.csv]."
        ),
    ] = None,
    operator_id: OperatorOption = None,
) -> None:
    """Download a job's results as CSV: row, identifier, status, outcome, code, message (formulas in cells
    neutralised; a file gets a UTF-8 BOM for Excel)."""
    import os

    from occupant.bulk import engine
    from occupant.kit.csvout import stream_csv

    upgrade_database()
    with session_scope() as session:
        job = find_job(session, operator_actor(session, operator_id), job_id)
        path = None if out == "-" else Path(out or f"bulk-job-{job.id}-results.csv")
        chunks = stream_csv(engine.RESULT_HEADER, engine.results_rows(session, job), bom=path is not None)
        if path is None:
            stream = typer.get_binary_stream("stdout")
            for chunk in chunks:
                stream.write(chunk.encode("utf-8"))
            stream.flush()
            return
        partial = path.with_name(path.name + ".part")
        try:
            with partial.open("w", encoding="utf-8", newline="") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        total = job.total
    console.print(f"Wrote the results of job {job_id} ({total:,} rows) to {path}.", markup=False)


@app.command("template")
def template(
    kind: Annotated[
        str, typer.Argument(help="A kind that reads files: create, deactivate.", show_default=False)
    ],
    out: Annotated[
        str | None,
        typer.Option(
            "--out", "-o", help="The CSV file, or - for standard output [default: <KIND>-template.csv]."
        ),
    ] = None,
) -> None:
    """Write the CSV template of a kind: its header and one example row (UTF-8 with a BOM, for Excel)."""
    from occupant.bulk import engine

    data = engine.template(kind)
    if out == "-":
        stream = typer.get_binary_stream("stdout")
        stream.write(data)
        stream.flush()
        return
    path = Path(out or f"{kind}-template.csv")
    path.write_bytes(data)
    console.print(f"Wrote the {kind} template to {path}.", markup=False)
