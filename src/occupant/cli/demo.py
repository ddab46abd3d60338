"""``occupant demo``: load a realistic demo operator."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from occupant.cli.common import console, err_console, print_json, upgrade_database


def demo(
    occupiers: Annotated[int, typer.Option(min=1, max=1000, help="Occupiers to create.")] = 30,
    users_per_occupier: Annotated[
        int, typer.Option(min=0, max=100_000, help="Users of each occupier.")
    ] = 150,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 42,
    operator_id: Annotated[
        int | None,
        typer.Option("--operator-id", help="Load into this operator [default: the first, or a new one]."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Add more occupiers and users even when demo data is already loaded."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a summary as JSON.")] = False,
) -> None:
    """Load a realistic demo: five sites, tens of occupiers, thousands of users.

    Sites LON01, PAR01, BER01, MAD01 and AMS01 (GB, FR, DE, ES, NL) with access points and door-access
    groups; occupiers with access to all five, some with their own groups; users with names, emails,
    mobiles and languages of their country.

    Everything goes through the same actions as the console and the API. On an empty database it
    creates the operator; the first admin (from the setup link or `occupant admin create`) joins it.
    Does nothing if the demo is already loaded, unless --force.
    """
    from occupant.demo import DemoAlreadyLoaded, load_demo
    from occupant.kit.runtime import get_session_factory

    upgrade_database()
    progress = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )
    task: list[TaskID] = []

    def on_start(total: int) -> None:
        task.append(progress.add_task("Loading users", total=total))

    def on_occupier(name: str, users: int) -> None:
        progress.update(task[0], advance=users, description=f"Loaded {name}")

    try:
        with progress:
            result = load_demo(
                get_session_factory(),
                occupiers_count=occupiers,
                users_per_occupier=users_per_occupier,
                seed=seed,
                operator_id=operator_id,
                force=force,
                on_start=on_start,
                on_occupier=on_occupier,
            )
    except DemoAlreadyLoaded as exc:
        if json_out:
            print_json({"status": "already_loaded", "message": exc.message})
        else:
            console.print(f"Nothing to do: {exc.message}", markup=False)
        return
    summary = result.as_dict()
    if json_out:
        print_json({"status": "loaded", **summary})
        return
    console.print(
        f'Loaded the demo into operator {result.operator_id} "{result.operator_name}" '
        f"in {result.seconds:.1f} s:",
        markup=False,
    )
    console.print(f"  sites      {', '.join(result.sites)}", markup=False)
    console.print(f"  occupiers  {result.occupiers}, each with access to all five sites", markup=False)
    console.print(f"  users      {result.users} ({result.deactivated} deactivated)", markup=False)
    console.print(f"  groups     {result.groups} created", markup=False)
    console.print("Next: `occupant serve`, then open the address it prints.", markup=False)
