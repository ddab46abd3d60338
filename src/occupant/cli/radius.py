"""``occupant radius``: the FreeRADIUS server that enforces Wi-Fi Secure accounts."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer

from occupant.cli.common import (
    console,
    database_label,
    fail,
    print_json,
    session_scope,
    upgrade_database,
)

app = typer.Typer(
    help="FreeRADIUS for Wi-Fi Secure: render its configuration, or rebuild its rows in the database.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@app.command("config")
def config(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", file_okay=False, help="Directory to write (FreeRADIUS's -d DIR)."),
    ],
    listen: Annotated[
        str, typer.Option(help="IPv4 address to listen on (0.0.0.0: every one).")
    ] = "127.0.0.1",
    auth_port: Annotated[int, typer.Option(help="UDP port for authentication.")] = 1812,
    acct_port: Annotated[int, typer.Option(help="UDP port for accounting.")] = 1813,
    secret: Annotated[
        str | None,
        typer.Option(
            envvar="OCCUPANT_RADIUS_SECRET",
            show_envvar=True,
            help="Shared secret of the RADIUS clients, 16 characters or more [default: generated, printed].",
        ),
    ] = None,
    client: Annotated[
        list[str] | None,
        typer.Option(
            "--client",
            help="An access point, controller or network allowed to ask: ADDRESS[/BITS][=SECRET]. "
            "Repeat for several [default: 127.0.0.1].",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="The database FreeRADIUS reads [default: OCCUPANT_DATABASE_URL, as for every command]."
        ),
    ] = None,
    require_message_authenticator: Annotated[
        bool,
        typer.Option(
            help="Refuse Access-Requests without a Message-Authenticator (protects PAP from forged "
            "answers, CVE-2024-3596); turn it off only for access points that cannot send one."
        ),
    ] = True,
    run_as: Annotated[
        str | None,
        typer.Option(help="USER[:GROUP] the server switches to when started as root, e.g. freerad:freerad."),
    ] = None,
    log_dir: Annotated[Path | None, typer.Option(help="Log directory [default: OUT/log].")] = None,
    run_dir: Annotated[
        Path | None, typer.Option(help="Directory for the PID file [default: OUT/run].")
    ] = None,
    reject_delay: Annotated[
        int, typer.Option(help="Seconds before each Access-Reject, to slow password guessing (0-5).")
    ] = 1,
    interim_interval: Annotated[
        int,
        typer.Option(
            help="Acct-Interim-Interval asked of the access points, in seconds (0: none). A session silent "
            "for three intervals no longer counts against the device limit."
        ),
    ] = 600,
    db_connections: Annotated[
        int, typer.Option(help="Most database connections this server opens (a quarter kept spare).")
    ] = 32,
    json_out: JsonOption = False,
) -> None:
    """Write a complete FreeRADIUS 3 configuration that checks Wi-Fi Secure accounts in Occupant's database.

    Then run it with `freeradius -f -d OUT` (or see README.md, "FreeRADIUS", for a service). Render
    again after changing options; the EAP certificate in OUT/certs is kept.

    Examples:

      occupant radius config --out /etc/occupant-radius --client 10.20.0.0/16 --run-as freerad:freerad

      occupant radius config --out ./radius --auth-port 18120 --acct-port 18130 --secret "$SECRET"
    """
    from occupant.kit.settings import get_settings
    from occupant.radius.config import RadiusClient, RadiusConfigError, RadiusOptions, render

    generated = secret is None
    shared = secret or secrets.token_urlsafe(24)
    clients = []
    for item in client or ["127.0.0.1"]:
        address, _, own_secret = item.partition("=")
        clients.append(
            RadiusClient(
                address=address.strip(),
                secret=own_secret or shared,
                require_message_authenticator=require_message_authenticator,
            )
        )
    options = RadiusOptions(
        database_url=database_url or get_settings().resolved_database_url,
        listen=listen,
        auth_port=auth_port,
        acct_port=acct_port,
        clients=clients,
        log_dir=log_dir,
        run_dir=run_dir,
        run_as=run_as,
        reject_delay=reject_delay,
        interim_interval=interim_interval,
        db_connections=db_connections,
    )
    try:
        rendered = render(out, options)
    except RadiusConfigError as exc:
        raise fail(str(exc)) from None
    shown_secret = shared if generated and any(c.secret == shared for c in clients) else None
    if json_out:
        print_json(
            {
                "directory": str(rendered.directory),
                "dialect": rendered.dialect,
                "database": rendered.database,
                "listen": f"{listen}:{auth_port}/{acct_port}",
                "clients": [c.address for c in clients],
                "generated_secret": shown_secret,
                "generated_certificate": rendered.generated_certificate,
            }
        )
        return
    console.print(
        f"Wrote FreeRADIUS's configuration to {rendered.directory} "
        f"({rendered.dialect}: {rendered.database}).",
        markup=False,
    )
    console.print(f"It listens on {listen} (auth {auth_port}, accounting {acct_port}).", markup=False)
    if shown_secret:
        console.print(f"Generated client secret (give it to the access points): {shown_secret}", markup=False)
    if rendered.generated_certificate:
        console.print(
            "Made a throwaway EAP certificate in certs/: replace it with one your users' devices trust.",
            markup=False,
        )
    console.print(f"Start it with: freeradius -f -d {rendered.directory}", markup=False)


@app.command("sync")
def sync(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what differs without changing anything.")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Rebuild FreeRADIUS's rows (accounts, site groups) from Occupant's state: a repair tool.

    Occupant's actions keep them in step as they go; run this after restoring a database or when
    RADIUS answers differ from what the console shows. Sessions and sign-in history are kept.
    """
    from occupant.radius.repair import rebuild

    upgrade_database()
    with session_scope() as session:
        report = rebuild(session)
        if dry_run:
            session.rollback()
    result = {
        "database": database_label(),
        "dry_run": dry_run,
        "sites": report.sites,
        "live_accounts": report.live_accounts,
        "refused_accounts": report.refused_accounts,
        "rows_differing": report.rows_differing,
        "rows": report.rows_after,
    }
    if json_out:
        print_json(result)
        return
    verb = "Would rewrite" if dry_run else "Rewrote"
    console.print(
        f"{verb} RADIUS rows for {report.sites} sites and {report.live_accounts} usable Wi-Fi accounts "
        f"({report.refused_accounts} deactivated) in {result['database']}.",
        markup=False,
    )
    if report.rows_differing:
        fixed = "would be fixed" if dry_run else "fixed"
        console.print(f"{report.rows_differing} rows were missing, wrong or extra: {fixed}.", markup=False)
    else:
        console.print("Everything was already in step.", markup=False)
