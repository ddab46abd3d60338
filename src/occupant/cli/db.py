"""``occupant db``: the database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from occupant.cli.common import (
    console,
    current_revision,
    database_label,
    fail,
    head_revision,
    print_json,
    upgrade_database,
)

app = typer.Typer(help="The database schema: upgrade it, or see where it stands.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _state(revision: str | None) -> dict[str, object]:
    head = head_revision()
    return {"database": database_label(), "revision": revision, "head": head, "up_to_date": revision == head}


@app.command()
def upgrade(json_out: JsonOption = False) -> None:
    """Bring the schema up to the newest migration (safe to run again; `occupant serve` does it too)."""
    before = current_revision()
    state = _state(upgrade_database())
    if json_out:
        print_json({**state, "previous": before})
        return
    if before == state["revision"]:
        console.print(
            f"Database {state['database']} was already up to date (revision {before}).", markup=False
        )
    else:
        console.print(
            f"Upgraded {state['database']} from {before or 'empty'} to revision {state['revision']}.",
            markup=False,
        )


@app.command()
def current(
    json_out: JsonOption = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit with 1 unless the schema is up to date.")
    ] = False,
) -> None:
    """Show the schema's revision, and whether it is the newest."""
    state = _state(current_revision())
    if json_out:
        print_json(state)
    elif state["revision"] is None:
        console.print(
            f"Database {state['database']} has no schema yet: run `occupant db upgrade`.", markup=False
        )
    elif state["up_to_date"]:
        console.print(
            f"Database {state['database']} is at revision {state['revision']} (newest).", markup=False
        )
    else:
        console.print(
            f"Database {state['database']} is at revision {state['revision']}; the newest is "
            f"{state['head']}: run `occupant db upgrade`.",
            markup=False,
        )
    if check and not state["up_to_date"]:
        raise fail("the schema is not up to date") if not json_out else typer.Exit(1)
