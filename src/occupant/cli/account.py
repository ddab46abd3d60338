"""``occupant account``: a user's app account (portal and mobile app), acting as the operator itself.

Links and passwords go to the user by email; no command ever prints one. Changes that sign the user out
(deactivate, force a password reset) ask first, or need --yes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from occupant.cli.common import console, fail, print_json, session_scope, upgrade_database
from occupant.cli.staff import JsonOption, OperatorOption, _operator_id

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from occupant.authz.actor import Actor
    from occupant.users.models import OccupierUser

app = typer.Typer(
    help="App accounts of occupier users (the portal and the mobile app): invite, resend the invitation, "
    "deactivate, activate, reset or force-reset the password, send the welcome email, change the role. "
    "Links go to the user by email.",
    no_args_is_help=True,
)

UserArg = Annotated[
    str,
    typer.Argument(
        help="The user's ID (as in the console's and the API's URLs) or email.", show_default=False
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
# The actions' field names, as this command's options.
_OPTIONS = {"invite_portal": "--portal", "invite_mobile_app": "--mobile-app", "role": "ROLE"}
_APP_NAMES = {"portal": "the portal", "mobile_app": "the mobile app"}


def _find_user(session: Session, actor: Actor, wanted: str) -> OccupierUser:
    """The operator's user with this id or email (locked); a clean error when there is none."""
    from sqlalchemy import select

    from occupant.authz import scope
    from occupant.kit.errors import FieldErrors, NotFound
    from occupant.users.models import OccupierUser

    text = wanted.strip()
    if text.isdigit():
        try:
            return scope.get_user(session, actor, int(text), for_update=True)
        except NotFound:
            raise fail(f"there is no user {text}") from None
    if "@" not in text:
        raise fail(f"give a user's ID or email, not {text!r}")
    try:
        from occupant.kit.validation import normalize_email

        _, key = normalize_email(text)
    except FieldErrors:
        raise fail(f"not a valid email address: {text}") from None
    user_id = session.scalar(
        select(OccupierUser.id).where(OccupierUser.email_key == key, scope.user_filter(actor))
    )
    if user_id is None:
        raise fail(f"there is no user with the email {text}")
    return scope.get_user(session, actor, int(user_id), for_update=True)


@contextmanager
def _acting_on(wanted: str, operator_id: int | None) -> Iterator[tuple[Session, Actor, OccupierUser]]:
    """A transaction, the operator as the actor, and the user (locked); errors name the options."""
    from occupant.authz.actor import Actor
    from occupant.kit.errors import FieldErrors

    upgrade_database()
    with session_scope() as session:
        op_id, _ = _operator_id(session, operator_id)
        actor = Actor.system(op_id)
        user = _find_user(session, actor, wanted)
        try:
            yield session, actor, user
        except FieldErrors as exc:
            renamed = [
                {**e, "field": _OPTIONS.get(e.get("field", ""), e.get("field", ""))} for e in exc.errors
            ]
            # One error reads best as "error: --option: message" (the group prints it on one line).
            raise FieldErrors(renamed, exc.message if len(renamed) > 1 else None) from None


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin or not sys.stdin.isatty():
        raise fail("add --yes to do this without a prompt")
    typer.confirm(question, abort=True)


def _record(session: Session, user: OccupierUser) -> dict[str, Any]:
    from occupant.accounts import service
    from occupant.accounts.schemas import AccountOut

    return {
        **AccountOut.of(user, service.account_of(session, user)).model_dump(mode="json"),
        "email": user.email,
        "name": user.full_name,
    }


def _when(value: str | None) -> str:
    return (value or "never").replace("T", " ")[:16]


def _show(record: dict[str, Any], json_out: bool, done: str | None = None) -> None:
    if json_out:
        print_json(record)
        return
    if done:
        console.print(done, markup=False)
    console.print(f"User {record['user_id']}: {record['name']} <{record['email']}>", markup=False)
    offered = {"portal": record["portal_offered"], "mobile_app": record["mobile_app_offered"]}
    lines = [
        (
            "Status",
            record["status"] + (" (must choose a new password)" if record["must_change_password"] else ""),
        ),
        ("Role", record["role"] or "none"),
        *(
            (label, record[app] + ("" if offered[app] else " (not offered by the occupier)"))
            for app, label in (("portal", "Portal"), ("mobile_app", "Mobile app"))
        ),
        ("Invited", _when(record["invited_at"])),
        ("Last sign-in", _when(record["last_sign_in_at"])),
    ]
    for label, value in lines:
        console.print(f"{label + ':':<15}{value}", markup=False)


def _act(
    wanted: str,
    operator_id: int | None,
    json_out: bool,
    action: Callable[[Session, Actor, OccupierUser], str],
) -> None:
    with _acting_on(wanted, operator_id) as (session, actor, user):
        done = action(session, actor, user)
        record = _record(session, user)
    _show(record, json_out, done)


@app.command("show")
def show(user: UserArg, operator_id: OperatorOption = None, json_out: JsonOption = False) -> None:
    """Show a user's app account: status, role, and whether they were invited to / signed in to each app."""
    _act(user, operator_id, json_out, lambda session, actor, u: "")


@app.command("invite")
def invite(
    user: UserArg,
    portal: Annotated[bool, typer.Option("--portal", help="Invite to the portal.")] = False,
    mobile_app: Annotated[bool, typer.Option("--mobile-app", help="Invite to the mobile app.")] = False,
    role: Annotated[
        str | None, typer.Option("--role", help="admin or user [default: unchanged; user for a new account].")
    ] = None,
    operator_id: OperatorOption = None,
    json_out: JsonOption = False,
) -> None:
    """Invite to the portal and/or the mobile app (without either option: every app the occupier offers).

    The first invitation emails a link to choose a password; an invitation to the other app only a notice.

    Example: occupant account invite ada@globex.example --portal --role admin
    """
    from occupant.accounts import service
    from occupant.accounts.models import AccountRole

    wanted_role = _role(role) if role is not None else None

    def action(session: Session, actor: Actor, u: OccupierUser) -> str:
        occupier = u.occupier
        ask_portal, ask_app = portal, mobile_app
        if not portal and not mobile_app:
            ask_portal, ask_app = occupier.portal_offered, occupier.mobile_app_offered
            if not (ask_portal or ask_app):
                raise fail(f"{occupier.name} offers neither the portal nor the mobile app")
        account = service.account_of(session, u)
        before = {app: getattr(account, app) if account else "NOT_INVITED" for app in _APP_NAMES}
        current = account.role if account is not None else AccountRole.USER
        service.set_up_account(
            session,
            u,
            role=wanted_role or current,
            invite_portal=ask_portal,
            invite_mobile_app=ask_app,
            actor=actor,
        )
        after = service.account_of(session, u)
        assert after is not None
        new = [name for app, name in _APP_NAMES.items() if before[app] != getattr(after, app)]
        if not new:
            return f"User {u.id} was already invited; nothing was sent."
        return f"Invited user {u.id} to {' and '.join(new)}; the email is on its way."

    _act(user, operator_id, json_out, action)


def _role(value: str) -> Any:
    from occupant.accounts.models import AccountRole

    try:
        return AccountRole(value.strip().lower())
    except ValueError:
        raise fail(f"the role must be admin or user, not {value!r}") from None


@app.command("resend")
def resend(user: UserArg, operator_id: OperatorOption = None, json_out: JsonOption = False) -> None:
    """Email the invitation again with a new link (the old link stops working). Only before the first
    sign-in."""
    from occupant.accounts import service

    def action(session: Session, actor: Actor, u: OccupierUser) -> str:
        service.resend_invitation(session, u, actor=actor)
        return f"A new invitation link is on its way to user {u.id}."

    _act(user, operator_id, json_out, action)


@app.command("deactivate")
def deactivate(
    user: UserArg, operator_id: OperatorOption = None, yes: YesOption = False, json_out: JsonOption = False
) -> None:
    """Deactivate the app account: sign-in refused, the user's sessions end at once."""
    from occupant.accounts import service

    def action(session: Session, actor: Actor, u: OccupierUser) -> str:
        _confirm(f"Deactivate the app account of user {u.id} ({u.email})? They are signed out at once.", yes)
        service.deactivate_account(session, u, actor=actor)
        return f"Deactivated the app account of user {u.id}."

    _act(user, operator_id, json_out, action)


@app.command("activate")
def activate(user: UserArg, operator_id: OperatorOption = None, json_out: JsonOption = False) -> None:
    """Activate a deactivated app account again (awaiting sign-in if no password was ever chosen)."""
    from occupant.accounts import service

    def action(session: Session, actor: Actor, u: OccupierUser) -> str:
        service.activate_account(session, u, actor=actor)
        return f"Activated the app account of user {u.id}."

    _act(user, operator_id, json_out, action)


@app.command("reset")
def reset(user: UserArg, operator_id: OperatorOption = None, json_out: JsonOption = False) -> None:
    """Email a password-reset link (the current password works until a new one is chosen). A user who has
    not used their invitation yet gets it again, with a new link."""
    from occupant.accounts import service
    from occupant.accounts.models import AccountStatus

    def action(session: Session, actor: Actor, u: OccupierUser) -> str:
        account = service.send_password_reset(session, u, actor=actor)
        if account.status == AccountStatus.AWAITING_SIGN_IN:
            return f"User {u.id} has not chosen a password yet: a new invitation link is on its way."
        return f"A password-reset link is on its way to user {u.id}."

    _act(user, operator_id, json_out, action)


@app.command("force-reset")
def force_reset(
    user: UserArg, operator_id: OperatorOption = None, yes: YesOption = False, json_out: JsonOption = False
) -> None:
    """Force a password reset: the user is signed out everywhere and must choose a new password when they
    next sign in."""
    from occupant.accounts import service

    def action(session: Session, actor: Actor, u: OccupierUser) -> str:
        _confirm(f"Force user {u.id} ({u.email}) to choose a new password? They are signed out at once.", yes)
        service.force_password_reset(session, u, actor=actor)
        return f"User {u.id} must choose a new password at the next sign-in."

    _act(user, operator_id, json_out, action)


@app.command("welcome")
def welcome(user: UserArg, operator_id: OperatorOption = None, json_out: JsonOption = False) -> None:
    """Email the welcome message, with the portal's address."""
    from occupant.accounts import service

    def action(session: Session, actor: Actor, u: OccupierUser) -> str:
        service.send_welcome(session, u, actor=actor)
        return f"The welcome email is on its way to user {u.id}."

    _act(user, operator_id, json_out, action)


@app.command("role")
def role(
    user: UserArg,
    new_role: Annotated[
        str, typer.Argument(metavar="ROLE", help="admin (manages the occupier's users) or user.")
    ],
    operator_id: OperatorOption = None,
    json_out: JsonOption = False,
) -> None:
    """Change the role: admin manages the occupier's users in the portal, user sees their own details.

    Example: occupant account role 42 admin
    """
    from occupant.accounts import service

    wanted = _role(new_role)

    def action(session: Session, actor: Actor, u: OccupierUser) -> str:
        service.change_role(session, u, wanted, actor=actor)
        return f"User {u.id} is now {'an admin' if wanted.value == 'admin' else 'a user'}."

    _act(user, operator_id, json_out, action)
