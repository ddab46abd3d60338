"""``occupant users``: occupier users in bulk, acting as the operator itself.

``export`` writes every user matching the filter options to a CSV file (the console's "Download users"),
streamed: memory stays flat for any number of users. The download is logged (``users.exported``).

``import`` (a CSV of new users) and ``deactivate`` (a CSV keyed by email, or a list of emails) are bulk jobs:
every row is checked first and the preview shown, then, once confirmed, the job runs with a progress bar
(``occupant.cli.jobs``: the flow, the exit status).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from occupant.cli.common import console, err_console, fail, print_json, session_scope, upgrade_database
from occupant.cli.staff import OperatorOption, _operator_id

if TYPE_CHECKING:
    from occupant.users.filters import UserFilter

app = typer.Typer(
    help="Occupier users in bulk: export them to CSV (every user, or those matching filters), import them "
    "from CSV, deactivate them from CSV or a list of emails.",
    no_args_is_help=True,
)

# The filter's field names, as this command's options.
_OPTIONS = {"q": "--search", "wifi_homesite_id": "--wifi-homesite"}


def _criteria(values: dict[str, Any]) -> UserFilter:
    """The filter from the options; every invalid one reported under its option's name."""
    from occupant.kit.errors import FieldErrors
    from occupant.users.filters import UserFilter
    from occupant.web.forms import parse

    try:
        return parse(UserFilter, {k: v for k, v in values.items() if v is not None})
    except FieldErrors as exc:
        renamed = [
            {**e, "field": _OPTIONS.get(e["field"], "--" + e["field"].replace("_", "-"))} for e in exc.errors
        ]
        raise FieldErrors(renamed, exc.message if len(renamed) > 1 else None) from None


def _write(chunks: Iterator[str], path: Path | None) -> None:
    """The CSV to standard output, or to ``path`` through ``<path>.part`` (renamed once complete)."""
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


@app.command("export")
def export(
    occupier: Annotated[
        int | None,
        typer.Option(
            "--occupier", min=1, help="Only this occupier's users (its ID) [default: the operator's]."
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="The CSV file, or - for standard output [default: users-<occupier>-<date>.csv here].",
        ),
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", "-q", help="Any fragment of name or email.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(help="ACTIVE, DEACTIVATED, SETUP_REQUIRED or PASSWORD_REQUIRED."),
    ] = None,
    wifi: Annotated[
        str | None, typer.Option(help="Wi-Fi account: none, PROVISIONING, ACTIVE or DEACTIVATED.")
    ] = None,
    wifi_homesite: Annotated[
        str | None, typer.Option(help="Wi-Fi homesite (a site code, e.g. LON01).")
    ] = None,
    wifi_device_limit: Annotated[int | None, typer.Option(help="Wi-Fi concurrent device limit.")] = None,
    portal: Annotated[
        str | None, typer.Option(help="Portal: NOT_INVITED, INVITED, SIGNED_IN, or no_account.")
    ] = None,
    mobile_app: Annotated[
        str | None, typer.Option(help="Mobile app: NOT_INVITED, INVITED, SIGNED_IN, or no_account.")
    ] = None,
    account_status: Annotated[
        str | None, typer.Option(help="App account: NOT_INVITED, AWAITING_SIGN_IN, ACTIVE or DEACTIVATED.")
    ] = None,
    role: Annotated[str | None, typer.Option(help="App account role: admin or user.")] = None,
    operator_id: OperatorOption = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print a summary as JSON (the file, the rows, the filter).")
    ] = False,
) -> None:
    """Export users to CSV: every field an admin sees, one row per user, in name order.

    Cells that a spreadsheet would run as a formula (=, +, -, @ first: phone numbers too) start with an
    apostrophe. A file gets a UTF-8 BOM (for Excel); standard output does not.

    Examples:

      occupant users export --occupier 12

      occupant users export --wifi DEACTIVATED --out deactivated-wifi.csv

      occupant users export --occupier 12 --portal no_account -o - | wc -l
    """
    from occupant.authz.actor import Actor
    from occupant.cli.wifi import _site_id
    from occupant.kit.errors import NotFound
    from occupant.users.export import start_export, stream_export

    if out == "-" and json_out:
        raise fail("--json describes the file written: give --out FILE")
    upgrade_database()
    with session_scope() as session:
        op_id, _ = _operator_id(session, operator_id)
        actor = Actor.system(op_id)
        values: dict[str, Any] = {
            "occupier_id": occupier,
            "q": search,
            "status": status,
            "wifi": wifi,
            "wifi_device_limit": wifi_device_limit,
            "portal": portal,
            "mobile_app": mobile_app,
            "account_status": account_status,
            "role": role,
        }
        if wifi_homesite is not None:
            values["wifi_homesite_id"] = _site_id(session, op_id, wifi_homesite)
        criteria = _criteria(values)
        try:
            started = start_export(session, criteria, actor=actor)
        except NotFound:
            raise fail(f"there is no occupier {occupier}") from None

    path = None if out == "-" else Path(out or started.filename)
    written = 0
    bar: Any = None
    if path is not None and err_console.is_terminal and not json_out:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        bar = Progress(
            TextColumn("Exporting"), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True
        )
        task = bar.add_task("export", total=started.total)

    def on_rows(rows: int) -> None:
        nonlocal written
        written = rows
        if bar is not None:
            bar.update(task, completed=rows)

    with bar if bar is not None else nullcontext():
        _write(stream_export(started, bom=path is not None, on_rows=on_rows), path)

    if json_out:
        print_json(
            {
                "file": str(path),
                "rows": written,
                "occupier_id": started.filter.occupier_id,
                "filter": started.filter.criteria,
            }
        )
    elif path is not None:
        console.print(f"Exported {written:,} users to {path}.", markup=False)
    else:
        err_console.print(f"Exported {written:,} users.", markup=False)


# --- import and deactivate: bulk jobs ---------------------------------------------------------------------


class OnExisting(StrEnum):
    fail = "fail"
    skip = "skip"
    update = "update"


FileArg = Annotated[
    Path,
    typer.Argument(
        exists=True, dir_okay=False, readable=True, help="The CSV file (UTF-8 or UTF-16).", show_default=False
    ),
]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Check every row and show the preview, change nothing. The preview is kept 24 hours as a job "
        "(`occupant jobs confirm ID` starts it), then deleted. Exit status 1 when some row would fail.",
    ),
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Start without asking (needed without a terminal).")
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print the job at the end as JSON (state, counts, failed items), no bar."),
]
_REQUESTED_BY = "occupant command line"


def _submit_file(
    kind: str, path: Path, occupier_id: int | None, params: dict[str, Any] | None, operator_id: int | None
) -> int:
    """The file's preview job (its id): refused whole, before it is read, beyond OCCUPANT_CSV_MAX_BYTES."""
    from occupant.bulk.submission import file_too_large, submit_upload
    from occupant.cli.jobs import operator_actor
    from occupant.kit.errors import NotFound
    from occupant.kit.settings import get_settings

    limit = get_settings().csv_max_bytes
    size = path.stat().st_size
    if size > limit:
        raise file_too_large(size, limit)
    data = path.read_bytes()
    upgrade_database()
    with session_scope() as session:
        actor = operator_actor(session, operator_id)
        try:
            job = submit_upload(
                session,
                kind=kind,
                data=data,
                filename=path.name,
                occupier_id=occupier_id,
                params=params,
                preview=True,
                actor=actor,
                requested_by_name=_REQUESTED_BY,
            )
        except NotFound:
            raise fail(f"there is no occupier {occupier_id}") from None
        return job.id


@app.command("import")
def import_users(
    file: FileArg,
    occupier: Annotated[int, typer.Option("--occupier", min=1, help="The occupier the users join (its ID).")],
    on_existing: Annotated[
        OnExisting,
        typer.Option(help="A row whose email already exists: fail the row, skip it, or update that user."),
    ] = OnExisting.fail,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    operator_id: OperatorOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create users from a CSV file: every row is checked and the failing ones listed (line, email, field,
    problem), then, once you confirm, the users are created here with a progress bar, and the outcome shown.

    Columns: first_name*, last_name*, email*, job_title, mobile, direct_line, language, employee_number,
    username, external_id, wifi, wifi_homesite, wifi_device_limit, role, invite_portal, invite_mobile_app,
    groups (`occupant jobs template create` writes a template to fill in).

    Exit status: 0 when every row was applied (DONE); 1 when some or all failed (PARTIALLY_DONE, FAILED),
    for a dry run with failing rows, and for any error.

    Examples:

      occupant users import new-starters.csv --occupier 12 --dry-run

      occupant users import new-starters.csv --occupier 12 --on-existing skip --yes
    """
    from occupant.cli.jobs import after_preview

    params = {"on_existing": on_existing.value} if on_existing is not OnExisting.fail else None
    job_id = _submit_file("create", file, occupier, params, operator_id)
    after_preview(job_id, operator_id, dry_run=dry_run, yes=yes, json_out=json_out)


def _email_lines(source: str) -> list[str]:
    """One email per line, from a file or standard input (``-``); blank lines are skipped by the job."""
    if source == "-":
        data = typer.get_binary_stream("stdin").read()
    else:
        path = Path(source)
        if not path.is_file():
            raise fail(f"there is no file {source}")
        data = path.read_bytes()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise fail(f"{'standard input' if source == '-' else source} is not UTF-8 text") from None


@app.command("deactivate")
def deactivate(
    file: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="A CSV keyed by email: email*, user_id, username, external_id, occupier, remove_from_group.",
            show_default=False,
        ),
    ] = None,
    emails_from: Annotated[
        str | None,
        typer.Option(
            "--emails-from", help="Instead of a CSV: a file with one email per line, or - for standard input."
        ),
    ] = None,
    occupier: Annotated[
        int | None,
        typer.Option(
            "--occupier", min=1, help="Only this occupier's users [default: any of the operator's]."
        ),
    ] = None,
    remove_from_groups: Annotated[
        bool, typer.Option("--remove-from-groups", help="Also take every user out of their access groups.")
    ] = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    operator_id: OperatorOption = None,
    json_out: JsonOption = False,
) -> None:
    """Deactivate users (all access suspended, profile kept) named by a CSV file or a list of emails: every
    row is checked and the failing ones listed, then, once you confirm, the job runs here with a progress bar.

    In a CSV, the email finds the user; any other identifier filled in must match that user, or the row fails
    and nobody is deactivated.

    Exit status: 0 when every row was applied (DONE); 1 when some or all failed, for a dry run with failing
    rows, and for any error.

    Examples:

      occupant users deactivate leavers.csv --dry-run

      grep @initech.example emails.txt | occupant users deactivate --emails-from - --occupier 12 --yes
    """
    from occupant.bulk.schemas import JobCreate
    from occupant.bulk.submission import submit_request
    from occupant.cli.jobs import after_preview, operator_actor
    from occupant.kit.errors import NotFound
    from occupant.web.forms import parse

    if (file is None) == (emails_from is None):
        raise fail("give a CSV FILE or --emails-from FILE|- (one of them)")
    params: dict[str, Any] | None = {"remove_from_groups": True} if remove_from_groups else None
    if file is not None:
        job_id = _submit_file("deactivate", file, occupier, params, operator_id)
    else:
        assert emails_from is not None
        body = parse(
            JobCreate,
            {
                "kind": "deactivate",
                "emails": _email_lines(emails_from),
                "occupier_id": occupier,
                "params": params,
            },
        )
        upgrade_database()
        with session_scope() as session:
            actor = operator_actor(session, operator_id)
            try:
                job_id = submit_request(session, body, actor=actor, requested_by_name=_REQUESTED_BY).id
            except NotFound:
                raise fail(f"there is no occupier {occupier}") from None
    after_preview(job_id, operator_id, dry_run=dry_run, yes=yes, json_out=json_out)
