"""The ``occupant`` command, run as a script would: options only, output parsed, exit codes checked."""

from __future__ import annotations

import json
from pathlib import Path

import phonenumbers
import pytest
from sqlalchemy import func, select
from typer.main import get_command
from typer.testing import CliRunner

from occupant.cli.main import app
from occupant.groups.models import AccessGroup
from occupant.kit.errors import NotAuthenticated
from occupant.occupiers.models import Occupier
from occupant.sites.models import Site
from occupant.staff import service as staff
from occupant.users.models import OccupierUser, UserStatus
from tests.cli.conftest import Cli


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: object, prefix: list[str]) -> None:
        paths.append(prefix)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*prefix, name])

    walk(get_command(app), [])
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "occupant")
def test_every_command_has_help(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    assert f"occupant {' '.join(path)}".strip() in " ".join(result.stdout.split())


def test_the_commands_of_the_issue_all_exist() -> None:
    listed = {" ".join(p) for p in _command_paths()}
    wanted = {
        "serve",
        "worker",
        "db upgrade",
        "db current",
        "admin create",
        "apikey create",
        "apikey list",
        "apikey revoke",
        "demo",
    }
    assert wanted <= listed


def test_db_upgrade_builds_the_schema_and_current_reports_it(cli: Cli) -> None:
    before = cli("db", "current", "--json")
    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout)["revision"] is None
    assert cli("db", "current", "--check").exit_code == 1

    upgraded = cli("db", "upgrade", "--json")
    assert upgraded.exit_code == 0, upgraded.output
    state = json.loads(upgraded.stdout)
    assert state["up_to_date"] is True and state["previous"] is None and state["revision"] == state["head"]

    again = cli("db", "upgrade")
    assert again.exit_code == 0 and "already up to date" in again.stdout
    assert cli("db", "current", "--check").exit_code == 0
    with cli.session() as s:
        assert s.scalar(select(func.count()).select_from(Site)) == 0  # the tables exist


def test_admin_create_prints_a_generated_password_that_signs_in(cli: Cli) -> None:
    result = cli("admin", "create", "--email", "Ada@Example.com", "--name", "Ada Lovelace")
    assert result.exit_code == 0, result.output
    assert "Created operator admin Ada@example.com (Ada Lovelace)" in result.stdout
    password = result.stdout.strip().splitlines()[-1]
    assert len(password) >= 16 and " " not in password
    with cli.session() as s:
        _, token = staff.sign_in(s, email="ada@example.com", password=password, address=None)
        assert token
        with pytest.raises(NotAuthenticated):
            staff.sign_in(s, email="ada@example.com", password="not the password", address=None)


def test_admin_create_reads_the_password_from_stdin(cli: Cli) -> None:
    result = cli(
        "admin",
        "create",
        "--email",
        "grace@example.com",
        "--password-stdin",
        "--json",
        input="correct horse battery\n",
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["password"] is None  # nothing generated, nothing printed
    assert record["email"] == "grace@example.com" and record["role"] == "operator_admin"
    assert "correct horse" not in result.output

    piped = cli("admin", "create", "--email", "alan@example.com", input="another long secret\n")
    assert piped.exit_code == 0, piped.output
    assert "generated password" not in piped.stdout
    with cli.session() as s:
        staff.sign_in(s, email="grace@example.com", password="correct horse battery", address=None)
        staff.sign_in(s, email="alan@example.com", password="another long secret", address=None)


def test_the_first_admin_creates_the_operator_and_later_admins_join_it(cli: Cli) -> None:
    first = json.loads(
        cli("admin", "create", "--email", "a@example.com", "--operator-name", "Flexi Spaces", "--json").stdout
    )
    second = json.loads(cli("admin", "create", "--email", "b@example.com", "--json").stdout)
    assert first["operator_name"] == second["operator_name"] == "Flexi Spaces"
    assert first["operator_id"] == second["operator_id"]


def test_admin_create_refuses_a_taken_email_and_a_short_password(cli: Cli) -> None:
    assert cli("admin", "create", "--email", "ada@example.com").exit_code == 0

    duplicate = cli("admin", "create", "--email", "ADA@example.com")
    assert duplicate.exit_code == 1
    assert "error: email: A staff member with this email already exists." in duplicate.stderr
    assert "Traceback" not in duplicate.output

    short = cli("admin", "create", "--email", "bob@example.com", "--password-stdin", input="short\n")
    assert short.exit_code == 1
    assert "error: password: Use at least 10 characters." in short.stderr

    empty = cli("admin", "create", "--email", "bob@example.com", "--password-stdin", input="")
    assert empty.exit_code == 1 and "standard input held no password" in empty.stderr


def test_apikey_create_prints_the_key_alone_on_its_last_line_and_it_authenticates(cli: Cli) -> None:
    cli("admin", "create", "--email", "ada@example.com")
    result = cli("apikey", "create", "--name", "HR sync")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    key = lines[-1]
    assert key.startswith("occ_") and " " not in key
    assert 'Created API key 1 "HR sync"' in result.stdout
    with cli.session() as s:
        resolved = staff.resolve_api_key(s, key)
        assert resolved is not None and resolved.name == "HR sync"
        assert staff.actor_for_api_key(resolved).is_operator_admin
        assert staff.resolve_api_key(s, key + "x") is None


def test_apikey_json_list_and_revoke(cli: Cli) -> None:
    cli("admin", "create", "--email", "ada@example.com")
    created = json.loads(cli("apikey", "create", "--name", "Door system", "--json").stdout)
    assert created["key"].startswith(created["prefix"])

    listed = json.loads(cli("apikey", "list", "--json").stdout)
    assert [(k["id"], k["name"]) for k in listed] == [(created["id"], "Door system")]
    assert "key" not in listed[0]  # only the prefix is ever shown again

    refused = cli("apikey", "revoke", str(created["id"]))  # no terminal, no --yes
    assert refused.exit_code == 1 and "--yes" in refused.stderr

    revoked = json.loads(cli("apikey", "revoke", str(created["id"]), "--yes", "--json").stdout)
    assert revoked["revoked_at"] and revoked["already_revoked"] is False
    with cli.session() as s:
        assert staff.resolve_api_key(s, created["key"]) is None
    assert json.loads(cli("apikey", "list", "--json").stdout) == []
    assert len(json.loads(cli("apikey", "list", "--all", "--json").stdout)) == 1

    missing = cli("apikey", "revoke", "999", "--yes")
    assert missing.exit_code == 1 and "error: there is no API key 999" in missing.stderr


def test_apikey_needs_an_operator_first(cli: Cli) -> None:
    result = cli("apikey", "create", "--name", "Too early")
    assert result.exit_code == 1
    assert "there is no operator yet" in result.stderr and "occupant admin create" in result.stderr
    blank = cli("admin", "create", "--email", "ada@example.com")
    assert blank.exit_code == 0
    unnamed = cli("apikey", "create", "--name", "  ")
    assert unnamed.exit_code == 1 and "error: name:" in unnamed.stderr


def test_demo_loads_sites_occupiers_and_users_that_can_be_queried(cli: Cli) -> None:
    result = cli("demo", "--occupiers", "2", "--users-per-occupier", "5", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "loaded"
    assert summary["sites"] == ["LON01", "PAR01", "BER01", "MAD01", "AMS01"]
    assert (summary["occupiers"], summary["users"]) == (2, 10)

    with cli.session() as s:
        sites = {site.code: site for site in s.scalars(select(Site))}
        assert {code: site.country for code, site in sites.items()} == {
            "LON01": "GB",
            "PAR01": "FR",
            "BER01": "DE",
            "MAD01": "ES",
            "AMS01": "NL",
        }
        assert "LON01-AP01" in sites["LON01"].nas_identifiers
        occupiers = list(s.scalars(select(Occupier)))
        assert len(occupiers) == 2
        for occupier in occupiers:
            assert sorted(site.code for site in occupier.sites) == sorted(sites)
        users = list(s.scalars(select(OccupierUser)))
        assert len(users) == 10
        assert len({u.email_key for u in users}) == 10
        for user in users:
            assert user.first_name and user.last_name and "@" in user.email
            assert user.language in {"en", "fr", "de", "es", "nl"}
            assert user.mobile and phonenumbers.is_valid_number(phonenumbers.parse(user.mobile))
            assert user.status in (UserStatus.ACTIVE, UserStatus.DEACTIVATED)
        site_groups = s.scalars(
            select(AccessGroup.name).where(AccessGroup.site_id == sites["PAR01"].id)
        ).all()
        assert "PAR01 Front door" in site_groups


def test_demo_is_not_loaded_twice_unless_forced(cli: Cli) -> None:
    assert cli("demo", "--occupiers", "1", "--users-per-occupier", "3").exit_code == 0
    again = cli("demo", "--occupiers", "1", "--users-per-occupier", "3")
    assert again.exit_code == 0
    assert "already loaded" in again.stdout and "--force" in again.stdout
    with cli.session() as s:
        assert s.scalar(select(func.count()).select_from(OccupierUser)) == 3

    forced = json.loads(
        cli("demo", "--occupiers", "1", "--users-per-occupier", "3", "--force", "--json").stdout
    )
    assert forced["occupiers"] == 1
    with cli.session() as s:
        assert s.scalar(select(func.count()).select_from(Occupier)) == 2
        assert s.scalar(select(func.count()).select_from(OccupierUser)) == 6
        assert s.scalar(select(func.count()).select_from(Site)) == 5


def test_the_first_admin_joins_the_demo_operator(sqlite_cli: Cli) -> None:
    assert sqlite_cli("demo", "--occupiers", "1", "--users-per-occupier", "1").exit_code == 0
    admin = json.loads(sqlite_cli("admin", "create", "--email", "ada@example.com", "--json").stdout)
    assert admin["operator_name"] == "Demo Workspace"


def test_data_dir_option_chooses_the_folder(tmp_path: Path) -> None:
    mine, other = tmp_path / "mine", tmp_path / "other"
    result = CliRunner().invoke(
        app,
        ["--data-dir", str(mine), "db", "upgrade"],
        catch_exceptions=False,
        env={"OCCUPANT_DATA_DIR": str(other), "OCCUPANT_DATABASE_URL": None},
    )
    assert result.exit_code == 0, result.output
    assert (mine / "occupant.db").exists() and not other.exists()


def test_an_unreachable_database_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    env = {
        "OCCUPANT_DATA_DIR": str(tmp_path),
        "OCCUPANT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/x",
    }
    result = CliRunner().invoke(app, ["db", "upgrade"], env=env, catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: database error on postgresql+psycopg://nobody@127.0.0.1:1/x")
    assert "Traceback" not in result.output
