"""``occupant wifi``, run as a script would: options only, output parsed, exit codes and messages checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from occupant.occupiers import service as occupiers
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.radius.models import RadAcct
from occupant.wifi import service
from occupant.wifi.models import WifiAccount
from tests.cli.conftest import Cli
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_user
from tests.wifi.support import mailed_password, open_session, password_mails

pytestmark = pytest.mark.usefixtures("fresh_cli_settings")


@dataclass
class Ids:
    user: int
    other_user: int
    foreign_user: int
    occupier: int


def seed(cli: Cli) -> Ids:
    """The operator (the first one, whom the commands act for) with LON01 and PAR01, a user of an occupier
    at both, one at LON01 only, and another operator's user."""
    assert cli("db", "upgrade").exit_code == 0
    with cli.session() as s:
        operator = make_operator(s, name="Acme Workspace")
        london = make_site(s, operator, code="LON01", name="London Bridge", nas=["ap-lon-1"])
        paris = make_site(s, operator, code="PAR01", name="Paris Opera")
        globex = make_occupier(s, operator, sites_=[london, paris], name="Globex")
        initech = make_occupier(s, operator, sites_=[london], name="Initech")
        user = make_user(s, globex, email="ada@globex.example", language="es")
        other_user = make_user(s, initech)
        theirs = make_operator(s)
        foreign = make_user(s, make_occupier(s, theirs, sites_=[make_site(s, theirs, code="LON01")]))
        ids = Ids(user=user.id, other_user=other_user.id, foreign_user=foreign.id, occupier=globex.id)
        s.commit()
    return ids


def confirm(cli: Cli, user_id: int) -> None:
    with cli.session() as s:
        account_id = s.scalar(select(WifiAccount.id).where(WifiAccount.user_id == user_id))
        assert account_id is not None and service.confirm_provisioning(s, account_id)
        s.commit()


def shown(cli: Cli, user_id: int) -> dict[str, Any]:
    result = cli("wifi", "show", str(user_id), "--json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_the_wifi_commands_exist_with_help() -> None:
    from typer.main import get_command

    from occupant.cli.main import app

    group = get_command(app).commands["wifi"]  # type: ignore[attr-defined]
    assert set(group.commands) == {
        "show",
        "create",
        "deactivate",
        "activate",
        "reset-password",
        "set",
        "sessions",
        "clear-session",
    }


def test_an_account_is_created_changed_and_reset_without_printing_a_password(cli: Cli) -> None:
    ids = seed(cli)
    uid = str(ids.user)
    assert "has no Wi-Fi account" in cli("wifi", "show", uid).stdout

    created = cli("wifi", "create", uid, "--homesite", "lon01", "--device-limit", "3")
    assert created.exit_code == 0, created.output
    assert "Created the Wi-Fi account of user" in created.stdout
    assert "PROVISIONING" in created.stdout and "LON01 London Bridge" in created.stdout
    with cli.session() as s:
        [mail] = password_mails(s, ids.user)
        assert (mail.to_address, mail.language) == ("ada@globex.example", "es")
        assert mailed_password(mail) not in created.output
    state = shown(cli, ids.user)
    assert state["busy"] is True and state["wifi"]["status"] == "PROVISIONING"
    assert state["wifi"]["device_limit"] == 3 and state["wifi"]["username"] == "ada@globex.example"
    busy = cli("wifi", "set", uid, "--device-limit", "2")
    assert busy.exit_code == 1 and "error: An action is in progress for this user" in busy.stderr

    confirm(cli, ids.user)
    assert shown(cli, ids.user)["wifi"]["status"] == "ACTIVE"
    limit = cli("wifi", "set", uid, "--device-limit", "4")  # no new password: no question
    assert limit.exit_code == 0 and "Device limit:  4" in limit.stdout

    asks = cli("wifi", "set", uid, "--homesite", "PAR01")
    assert asks.exit_code == 1 and "add --yes" in asks.stderr
    moved_out = cli("wifi", "set", uid, "--homesite", "PAR01", "--yes", "--json")
    assert json.loads(moved_out.stdout)["wifi"]["homesite"]["code"] == "PAR01"

    assert cli("wifi", "deactivate", uid).exit_code == 1  # no terminal, no --yes
    off = cli("wifi", "deactivate", uid, "--yes")
    assert off.exit_code == 0 and "Status:        DEACTIVATED" in off.stdout
    refused = cli("wifi", "reset-password", uid, "--yes")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == "error: The Wi-Fi account is deactivated; activate it instead."
    on = cli("wifi", "activate", uid)
    assert on.exit_code == 0 and "PROVISIONING" in on.stdout
    confirm(cli, ids.user)
    reset = cli("wifi", "reset-password", uid, "--yes")
    assert reset.exit_code == 0 and "A new Wi-Fi password is being emailed" in reset.stdout
    with cli.session() as s:
        mails = password_mails(s, ids.user)
        assert [m.context["reason"] for m in mails] == ["created", "homesite_changed", "activated", "reset"]
        printed = created.output + moved_out.output + on.output + reset.output
        assert not any(mailed_password(m) in printed for m in mails)


def test_connected_devices_are_listed_and_a_stale_session_cleared(cli: Cli) -> None:
    ids = seed(cli)
    uid = str(ids.user)
    assert cli("wifi", "create", uid, "--homesite", "LON01").exit_code == 0
    confirm(cli, ids.user)
    with cli.session() as s:
        here = open_session(s, "ada@globex.example", mac="AA-BB-CC-00-00-01", nas_identifier="ap-lon-1")
        elsewhere = open_session(
            s, "ada@globex.example", mac="AA-BB-CC-00-00-02", nas_ip="192.0.2.9", minutes_ago=90
        )
        here_id, elsewhere_id = here.radacctid, elsewhere.radacctid
        s.commit()

    table = cli("wifi", "sessions", uid)
    assert table.exit_code == 0, table.output
    assert "AA-BB-CC-00-00-01" in table.stdout and "LON01 London Bridge" in table.stdout
    assert "NAS 192.0.2.9" in table.stdout
    listed = json.loads(cli("wifi", "sessions", uid, "--json").stdout)
    assert [item["id"] for item in listed] == [here_id, elsewhere_id]

    assert cli("wifi", "clear-session", uid, str(elsewhere_id)).exit_code == 1  # needs --yes
    cleared = cli("wifi", "clear-session", uid, str(elsewhere_id), "--yes")
    assert cleared.exit_code == 0 and f"Cleared session {elsewhere_id}" in cleared.stdout
    with cli.session() as s:
        assert s.get(RadAcct, elsewhere_id).acctstoptime is not None  # type: ignore[union-attr]
    again = cli("wifi", "clear-session", uid, str(elsewhere_id), "--yes")
    assert again.exit_code == 1 and again.stderr.strip() == "error: No such open session."
    assert [i["id"] for i in json.loads(cli("wifi", "sessions", uid, "--json").stdout)] == [here_id]


def test_errors_print_one_clear_line_and_change_nothing(cli: Cli) -> None:
    ids = seed(cli)
    uid = str(ids.user)
    cases = [
        (("wifi", "show", "999999"), "error: there is no user 999999"),
        (("wifi", "show", str(ids.foreign_user)), f"error: there is no user {ids.foreign_user}"),
        (("wifi", "create", uid, "--homesite", "NOPE"), "error: there is no site NOPE"),
        (
            ("wifi", "create", str(ids.other_user), "--homesite", "PAR01"),
            "error: --homesite: The homesite must be one of the sites the occupier can access.",
        ),
        (
            ("wifi", "create", uid, "--homesite", "LON01", "--device-limit", "9"),
            "error: --device-limit: The device limit must be between 1 and 5.",
        ),
        (("wifi", "deactivate", uid, "--yes"), "error: This user has no Wi-Fi account."),
        (("wifi", "set", uid, "--device-limit", "2"), "error: This user has no Wi-Fi account."),
        (("wifi", "set", uid), "error: nothing to change: give --homesite and/or --device-limit"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.exit_code == 1, args
        assert result.stderr.strip() == message, args
        assert "Traceback" not in result.output
    with cli.session() as s:
        assert s.scalar(select(WifiAccount.id)) is None and password_mails(s, ids.user) == []

    assert cli("wifi", "create", uid, "--homesite", "LON01").exit_code == 0
    confirm(cli, ids.user)
    exists = cli("wifi", "create", uid, "--homesite", "LON01")
    assert exists.exit_code == 1 and exists.stderr.strip() == "error: This user already has a Wi-Fi account."
    with cli.session() as s:
        occupier = s.get(Occupier, ids.occupier)
        operator = s.get(Operator, occupier.operator_id)  # type: ignore[union-attr]
        assert occupier is not None and operator is not None
        occupiers.start_decommission(s, occupier, actor=admin_actor(operator))
        s.commit()
    closed = cli("wifi", "deactivate", uid, "--yes")
    assert (
        closed.exit_code == 1 and "error: The occupier is being or has been decommissioned" in closed.stderr
    )
    assert shown(cli, ids.user)["wifi"]["status"] == "ACTIVE"
