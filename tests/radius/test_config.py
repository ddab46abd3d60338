"""``occupant radius config``: a configuration FreeRADIUS accepts, with secrets kept out of sight."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from occupant.cli.common import release_engine
from occupant.cli.main import app
from occupant.kit.settings import get_settings
from occupant.radius.config import RadiusClient, RadiusConfigError, RadiusOptions, render
from tests.radius.harness import missing_tools

PG_URL = "postgresql+psycopg://occupant:S3cr%27t%24%7Bx%7D%3A@db.example.com:6432/occupant?sslmode=require"
SECRET = "a-shared-secret-for-the-aps"


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    yield
    release_engine()
    get_settings.cache_clear()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["radius", "config", *args], catch_exceptions=False)
    return result.exit_code, result.output


def _check_with_freeradius(directory: Path) -> None:
    """``freeradius -C``: parse everything and load every module, without serving."""
    if missing_tools():
        pytest.fail("FreeRADIUS is not installed: run scripts/test.sh")
    result = subprocess.run(
        ["freeradius", "-C", "-d", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_production_postgresql_config_keeps_the_password_out_of_the_config(tmp_path: Path) -> None:
    out = tmp_path / "raddb"
    code, output = _run(
        "--out",
        str(out),
        "--database-url",
        PG_URL,
        "--listen",
        "0.0.0.0",
        "--secret",
        SECRET,
        "--client",
        "10.20.0.0/16",
        "--client",
        "192.0.2.7=another-secret-0123456",
    )
    assert code == 0, output
    assert "postgresql: postgresql+psycopg://occupant:***@db.example.com:6432/occupant" in output
    assert "Made a throwaway EAP certificate" in output

    everything = "".join(p.read_text() for p in out.rglob("*") if p.is_file() and p.name != "pgpass")
    assert "S3cr" not in everything
    sql = (out / "mods" / "sql").read_text()
    assert "host=\\'db.example.com\\' port=\\'6432\\' dbname=\\'occupant\\' user=\\'occupant\\'" in sql
    assert "sslmode=\\'require\\'" in sql
    pgpass = out / "pgpass"
    assert pgpass.read_text() == "*:*:*:*:S3cr't${x}\\:\n"
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "certs" / "server.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "clients.conf").stat().st_mode) == 0o640

    clients = (out / "clients.conf").read_text()
    assert "ipaddr = 10.20.0.0/16" in clients and f'secret = "{SECRET}"' in clients
    assert "ipaddr = 192.0.2.7/32" in clients and 'secret = "another-secret-0123456"' in clients
    assert clients.count("require_message_authenticator = yes") == 2
    _check_with_freeradius(out)


def test_an_sqlite_config_loads_and_rendering_again_keeps_the_certificate(tmp_path: Path) -> None:
    db = tmp_path / "occupant.db"
    options = RadiusOptions(
        database_url=f"sqlite:///{db}", clients=[RadiusClient("127.0.0.1", SECRET)], run_as=None
    )
    first = render(tmp_path / "raddb", options)
    assert (first.dialect, first.generated_certificate) == ("sqlite", True)
    sql = (first.directory / "mods" / "sql").read_text()
    assert f'filename = "{db}"' in sql and "busy_timeout = 5000" in sql
    queries = (first.directory / "sql" / "queries.conf").read_text()
    # The device count comes with the check items, for the user asking (Debian's stock SQLite
    # simul_verify_query looked up the group name as if it were the user).
    check = queries[queries.index("authorize_check_query = ") : queries.index("group_membership_query")]
    assert "Tmp-Integer-0" in check and "group_attribute" not in check
    assert "simul_count_query" not in queries
    certificate = (first.directory / "certs" / "server.pem").read_bytes()

    again = render(tmp_path / "raddb", options)
    assert not again.generated_certificate
    assert (again.directory / "certs" / "server.pem").read_bytes() == certificate
    _check_with_freeradius(again.directory)


def test_the_cli_generates_and_prints_a_secret_when_none_is_given(tmp_path: Path) -> None:
    code, output = _run("--out", str(tmp_path / "r"), "--database-url", "sqlite:////tmp/x.db", "--json")
    assert code == 0, output
    result = json.loads(output)
    assert result["clients"] == ["127.0.0.1"]
    assert len(result["generated_secret"]) >= 24
    assert f'secret = "{result["generated_secret"]}"' in (tmp_path / "r" / "clients.conf").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--secret", "short"], "at least 16 characters"),
        (["--secret", SECRET, "--client", "not-an-ip"], "is not an IP address or network"),
        (["--secret", SECRET, "--database-url", "sqlite://"], "not an in-memory database"),
        (["--secret", SECRET, "--database-url", "mysql://u@h/db"], "PostgreSQL or SQLite"),
        (["--secret", SECRET, "--auth-port", "1812", "--acct-port", "1812"], "must differ"),
        (["--secret", SECRET, "--listen", "::1"], "IPv4"),
        (["--secret", SECRET, "--run-as", "no body"], "USER or USER:GROUP"),
    ],
)
def test_options_that_cannot_work_are_refused_with_a_reason(
    tmp_path: Path, args: list[str], message: str
) -> None:
    if "--database-url" not in args:
        args = [*args, "--database-url", f"sqlite:///{tmp_path}/o.db"]
    code, output = _run("--out", str(tmp_path / "r"), *args)
    assert code == 1
    assert message in output


def test_a_database_setting_with_a_quote_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RadiusConfigError, match="quotes"):
        render(
            tmp_path,
            RadiusOptions(database_url="postgresql://u@h/it's", clients=[RadiusClient("127.0.0.1", SECRET)]),
        )
