"""``occupant account``, run as a script would: a user by id or email, output parsed, exit codes and
messages checked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from occupant.accounts import service
from occupant.users.models import OccupierUser
from tests.accounts.app_support import PASSWORD, link_token, mailed_link, mails
from tests.cli.conftest import Cli
from tests.factories import make_occupier, make_operator, make_site, make_user

pytestmark = pytest.mark.usefixtures("fresh_cli_settings")


@dataclass
class Ids:
    user: int
    portal_only_user: int
    foreign_user: int


def seed(cli: Cli) -> Ids:
    """The operator (the first one, whom the commands act for) with Globex (portal and app) and Initech
    (portal only), a user of each, and another operator's user with the same kind of email."""
    assert cli("db", "upgrade").exit_code == 0
    with cli.session() as s:
        operator = make_operator(s, name="Acme Workspace")
        london = make_site(s, operator, code="LON01")
        globex = make_occupier(s, operator, sites_=[london], name="Globex")
        initech = make_occupier(s, operator, sites_=[london], name="Initech", mobile_app_offered=False)
        user = make_user(s, globex, first_name="Ada", last_name="Abbott", email="ada@globex.example")
        portal_only = make_user(s, initech, email="ben@initech.example")
        theirs = make_operator(s)
        foreign = make_user(
            s, make_occupier(s, theirs, sites_=[make_site(s, theirs)]), email="cy@else.example"
        )
        ids = Ids(user=user.id, portal_only_user=portal_only.id, foreign_user=foreign.id)
        s.commit()
    return ids


def shown(cli: Cli, user: str) -> dict[str, Any]:
    result = cli("account", "show", user, "--json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def choose_password(cli: Cli, user_id: int) -> None:
    """The user follows the emailed link and chooses a password: ACTIVE."""
    with cli.session() as s:
        token = link_token(mails(s, user_id, "app_invitation")[-1])
        service.set_password_with_link(s, token, PASSWORD, address="192.0.2.1")
        s.commit()


def test_the_account_commands_exist_with_help() -> None:
    from typer.main import get_command

    from occupant.cli.main import app

    group = get_command(app).commands["account"]  # type: ignore[attr-defined]
    assert set(group.commands) == {
        "show",
        "invite",
        "resend",
        "deactivate",
        "activate",
        "reset",
        "force-reset",
        "welcome",
        "role",
    }


def test_invite_by_email_then_every_action_by_id_without_printing_a_link(cli: Cli) -> None:
    ids = seed(cli)
    before = cli("account", "show", "ADA@globex.example")
    assert before.exit_code == 0, before.output
    assert f"User {ids.user}: Ada Abbott <ada@globex.example>" in before.stdout
    assert "Status:        NOT_INVITED" in before.stdout and "Role:          none" in before.stdout

    invited = cli("account", "invite", "ada@globex.example", "--portal", "--role", "admin")
    assert invited.exit_code == 0, invited.output
    assert f"Invited user {ids.user} to the portal; the email is on its way." in invited.stdout
    assert "Status:        AWAITING_SIGN_IN" in invited.stdout and "Portal:        INVITED" in invited.stdout
    with cli.session() as s:
        [mail] = mails(s, ids.user)
        assert mail.template == "app_invitation"
        assert mailed_link(mail) not in invited.output and link_token(mail) not in invited.output
    again = cli("account", "invite", str(ids.user), "--portal")
    assert "was already invited; nothing was sent" in again.stdout
    app = cli("account", "invite", str(ids.user), "--mobile-app", "--json")
    state = json.loads(app.stdout)
    assert (state["role"], state["portal"], state["mobile_app"]) == ("admin", "INVITED", "INVITED")

    resent = cli("account", "resend", str(ids.user))
    assert (
        resent.exit_code == 0 and f"A new invitation link is on its way to user {ids.user}." in resent.stdout
    )
    # A reset before the invitation was used: the invitation again, with a new link.
    not_yet = cli("account", "reset", str(ids.user))
    assert not_yet.exit_code == 0, not_yet.output
    assert f"User {ids.user} has not chosen a password yet: a new invitation link is on its way." in (
        not_yet.stdout
    )

    choose_password(cli, ids.user)
    assert shown(cli, str(ids.user))["status"] == "ACTIVE"
    assert cli("account", "reset", str(ids.user)).exit_code == 0
    assert cli("account", "welcome", str(ids.user)).exit_code == 0
    assert cli("account", "force-reset", str(ids.user)).exit_code == 1  # no terminal, no --yes
    forced = cli("account", "force-reset", str(ids.user), "--yes")
    assert forced.exit_code == 0 and "(must choose a new password)" in forced.stdout

    assert "add --yes" in cli("account", "deactivate", str(ids.user)).stderr
    off = cli("account", "deactivate", str(ids.user), "--yes")
    assert off.exit_code == 0 and "Status:        DEACTIVATED" in off.stdout
    refused = cli("account", "reset", str(ids.user))
    assert refused.exit_code == 1
    assert "error: Only an active or invited account can be sent a password reset." in refused.stderr
    on = cli("account", "activate", str(ids.user))
    assert on.exit_code == 0 and "Status:        ACTIVE" in on.stdout
    demoted = cli("account", "role", str(ids.user), "user")
    assert demoted.exit_code == 0 and f"User {ids.user} is now a user." in demoted.stdout
    with cli.session() as s:
        sent = [m.template for m in mails(s, ids.user)]
    assert sent == [
        "app_invitation",
        "app_second_invitation",
        "app_invitation",
        "app_invitation",
        "password_reset",
        "welcome",
    ]
    with cli.session() as s:
        resent = [m.context["resent"] for m in mails(s, ids.user) if m.template == "app_invitation"]
    assert resent == [False, True, True]


def test_errors_are_short_messages_with_exit_code_1(cli: Cli) -> None:
    ids = seed(cli)
    for args, message in [
        (("account", "show", "987654"), "error: there is no user 987654"),
        (("account", "show", str(ids.foreign_user)), f"error: there is no user {ids.foreign_user}"),
        (("account", "show", "cy@else.example"), "error: there is no user with the email cy@else.example"),
        (("account", "show", "not-an-email"), "error: give a user's ID or email, not 'not-an-email'"),
        (("account", "role", str(ids.user), "owner"), "error: the role must be admin or user, not 'owner'"),
        (
            ("account", "invite", str(ids.portal_only_user), "--mobile-app"),
            "error: --mobile-app: The occupier does not offer this app.",
        ),
        (
            ("account", "resend", str(ids.user)),
            "error: This user has not been invited to the apps.",
        ),
    ]:
        result = cli(*args)
        assert result.exit_code == 1, args
        assert result.stderr.strip().startswith(message), (args, result.stderr)
        assert "Traceback" not in result.output

    # Without --portal/--mobile-app: every app the occupier offers, and no other.
    only = cli("account", "invite", "ben@initech.example", "--json")
    assert only.exit_code == 0, only.output
    state = json.loads(only.stdout)
    assert (state["portal"], state["mobile_app"], state["mobile_app_offered"]) == (
        "INVITED",
        "NOT_INVITED",
        False,
    )
    assert "(not offered by the occupier)" in cli("account", "show", str(ids.portal_only_user)).stdout
    with cli.session() as s:
        assert [m.template for m in mails(s, ids.foreign_user)] == []
        user = s.get(OccupierUser, ids.user)
        assert user is not None and service.account_of(s, user) is None  # the refusals created nothing


def test_a_bad_setting_is_named_not_a_traceback(cli: Cli) -> None:
    result = cli.runner.invoke(
        app_of_cli(), ["account", "show", "1"], env={**cli.env, "OCCUPANT_INVITATION_HOURS": "0"}
    )
    assert result.exit_code == 1
    assert "error: the configuration is not valid" in result.stderr
    assert "OCCUPANT_INVITATION_HOURS: Input should be greater than or equal to 1" in result.stderr
    assert "Traceback" not in result.output


def app_of_cli() -> Any:
    from occupant.cli.main import app

    return app
