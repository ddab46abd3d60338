"""``occupant admin`` (operator admins) and ``occupant apikey`` (REST API keys)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from occupant.cli.common import (
    console,
    fail,
    print_json,
    read_secret_line,
    session_scope,
    stdin_has_data,
    upgrade_database,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

admin_app = typer.Typer(help="Operator admins: the staff who run the console.", no_args_is_help=True)
apikey_app = typer.Typer(
    help="API keys for the REST API (/api/v1), scoped to the operator.", no_args_is_help=True
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
OperatorOption = Annotated[
    int | None,
    typer.Option("--operator-id", help="The operator [default: the first one, made by `admin create`]."),
]


@admin_app.command("create")
def admin_create(
    email: Annotated[str, typer.Option("--email", "-e", help="The admin's email; they sign in with it.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Display name [default: the email].")] = "",
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from the first line of standard input (also done when input is piped). "
            "Without one, a password is generated and printed once.",
        ),
    ] = False,
    operator_name: Annotated[
        str, typer.Option(help="Name of the operator, when this first admin creates it.")
    ] = "My workspace",
    json_out: JsonOption = False,
) -> None:
    """Create an operator admin. On an empty database this creates the operator too.

    Examples:

      occupant admin create --email ada@example.com

      printf '%s\\n' "$PASSWORD" | occupant admin create --email ada@example.com --password-stdin
    """
    from occupant.operators.models import Operator
    from occupant.staff.service import create_first_admin
    from occupant.staff.setup import discard_setup_token

    password: str | None = None
    if password_stdin:
        password = read_secret_line()
        if not password:
            raise fail("--password-stdin was given but standard input held no password")
    elif stdin_has_data():
        password = read_secret_line() or None

    upgrade_database()
    with session_scope() as session:
        staff, generated = create_first_admin(
            session, email=email, name=name, password=password, operator_name=operator_name
        )
        operator = session.get(Operator, staff.operator_id)
        record = {
            "id": staff.id,
            "email": staff.email,
            "name": staff.name,
            "role": str(staff.role),
            "operator_id": staff.operator_id,
            "operator_name": operator.name if operator else None,
        }
    discard_setup_token()  # the first-run link is no longer needed

    if json_out:
        print_json({**record, "password": generated})
        return
    console.print(
        f"Created operator admin {record['email']} ({record['name']}) of operator "
        f'{record["operator_id"]} "{record["operator_name"]}".',
        markup=False,
    )
    if generated:
        console.print(
            "Their generated password, shown only now (they can change it after signing in):", markup=False
        )
        typer.echo(generated)


def _operator_id(session: Session, operator_id: int | None) -> tuple[int, str]:
    from sqlalchemy import select

    from occupant.operators.models import Operator

    if operator_id is not None:
        operator = session.get(Operator, operator_id)
        if operator is None:
            raise fail(f"there is no operator {operator_id}")
    else:
        operator = session.scalars(select(Operator).order_by(Operator.id)).first()
        if operator is None:
            raise fail(
                "there is no operator yet: create the first admin with "
                "`occupant admin create --email you@example.com`"
            )
    return operator.id, operator.name


def _key_record(key: object) -> dict[str, object]:
    from occupant.staff.models import ApiKey

    assert isinstance(key, ApiKey)
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "role": str(key.role),
        "operator_id": key.operator_id,
        "occupier_id": key.occupier_id,
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
    }


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option("--name", "-n", help='What the key is for, e.g. "HR sync".')],
    operator_id: OperatorOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create an operator API key. The key is printed once, alone on the last line; only its hash is kept.

    Example: KEY=$(occupant apikey create --name "HR sync" | tail -n 1)
    """
    from occupant.authz.actor import Actor
    from occupant.staff.service import create_api_key

    upgrade_database()
    with session_scope() as session:
        op_id, op_name = _operator_id(session, operator_id)
        key, token = create_api_key(session, actor=Actor.system(op_id), name=name)
        record = _key_record(key)
    if json_out:
        print_json({**record, "key": token})
        return
    console.print(
        f'Created API key {record["id"]} "{record["name"]}" (prefix {record["prefix"]}) '
        f'for operator {op_id} "{op_name}".',
        markup=False,
    )
    console.print("Send it as `Authorization: Bearer <key>`. It is shown only now:", markup=False)
    typer.echo(token)


@apikey_app.command("list")
def apikey_list(
    operator_id: OperatorOption = None,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    json_out: JsonOption = False,
) -> None:
    """List the operator's API keys (names and prefixes; the keys themselves are never stored)."""
    from sqlalchemy import select

    from occupant.staff.models import ApiKey

    upgrade_database()
    with session_scope() as session:
        op_id, op_name = _operator_id(session, operator_id)
        stmt = select(ApiKey).where(ApiKey.operator_id == op_id).order_by(ApiKey.id)
        if not include_revoked:
            stmt = stmt.where(ApiKey.revoked_at.is_(None))
        records = [_key_record(k) for k in session.scalars(stmt)]
    if json_out:
        print_json(records)
        return
    if not records:
        console.print(
            f'Operator {op_id} "{op_name}" has no API keys{"" if include_revoked else " in use"}.',
            markup=False,
        )
        return
    table = Table(title=f"API keys of {op_name}", title_justify="left")
    for column in ("ID", "Name", "Prefix", "Created", "Last used", "Status"):
        table.add_column(column, no_wrap=column != "Name")

    def when(value: object) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else "—"  # type: ignore[attr-defined]

    for r in records:
        table.add_row(
            str(r["id"]),
            str(r["name"]),
            str(r["prefix"]),
            when(r["created_at"]),
            when(r["last_used_at"]),
            f"revoked {when(r['revoked_at'])}" if r["revoked_at"] else "active",
        )
    console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's ID (see `occupant apikey list`).")],
    operator_id: OperatorOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Revoke an API key: requests that use it are refused from now on."""
    from occupant.authz.actor import Actor
    from occupant.kit.errors import NotFound
    from occupant.staff.models import ApiKey
    from occupant.staff.service import revoke_api_key

    upgrade_database()
    with session_scope() as session:
        op_id, _ = _operator_id(session, operator_id)
        key = session.get(ApiKey, key_id)
        if key is None or key.operator_id != op_id:
            raise fail(f"there is no API key {key_id}")
        already = key.revoked_at is not None
        if not already and not yes:
            if not sys.stdin or not sys.stdin.isatty():
                raise fail("add --yes to revoke without a prompt")
            typer.confirm(f'Revoke API key {key.id} "{key.name}" ({key.prefix}…)?', abort=True)
        try:
            key = revoke_api_key(session, key_id, actor=Actor.system(op_id))
        except NotFound:  # pragma: no cover - checked above
            raise fail(f"there is no API key {key_id}") from None
        record = _key_record(key)
    if json_out:
        print_json({**record, "already_revoked": already})
    elif already:
        console.print(f'API key {key_id} "{record["name"]}" was already revoked.', markup=False)
    else:
        console.print(f'Revoked API key {key_id} "{record["name"]}".', markup=False)
