"""``occupant users import / deactivate`` and ``occupant jobs``, run as a script would: the preview, the
question (refused without a terminal unless --yes), the run with its progress bar, the outcome and the exit
status; then list, show, retry, cancel, results.
"""

# ruff: noqa: F811  (the fixtures borrowed from tests/cli are parameters of the tests)

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from occupant.authz.actor import Actor
from occupant.bulk.models import BulkJob, JobState
from occupant.cli import jobs as jobs_cli
from occupant.cli.common import release_engine
from occupant.kit.clock import utcnow
from occupant.kit.settings import get_settings
from occupant.occupiers import service as occupiers
from occupant.users.models import OccupierUser, UserStatus
from tests.cli.conftest import Cli, cli  # noqa: F401
from tests.factories import make_occupier, make_operator, make_site, make_user


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    yield
    release_engine()
    get_settings.cache_clear()


@dataclass
class Seed:
    occupier_id: int
    other_occupier_id: int
    emails: list[str]
    user_ids: list[int]


def seed(cli: Cli, n: int = 5) -> Seed:
    assert cli("db", "upgrade").exit_code == 0
    with cli.session() as s:
        operator = make_operator(s, name="Acme Workspace")
        london = make_site(s, operator, code="LON01")
        globex = make_occupier(s, operator, sites_=[london], name="Globex")
        initech = make_occupier(s, operator, sites_=[london], name="Initech")
        users = [make_user(s, globex, email=f"u{i}@globex.example", first_name=f"U{i}") for i in range(n)]
        make_user(s, initech, email="ivy@initech.example")
        s.commit()
        return Seed(globex.id, initech.id, [u.email for u in users], [u.id for u in users])


def statuses(cli: Cli, ids: list[int]) -> list[str]:
    with cli.session() as s:
        return [s.get(OccupierUser, i).status for i in ids]  # type: ignore[union-attr]


def jobs_in(cli: Cli) -> list[BulkJob]:
    with cli.session() as s:
        return list(s.scalars(select(BulkJob).order_by(BulkJob.id)))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- users deactivate --emails-from ---------------------------------------------------------------------


def test_without_a_terminal_or_yes_nothing_starts(cli: Cli, tmp_path: Path) -> None:
    ids = seed(cli)
    listed = write(tmp_path, "leavers.txt", "\n".join(ids.emails[:2]) + "\n")
    result = cli("users", "deactivate", "--emails-from", str(listed))
    assert result.exit_code == 1
    assert "Checked 2 items: 2 would be applied, 0 fail. Nothing has been changed yet." in result.stdout
    assert "error: standard input is not a terminal" in result.stderr and "add --yes" in result.stderr
    [job] = jobs_in(cli)
    assert job.state == JobState.PREVIEW
    assert f"occupant jobs confirm {job.id} --yes" in " ".join(result.stderr.split())
    assert statuses(cli, ids.user_ids[:2]) == [UserStatus.ACTIVE] * 2


def test_emails_from_standard_input_run_with_a_progress_bar_and_a_results_table(cli: Cli) -> None:
    ids = seed(cli)
    pasted = "\n".join(
        [ids.emails[0], "", ids.emails[1].upper(), "nobody@globex.example", "ivy@initech.example"]
    )
    result = cli(
        "users", "deactivate", "--emails-from", "-", "--occupier", str(ids.occupier_id), "--yes", input=pasted
    )
    assert result.exit_code == 1, result.output  # some failed: PARTIALLY_DONE
    out = " ".join(result.stdout.split())
    assert "Checked 4 items: 2 would be applied, 2 fail." in out
    assert "nobody@globex.example" in out and "ivy@initech.example" in out and "(not_found)" in out
    assert "Running" in result.stderr and "4/4" in result.stderr  # the bar, at its end
    assert "PARTIALLY_DONE" in out and "deactivated 2" in out and "failed 2" in out
    [job] = jobs_in(cli)
    assert f"occupant jobs retry {job.id}" in out
    assert statuses(cli, ids.user_ids[:2]) == [UserStatus.DEACTIVATED] * 2


def test_a_clean_run_exits_0_and_json_says_everything(cli: Cli, tmp_path: Path) -> None:
    ids = seed(cli)
    listed = write(tmp_path, "leavers.txt", "\n".join(ids.emails) + "\n")
    result = cli(
        "users", "deactivate", "--emails-from", str(listed), "--remove-from-groups", "--yes", "--json"
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["state"], record["counts"]["succeeded"], record["outcomes"]) == (
        "DONE",
        5,
        {"deactivated": 5},
    )
    assert record["params"] == {"remove_from_groups": True}
    assert record["requested_by"] == {"kind": "system", "id": None, "name": "occupant command line"}
    assert record["failed_items"] == []
    assert "Running" not in result.stderr  # no bar with --json
    assert statuses(cli, ids.user_ids) == [UserStatus.DEACTIVATED] * 5


def test_dry_run_changes_nothing_and_keeps_the_preview_to_confirm_later(cli: Cli, tmp_path: Path) -> None:
    ids = seed(cli)
    listed = write(tmp_path, "leavers.txt", ids.emails[0] + "\nnobody@x.example\n")
    dry = cli("users", "deactivate", "--emails-from", str(listed), "--dry-run")
    assert dry.exit_code == 1  # a row would fail
    [job] = jobs_in(cli)
    assert "Dry run: nothing was changed." in dry.stdout and f"occupant jobs confirm {job.id}" in dry.stdout
    assert job.state == JobState.PREVIEW
    assert statuses(cli, ids.user_ids[:1]) == [UserStatus.ACTIVE]
    confirmed = cli("jobs", "confirm", str(job.id), "--yes")
    assert confirmed.exit_code == 1 and "PARTIALLY_DONE" in confirmed.stdout
    assert statuses(cli, ids.user_ids[:1]) == [UserStatus.DEACTIVATED]
    again = cli("jobs", "confirm", str(job.id), "--yes")
    assert again.exit_code == 1 and "only a preview can be started" in again.stderr


def test_nothing_to_apply_is_said_and_not_started(cli: Cli, tmp_path: Path) -> None:
    seed(cli)
    listed = write(tmp_path, "leavers.txt", "nobody@x.example\n")
    result = cli("users", "deactivate", "--emails-from", str(listed), "--yes")
    assert result.exit_code == 1 and "nothing would be applied" in result.stderr
    assert [j.state for j in jobs_in(cli)] == [JobState.PREVIEW]


def test_deactivate_needs_one_source(cli: Cli, tmp_path: Path) -> None:
    seed(cli)
    both = cli("users", "deactivate", str(write(tmp_path, "a.csv", "email\n")), "--emails-from", "-")
    assert both.exit_code == 1 and "one of them" in both.stderr
    neither = cli("users", "deactivate")
    assert neither.exit_code == 1 and "one of them" in neither.stderr
    unknown = cli("users", "deactivate", "--emails-from", "-", "--occupier", "999", "--yes", input="a@b.c\n")
    assert unknown.exit_code == 1 and "there is no occupier 999" in unknown.stderr


def test_a_decommissioning_occupier_is_refused(cli: Cli) -> None:
    ids = seed(cli)
    with cli.session() as s:
        from occupant.occupiers.models import Occupier

        occupier = s.get(Occupier, ids.occupier_id)
        occupiers.start_decommission(s, occupier, actor=Actor.system(occupier.operator_id))
        s.commit()
    result = cli(
        "users",
        "deactivate",
        "--emails-from",
        "-",
        "--occupier",
        str(ids.occupier_id),
        "--yes",
        input=ids.emails[0],
    )
    assert result.exit_code == 1 and "decommissioned" in result.stderr
    assert jobs_in(cli) == []


def test_with_a_worker_configured_the_command_waits_then_runs_the_job_itself(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed(cli)
    monkeypatch.setattr(jobs_cli, "WORKER_GRACE", 0.3)
    monkeypatch.setenv("OCCUPANT_REDIS_URL", "redis://127.0.0.1:1/0")  # no worker will come
    listed = write(tmp_path, "leavers.txt", ids.emails[0] + "\n")
    result = cli("users", "deactivate", "--emails-from", str(listed), "--yes")
    assert result.exit_code == 0, result.output
    assert "No worker has picked job" in result.stderr and "running it here" in result.stderr
    assert statuses(cli, ids.user_ids[:1]) == [UserStatus.DEACTIVATED]


# --- users import and deactivate FILE -------------------------------------------------------------------


def test_import_previews_lists_failing_rows_and_runs(cli: Cli, tmp_path: Path) -> None:
    ids = seed(cli)
    rows = [
        "first_name,last_name,email",
        "Ada,Lovelace,ada@new.example",
        "Bo,Blank,",
        "Cy,Cee,cy@new.example",
    ]
    path = write(tmp_path, "starters.csv", "\n".join(rows) + "\n")
    refused = cli("users", "import", str(path), "--occupier", str(ids.occupier_id))
    assert refused.exit_code == 1 and "add --yes" in refused.stderr
    out = " ".join(refused.stdout.split())
    assert "from starters.csv" in out and "Checked 3 rows: 2 would be applied, 1 fail." in out
    assert "Line" in out and "Email" in out and "Field" in out and "3 email" in out  # line 3, field email

    result = cli("users", "import", str(path), "--occupier", str(ids.occupier_id), "--yes")
    assert result.exit_code == 1, result.output  # one row failed
    assert "PARTIALLY_DONE" in result.stdout and "created 2" in " ".join(result.stdout.split())
    assert "3/3" in result.stderr


def test_import_a_clean_file_exits_0(cli: Cli, tmp_path: Path) -> None:
    ids = seed(cli)
    path = write(tmp_path, "starters.csv", "first_name,last_name,email\nAda,Lovelace,ada@new.example\n")
    result = cli("users", "import", str(path), "--occupier", str(ids.occupier_id), "--yes", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["state"] == "DONE" and record["outcomes"] == {"created": 1}
    assert record["selection"]["file"] == "starters.csv"


def test_import_file_level_problems_and_limits(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed(cli)
    bad = write(tmp_path, "bad.csv", "name,colour\nAda,red\n")
    result = cli("users", "import", str(bad), "--occupier", str(ids.occupier_id), "--yes")
    assert result.exit_code == 1 and "error: The header on line 1 needs fixing." in result.stderr
    assert 'Unknown column "colour"' in result.stderr
    monkeypatch.setenv("OCCUPANT_CSV_MAX_BYTES", "100")
    big = write(tmp_path, "big.csv", "first_name,last_name,email\n" + "Ada,Lovelace,ada@new.example\n" * 10)
    too_large = cli("users", "import", str(big), "--occupier", str(ids.occupier_id), "--yes")
    assert too_large.exit_code == 1
    size = big.stat().st_size
    assert f"error: The file is {size} bytes; at most 100 bytes can be imported at once." in too_large.stderr
    small = write(tmp_path, "small.csv", "first_name,last_name,email\nAda,Lovelace,ada@new.example\n")
    missing = cli("users", "import", str(small), "--occupier", "999", "--yes")
    assert missing.exit_code == 1 and "there is no occupier 999" in missing.stderr
    assert jobs_in(cli) == []


def test_deactivate_from_a_csv_file(cli: Cli, tmp_path: Path) -> None:
    ids = seed(cli)
    path = write(tmp_path, "leavers.csv", f"email\n{ids.emails[0]}\n{ids.emails[1]}\n{ids.emails[0]}\n")
    result = cli("users", "deactivate", str(path), "--yes")
    assert result.exit_code == 1, result.output
    out = " ".join(result.stdout.split())
    assert "Checked 3 rows: 2 would be applied, 1 fail." in out and "Same email as line 2." in out
    assert statuses(cli, ids.user_ids[:2]) == [UserStatus.DEACTIVATED] * 2


# --- occupant jobs --------------------------------------------------------------------------------------


def _deactivated(cli: Cli, tmp_path: Path, emails: list[str]) -> int:
    listed = write(tmp_path, "list.txt", "\n".join(emails) + "\n")
    cli("users", "deactivate", "--emails-from", str(listed), "--yes")
    return jobs_in(cli)[-1].id


def test_list_show_and_show_failed(cli: Cli, tmp_path: Path) -> None:
    ids = seed(cli)
    first = _deactivated(cli, tmp_path, [ids.emails[0], "x1@none.example", "x2@none.example"])
    listed = cli("jobs", "list")
    assert listed.exit_code == 0 and "PARTIALLY_DONE" in listed.stdout and "3/3" in listed.stdout
    as_json = json.loads(cli("jobs", "list", "--json", "--state", "partially_done").stdout)
    assert [j["id"] for j in as_json] == [first]
    assert json.loads(cli("jobs", "list", "--json", "--state", "DONE").stdout) == []
    assert cli("jobs", "list", "--state", "sleeping").exit_code == 1
    shown = cli("jobs", "show", str(first))
    assert shown.exit_code == 0 and "deactivated 1" in " ".join(shown.stdout.split())
    assert "Requested by occupant command line" in shown.stdout
    failed = cli("jobs", "show", str(first), "--failed")
    assert "x1@none.example" in failed.stdout and "x2@none.example" in failed.stdout
    assert ids.emails[0] not in failed.stdout
    record = json.loads(cli("jobs", "show", str(first), "--failed", "--json").stdout)
    assert [i["identifier"] for i in record["failed_items"]] == ["x1@none.example", "x2@none.example"]
    assert cli("jobs", "show", "999").exit_code == 1


def test_show_lists_the_first_failing_rows_and_points_to_the_rest(cli: Cli, tmp_path: Path) -> None:
    ids = seed(cli, 1)
    missing = [f"x{n}@none.example" for n in range(jobs_cli.FAILED_SHOWN + 5)]
    job_id = _deactivated(cli, tmp_path, [ids.emails[0], *missing])
    shown = " ".join(cli("jobs", "show", str(job_id)).stdout.split())
    assert f"… and 5 more: occupant jobs show {job_id} --failed" in shown
    assert missing[-1] not in shown
    assert missing[-1] in cli("jobs", "show", str(job_id), "--failed").stdout


def test_retry_runs_the_failed_items_again(cli: Cli, tmp_path: Path) -> None:
    ids = seed(cli)
    with cli.session() as s:  # busy with something else: excluded when the job starts
        user = s.get(OccupierUser, ids.user_ids[1])
        user.busy_owner, user.busy_until = "wifi:1", utcnow().replace(year=utcnow().year + 1)
        s.commit()
    first = _deactivated(cli, tmp_path, ids.emails[:2])
    assert statuses(cli, ids.user_ids[:2]) == [UserStatus.DEACTIVATED, UserStatus.ACTIVE]
    with cli.session() as s:
        user = s.get(OccupierUser, ids.user_ids[1])
        user.busy_owner, user.busy_until = None, None
        s.commit()
    refused = cli("jobs", "retry", str(first))
    assert refused.exit_code == 1 and "add --yes" in refused.stderr
    retried = cli("jobs", "retry", str(first), "--yes")
    assert retried.exit_code == 0, retried.output
    assert "retries the failed items of job" in retried.stdout and "DONE" in retried.stdout
    assert statuses(cli, ids.user_ids[:2]) == [UserStatus.DEACTIVATED] * 2
    assert jobs_in(cli)[-1].retry_of_id == first


def test_cancel_and_results(cli: Cli, tmp_path: Path) -> None:
    ids = seed(cli)
    listed = write(tmp_path, "list.txt", "\n".join(ids.emails[:2]) + "\n=1+1@x.example\n")
    cli("users", "deactivate", "--emails-from", str(listed), "--dry-run")
    job_id = jobs_in(cli)[-1].id
    assert cli("jobs", "cancel", str(job_id)).exit_code == 1  # no terminal, no --yes
    cancelled = cli("jobs", "cancel", str(job_id), "--yes")
    assert cancelled.exit_code == 0 and "0 items were applied, 2 not started" in cancelled.stdout
    assert cli("jobs", "cancel", str(job_id), "--yes").exit_code == 1  # finished already
    out = tmp_path / "results.csv"
    written = cli("jobs", "results", str(job_id), "--out", str(out))
    assert written.exit_code == 0 and str(out) in written.stdout
    text = out.read_text(encoding="utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == ["row", "identifier", "status", "outcome", "code", "message"]
    assert [r[2] for r in rows[1:]] == ["NOT_STARTED", "NOT_STARTED", "FAILED"]
    assert rows[3][1] == "'=1+1@x.example"  # neutralised
    piped = cli("jobs", "results", str(job_id), "-o", "-")
    assert piped.stdout.startswith("row,identifier")
    assert statuses(cli, ids.user_ids[:2]) == [UserStatus.ACTIVE] * 2


def test_template(cli: Cli, tmp_path: Path) -> None:
    seed(cli)
    out = tmp_path / "t.csv"
    assert cli("jobs", "template", "deactivate", "-o", str(out)).exit_code == 0
    assert out.read_text(encoding="utf-8-sig").startswith("email")
    wrong = cli("jobs", "template", "delete")
    assert wrong.exit_code == 1 and "does not read a file" in wrong.stderr
