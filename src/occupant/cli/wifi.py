"""``occupant wifi``: a user's Wi-Fi Secure account and connected devices, acting as the operator itself.

Passwords are emailed to the user; no command ever prints one. Changes that cut devices off (deactivate,
reset password, a new homesite, clearing a session) ask first, or need --yes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from occupant.cli.common import console, fail, print_json, session_scope, upgrade_database
from occupant.cli.staff import JsonOption, OperatorOption, _operator_id

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from occupant.authz.actor import Actor
    from occupant.users.models import OccupierUser

app = typer.Typer(
    help="Wi-Fi Secure accounts of occupier users: create, deactivate, activate, reset the password, "
    "change homesite or device limit, see and clear connected devices. Passwords go to the user by email.",
    no_args_is_help=True,
)

UserArg = Annotated[
    int, typer.Argument(help="The user's ID (as in the console's and the API's URLs).", min=1)
]
HomesiteOption = Annotated[
    str | None,
    typer.Option("--homesite", help="The homesite's site code, e.g. LON01 (one of the occupier's)."),
]
LimitOption = Annotated[
    int | None,
    typer.Option("--device-limit", help="Devices connected at once, 1 to the operator's maximum."),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
# The actions' field names, as this command's options.
_OPTIONS = {"homesite_id": "--homesite", "device_limit": "--device-limit"}


@contextmanager
def _acting_on(user_id: int, operator_id: int | None) -> Iterator[tuple[Session, Actor, OccupierUser]]:
    """A transaction, the operator as the actor, and the user (locked); errors name the options."""
    from occupant.authz import scope
    from occupant.authz.actor import Actor
    from occupant.kit.errors import FieldErrors, NotFound

    upgrade_database()
    with session_scope() as session:
        op_id, _ = _operator_id(session, operator_id)
        actor = Actor.system(op_id)
        try:
            user = scope.get_user(session, actor, user_id, for_update=True)
        except NotFound:
            raise fail(f"there is no user {user_id}") from None
        try:
            yield session, actor, user
        except FieldErrors as exc:
            renamed = [
                {**e, "field": _OPTIONS.get(e.get("field", ""), e.get("field", ""))} for e in exc.errors
            ]
            raise FieldErrors(renamed, exc.message) from None


def _site_id(session: Session, operator_id: int, code: str) -> int:
    from sqlalchemy import select

    from occupant.sites.models import Site

    site_id = session.scalar(
        select(Site.id).where(Site.operator_id == operator_id, Site.code == code.upper())
    )
    if site_id is None:
        raise fail(f"there is no site {code.upper()}")
    return int(site_id)


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin or not sys.stdin.isatty():
        raise fail("add --yes to do this without a prompt")
    typer.confirm(question, abort=True)


def _record(session: Session, user: OccupierUser) -> dict[str, Any]:
    from occupant.wifi import queries, service
    from occupant.wifi.schemas import WifiOut

    account = service.account_of(session, user)
    return WifiOut.of(user, account, queries.homesite(session, account)).model_dump(mode="json")


def _show(record: dict[str, Any], json_out: bool, done: str | None = None) -> None:
    if json_out:
        print_json(record)
        return
    if done:
        console.print(done, markup=False)
    wifi = record["wifi"]
    if wifi is None:
        console.print(f"User {record['user_id']} has no Wi-Fi account.", markup=False)
        return
    site = wifi["homesite"] or {"code": wifi["homesite_id"], "name": ""}
    lines = [
        ("Status", wifi["status"] + (" (changes wait until it has finished)" if record["busy"] else "")),
        ("Homesite", f"{site['code']} {site['name']}".strip()),
        ("Device limit", str(wifi["device_limit"])),
        ("Username", wifi["username"]),
        ("Password sent", (wifi["password_changed_at"] or "never").replace("T", " ")[:16]),
    ]
    for label, value in lines:
        console.print(f"{label + ':':<15}{value}", markup=False)


def _act(
    user_id: int,
    operator_id: int | None,
    json_out: bool,
    action: Callable[[Session, Actor, OccupierUser], str],
) -> None:
    with _acting_on(user_id, operator_id) as (session, actor, user):
        done = action(session, actor, user)
        record = _record(session, user)
    _show(record, json_out, done)


@app.command("show")
def show(user_id: UserArg, operator_id: OperatorOption = None, json_out: JsonOption = False) -> None:
    """Show a user's Wi-Fi account: status, homesite, device limit."""
    _act(user_id, operator_id, json_out, lambda session, actor, user: "")


@app.command("create")
def create(
    user_id: UserArg,
    homesite: Annotated[str, typer.Option("--homesite", help="The homesite's site code, e.g. LON01.")],
    device_limit: LimitOption = None,
    operator_id: OperatorOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a Wi-Fi account: the user is emailed a password; PROVISIONING until the network has it.

    Example: occupant wifi create 42 --homesite LON01 --device-limit 3
    """
    from occupant.wifi import service

    def action(session: Session, actor: Actor, user: OccupierUser) -> str:
        site_id = _site_id(session, actor.operator_id, homesite)
        service.create_wifi_account(
            session, user, homesite_id=site_id, device_limit=device_limit, actor=actor
        )
        return f"Created the Wi-Fi account of user {user.id}; the password is being emailed to them."

    _act(user_id, operator_id, json_out, action)


@app.command("deactivate")
def deactivate(
    user_id: UserArg, operator_id: OperatorOption = None, yes: YesOption = False, json_out: JsonOption = False
) -> None:
    """Deactivate a user's Wi-Fi: the network refuses them from the next attempt."""
    from occupant.wifi import service

    def action(session: Session, actor: Actor, user: OccupierUser) -> str:
        _confirm(f"Deactivate the Wi-Fi of user {user.id} ({user.email})?", yes)
        service.deactivate_wifi(session, user, actor=actor)
        return f"Deactivated the Wi-Fi of user {user.id}."

    _act(user_id, operator_id, json_out, action)


@app.command("activate")
def activate(user_id: UserArg, operator_id: OperatorOption = None, json_out: JsonOption = False) -> None:
    """Activate a deactivated Wi-Fi account again, with a new password by email."""
    from occupant.wifi import service

    def action(session: Session, actor: Actor, user: OccupierUser) -> str:
        service.activate_wifi(session, user, actor=actor)
        return f"Activated the Wi-Fi of user {user.id}; a new password is being emailed to them."

    _act(user_id, operator_id, json_out, action)


@app.command("reset-password")
def reset_password(
    user_id: UserArg, operator_id: OperatorOption = None, yes: YesOption = False, json_out: JsonOption = False
) -> None:
    """Email the user a new Wi-Fi password; the old one stops working at once."""
    from occupant.wifi import service

    def action(session: Session, actor: Actor, user: OccupierUser) -> str:
        _confirm(
            f"Reset the Wi-Fi password of user {user.id} ({user.email})? Their devices sign in again.", yes
        )
        service.reset_wifi_password(session, user, actor=actor)
        return f"A new Wi-Fi password is being emailed to user {user.id}."

    _act(user_id, operator_id, json_out, action)


@app.command("set")
def set_(
    user_id: UserArg,
    homesite: HomesiteOption = None,
    device_limit: LimitOption = None,
    operator_id: OperatorOption = None,
    yes: YesOption = False,
    json_out: JsonOption = False,
) -> None:
    """Change the homesite (a new password by email) and/or the device limit.

    Example: occupant wifi set 42 --homesite PAR01 --device-limit 2 --yes
    """
    from occupant.wifi import service

    if homesite is None and device_limit is None:
        raise fail("nothing to change: give --homesite and/or --device-limit")

    def action(session: Session, actor: Actor, user: OccupierUser) -> str:
        site_id = None
        if homesite is not None:
            site_id = _site_id(session, actor.operator_id, homesite)
            account = service.account_of(session, user)
            if account is not None and account.homesite_id != site_id:
                _confirm(f"Move user {user.id} to homesite {homesite.upper()}? A new password goes out.", yes)
        service.update_wifi_account(
            session, user, homesite_id=site_id, device_limit=device_limit, actor=actor
        )
        return f"Saved the Wi-Fi settings of user {user.id}."

    _act(user_id, operator_id, json_out, action)


@app.command("sessions")
def sessions(user_id: UserArg, operator_id: OperatorOption = None, json_out: JsonOption = False) -> None:
    """List a user's connected devices (open accounting sessions), newest first."""
    from occupant.wifi import queries
    from occupant.wifi.schemas import WifiSessionOut

    with _acting_on(user_id, operator_id) as (session, _actor, user):
        items = [
            WifiSessionOut.of(d).model_dump(mode="json") for d in queries.connected_devices(session, user)
        ]
    if json_out:
        print_json(items)
        return
    if not items:
        console.print(f"User {user_id} has no device connected.", markup=False)
        return
    table = Table(title=f"Devices of user {user_id} connected now", title_justify="left")
    for column in ("Session", "MAC address", "Site", "Since"):
        table.add_column(column, no_wrap=True)
    for item in items:
        site = item["site"]
        place = f"{site['code']} {site['name']}" if site else f"NAS {item['nas_ip_address']}"
        since = (item["started_at"] or "—").replace("T", " ")[:16]
        table.add_row(str(item["id"]), item["mac_address"] or "—", place, since)
    console.print(table)


@app.command("clear-session")
def clear_session(
    user_id: UserArg,
    session_id: Annotated[
        int, typer.Argument(help="The session's ID (see `occupant wifi sessions`).", min=1)
    ],
    operator_id: OperatorOption = None,
    yes: YesOption = False,
) -> None:
    """Close a stale session (a device gone without the network noticing), freeing a place under the limit."""
    from occupant.wifi import service

    with _acting_on(user_id, operator_id) as (session, actor, user):
        _confirm(f"Clear session {session_id} of user {user.id}?", yes)
        service.clear_session(session, user, session_id, actor=actor)
    console.print(f"Cleared session {session_id} of user {user_id}.", markup=False)
