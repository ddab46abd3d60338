"""``occupant users export``: the CSV to a file (named like the console's download) or standard output,
its filter options, a JSON summary, and readable errors."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from occupant.audit.models import AuditEvent
from tests.cli.conftest import Cli
from tests.factories import make_occupier, make_operator, make_site, make_user
from tests.wifi.support import give_wifi


@dataclass
class Ids:
    globex: int
    initech: int
    foreign_occupier: int


def seed(cli: Cli) -> Ids:
    """The operator the commands act for, with Globex (two users, one with Wi-Fi at LON01) and Initech (one
    user), and another operator's occupier."""
    assert cli("db", "upgrade").exit_code == 0
    with cli.session() as s:
        operator = make_operator(s, name="Acme Workspace")
        london = make_site(s, operator, code="LON01")
        globex = make_occupier(s, operator, sites_=[london], name="Globex")
        initech = make_occupier(s, operator, sites_=[london], name="Initech")
        ada = make_user(s, globex, first_name="Ada", last_name="Lovelace", mobile="+447911123456")
        give_wifi(s, ada, homesite=london)
        make_user(s, globex, first_name="=cmd()", last_name="Babbage")
        make_user(s, initech, first_name="Ivy", last_name="Initech")
        theirs = make_operator(s)
        foreign = make_occupier(s, theirs, sites_=[make_site(s, theirs, code="LON01")])
        ids = Ids(globex=globex.id, initech=initech.id, foreign_occupier=foreign.id)
        s.commit()
    return ids


def read(path: Path) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_an_occupiers_users_to_a_file_named_like_the_download(cli: Cli, tmp_path: Path, monkeypatch) -> None:
    ids = seed(cli)
    monkeypatch.chdir(tmp_path)
    result = cli("users", "export", "--occupier", str(ids.globex))
    assert result.exit_code == 0, result.output
    (written,) = tmp_path.glob("users-globex-*.csv")
    assert result.stdout.strip() == f"Exported 2 users to {written.name}."
    rows = read(written)
    assert [r["first_name"] for r in rows] == ["'=cmd()", "Ada"]  # name order; the formula neutralised
    assert rows[1]["mobile"] == "'+447911123456" and rows[1]["wifi_homesite"] == "LON01"
    assert not list(tmp_path.glob("*.part"))
    with cli.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "users.exported")).one()
        assert (event.actor_type, event.occupier_id, event.changes["rows"]) == ("system", ids.globex, 2)


def test_filters_standard_output_and_a_json_summary(cli: Cli, tmp_path: Path) -> None:
    ids = seed(cli)
    piped = cli("users", "export", "--wifi", "none", "--out", "-")
    assert piped.exit_code == 0, piped.output
    assert not piped.stdout.startswith("\ufeff")  # no BOM in a pipe
    assert [r["first_name"] for r in csv.DictReader(io.StringIO(piped.stdout))] == ["'=cmd()", "Ivy"]
    assert piped.stderr.strip() == "Exported 2 users."

    out = tmp_path / "wifi.csv"
    summary = cli("users", "export", "--wifi-homesite", "lon01", "--wifi", "ACTIVE", "-o", str(out), "--json")
    assert summary.exit_code == 0, summary.output
    assert json.loads(summary.stdout) == {
        "file": str(out),
        "rows": 1,
        "occupier_id": None,
        "filter": {"wifi": "ACTIVE", "wifi_homesite_id": summary_site(cli)},
    }
    assert [r["first_name"] for r in read(out)] == ["Ada"]
    searched = cli("users", "export", "--occupier", str(ids.initech), "--search", "ivy", "-o", "-")
    assert [r["last_name"] for r in csv.DictReader(io.StringIO(searched.stdout))] == ["Initech"]


def summary_site(cli: Cli) -> int:
    from occupant.sites.models import Site

    with cli.session() as s:
        return int(s.scalar(select(Site.id).where(Site.code == "LON01").order_by(Site.id)) or 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--wifi", "sometimes"],
            "error: --wifi: Input should be 'none', 'PROVISIONING', 'ACTIVE' or 'DEACTIVATED'",
        ),
        (["--wifi-device-limit", "0"], "error: --wifi-device-limit: Enter 1 or more."),
        (["--wifi-homesite", "NOPE"], "error: there is no site NOPE"),
        (["--occupier", "999999"], "error: there is no occupier 999999"),
        (["--json", "-o", "-"], "error: --json describes the file written: give --out FILE"),
    ],
)
def test_mistakes_are_explained(cli: Cli, args: list[str], message: str) -> None:
    seed(cli)
    result = cli("users", "export", *args)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().startswith(message), result.stderr
    assert "Traceback" not in result.output


def test_another_operators_occupier_is_not_there(cli: Cli) -> None:
    ids = seed(cli)
    result = cli("users", "export", "--occupier", str(ids.foreign_occupier), "-o", "-")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: there is no occupier {ids.foreign_occupier}"
