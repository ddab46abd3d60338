"""The ``occupant`` command: run the server and workers, manage the database, staff, API keys and demo data.

Every command runs without prompts when given its options, so scripts can use it. The data folder
comes from --data-dir or OCCUPANT_DATA_DIR, the database from OCCUPANT_DATABASE_URL (SQLite in the
data folder when unset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from occupant import __version__
from occupant.cli import account, db, demo, jobs, radius, server, staff, users, wifi
from occupant.cli.common import OccupantGroup, configure

app = typer.Typer(
    name="occupant",
    cls=OccupantGroup,
    help=(
        "Occupant: occupier users and their services, for operators of flexible workspace.\n\n"
        "Start with **occupant serve**; it prints the address to open in a browser."
    ),
    epilog=(
        "Configuration comes from OCCUPANT_* environment variables: OCCUPANT_DATABASE_URL, "
        "OCCUPANT_REDIS_URL, OCCUPANT_SMTP_URL, OCCUPANT_SECRET_KEY, OCCUPANT_DATA_DIR. "
        "See README.md."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,  # locals may hold passwords and keys
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"occupant {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="OCCUPANT_DATA_DIR",
            show_envvar=True,
            file_okay=False,
            help="Folder for the SQLite database and queue, mail and the secret key [default: ./data].",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Occupant's command line."""
    configure(data_dir)


app.command(rich_help_panel="Run")(server.serve)
app.command(rich_help_panel="Run")(server.worker)
app.add_typer(db.app, name="db", rich_help_panel="Set up")
app.add_typer(staff.admin_app, name="admin", rich_help_panel="Set up")
app.add_typer(staff.apikey_app, name="apikey", rich_help_panel="Set up")
app.command(rich_help_panel="Set up")(demo.demo)
app.add_typer(users.app, name="users", rich_help_panel="Users")
app.add_typer(jobs.app, name="jobs", rich_help_panel="Users")
app.add_typer(wifi.app, name="wifi", rich_help_panel="Wi-Fi")
app.add_typer(radius.app, name="radius", rich_help_panel="Wi-Fi")
app.add_typer(account.app, name="account", rich_help_panel="App accounts")


if __name__ == "__main__":  # pragma: no cover
    app(prog_name="occupant")
