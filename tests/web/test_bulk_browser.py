"""The bulk pages in a real Chromium: the "Edit or delete multiple users" dialog from the filters to the
outcome (a partially done delete and its retry), and adding users from a CSV file with bad rows.

The server runs without a worker: the test plays the background worker (``engine.run_job``) when the page
shows the job queued, which lets the screenshots catch the progress view.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from occupant.accounts.models import AccountRole
from occupant.bulk import engine
from occupant.bulk.kinds import KINDS
from occupant.bulk.models import BulkJob, JobState
from occupant.kit.clock import utcnow
from occupant.kit.db import transaction
from occupant.users.models import OccupierUser
from tests.factories import make_account, make_occupier, make_operator, make_site, make_staff, make_user
from tests.web.browser import LiveServer, screenshot
from tests.wifi.support import give_wifi

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
PEOPLE = [
    ("Ada", "Abbott"),
    ("Brian", "Baker"),
    ("Chloe", "Carter"),
    ("Dev", "Dhillon"),
    ("Eve", "Evans"),
    ("Farah", "Faulkner"),
    ("Gus", "Green"),
    ("Hana", "Hughes"),
    ("Ivo", "Ingram"),
    ("Jun", "Jones"),
    ("Kemi", "Khan"),
    ("Lena", "Lopez"),
]


@dataclass
class World:
    url: str
    occupier_id: int
    staff_email: str
    ids: dict[str, int]


@pytest.fixture
def world(committed: sessionmaker[Session]) -> Iterator[World]:
    with transaction(committed) as db:
        operator = make_operator(db, name="Acme Workspace")
        london = make_site(db, operator, code="LON01", name="London Bridge", country="GB")
        leeds = make_site(db, operator, code="LDS01", name="Leeds Dock", country="GB")
        globex = make_occupier(db, operator, sites_=[london, leeds], name="Globex Corporation")
        ids = {}
        for n, (first, last) in enumerate(PEOPLE):
            user = make_user(
                db, globex, first_name=first, last_name=last, email=f"{first.lower()}@globex.example"
            )
            ids[first] = user.id
            if n % 3 != 2:  # two users in three have Wi-Fi, at either site
                give_wifi(db, user, homesite=london if n % 2 else leeds, limit=2 + n % 2)
            if n % 4 == 0:
                make_account(db, user, role=AccountRole.USER, portal=True, mobile_app=n % 8 == 0)
        busy = db.get(OccupierUser, ids["Lena"])  # a number assignment under way: not offered
        assert busy is not None
        busy.busy_owner, busy.busy_until = "telephony:1", utcnow() + timedelta(hours=1)
        staff = make_staff(db, operator, email="admin@acme.example", password=PASSWORD)
        occupier_id, staff_email = globex.id, staff.email
    with LiveServer() as server:
        yield World(url=server.url, occupier_id=occupier_id, staff_email=staff_email, ids=ids)


@pytest.fixture
def page(chromium: object) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1360, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(10_000)
    expect.set_options(timeout=10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page: Page, world: World) -> None:
    page.goto(world.url + "/sign-in")
    page.get_by_label("Email").fill(world.staff_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(world.url + "/occupiers")


def open_dialog(page: Page) -> None:
    """Open the dialog and wait until htmx has settled it (console.js then disables "Delete users")."""
    page.get_by_role("link", name="Edit or delete multiple users").click()
    expect(page.get_by_role("dialog", name="Edit or delete multiple users")).to_be_visible()
    expect(page.locator("#bulk-dialog").get_by_role("button", name="Delete users")).to_be_disabled()


def latest_job(factory: sessionmaker[Session]) -> int:
    with factory() as db:
        job_id = db.scalar(select(func.max(BulkJob.id)))
        assert job_id is not None
        return int(job_id)


def test_delete_users_with_filters_select_all_a_partial_outcome_and_retry(
    world: World, page: Page, committed: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(type(KINDS["delete"]), "chunk_size", 2)
    sign_in(page, world)
    page.goto(world.url + f"/occupiers/{world.occupier_id}/users")
    opener = page.get_by_role("link", name="Edit or delete multiple users")
    opener.click()
    expect(page.get_by_role("dialog", name="Edit or delete multiple users")).to_be_visible()
    dialog = page.locator("#bulk-dialog")  # its name follows the step it shows
    table = dialog.locator(".bulk-table tbody")
    # Busy users are not offered (seed 000), and the list says so.
    expect(table.get_by_role("row")).to_have_count(11)
    expect(table).not_to_contain_text("Lena Lopez")
    expect(dialog.locator("#bulk-count")).to_contain_text("1 user with an action in progress is not listed")
    # Nothing selected: nothing can be deleted yet.
    delete = dialog.get_by_role("button", name="Delete users")
    expect(delete).to_be_disabled()
    expect(dialog.get_by_role("status")).to_have_text("No users selected")
    screenshot(page, "bulk-01-dialog")

    # The filters offer the values the users have; one filters the list as it changes.
    wifi = dialog.get_by_label("Filter by Wi-Fi account")
    expect(wifi.locator("option")).to_have_text(["All", "No Wi-Fi account", "Active"])
    wifi.focus()
    wifi.select_option(label="Active")
    expect(table.get_by_role("row")).to_have_count(8)
    expect(table).not_to_contain_text("Chloe Carter")  # no Wi-Fi
    expect(wifi).to_be_focused()  # the list changed around the menu, not the menu itself
    dialog.get_by_label("Filter by Wi-Fi homesite").select_option(label="LDS01 · Leeds Dock")
    expect(table.get_by_role("row")).to_have_count(4)

    # "Select all users" selects the visible users and says it stands for all matching the filters.
    select_all = dialog.get_by_label("Select all users")
    select_all.check()
    expect(table.get_by_role("checkbox", checked=True)).to_have_count(4)
    expect(dialog.get_by_role("status")).to_have_text("All 4 users matching these filters are selected.")
    expect(delete).to_be_enabled()
    screenshot(page, "bulk-02-select-all")
    # Clearing it clears the rows; a single row can be picked and dropped.
    select_all.uncheck()
    expect(table.get_by_role("checkbox", checked=True)).to_have_count(0)
    expect(delete).to_be_disabled()
    table.get_by_label(re.compile("Ada Abbott")).check()
    expect(dialog.get_by_role("status")).to_have_text("1 user selected")
    select_all.check()

    delete.click()
    expect(dialog.get_by_role("heading", name="Delete 4 users?")).to_be_visible()
    expect(dialog).to_contain_text("This is permanent")
    screenshot(page, "bulk-03-confirm")
    # Meanwhile something else takes hold of one of them: it is left out when the job starts.
    with transaction(committed) as db:
        gus = db.get(OccupierUser, world.ids["Gus"])
        assert gus is not None
        gus.busy_owner, gus.busy_until = "wifi:99", utcnow() + timedelta(hours=1)
    dialog.get_by_role("button", name="Delete users").click()
    expect(dialog.get_by_role("heading", name="Deleting users…")).to_be_focused()
    progress = dialog.get_by_role("progressbar")
    expect(progress).to_have_attribute("max", "4")
    job_id = latest_job(committed)
    with transaction(committed) as db:  # the worker's first chunk
        engine._run_chunk(db, job_id, {})
    expect(dialog.locator("#job-progress-text")).to_have_text(
        "3 of 4 processed · Deleted: 2 · Not deleted: 1"
    )
    screenshot(page, "bulk-04-progress")
    assert engine.run_job(committed, job_id) == JobState.PARTIALLY_DONE

    # Partially done: the user left out is listed with the reason; the others are gone.
    expect(dialog.get_by_role("heading", name="Partially done", exact=True)).to_be_focused()
    expect(dialog).to_contain_text("Deleted: 3 of 4 users. Not deleted: 1, listed below.")
    failed = dialog.locator(".items-table tbody")
    expect(failed.get_by_role("row")).to_have_count(1)
    expect(failed).to_contain_text("Gus Green")
    expect(failed).to_contain_text("An action was in progress for this user")
    expect(dialog.get_by_role("link", name="Download results")).to_be_visible()
    screenshot(page, "bulk-05-partially-done")

    # Retry failed, once the other action has finished: a new confirmation, then Done.
    with transaction(committed) as db:
        gus = db.get(OccupierUser, world.ids["Gus"])
        assert gus is not None
        gus.busy_owner, gus.busy_until = None, None
    dialog.get_by_role("button", name="Retry failed").click()
    expect(dialog.get_by_role("heading", name="Delete 1 user?")).to_be_visible()
    dialog.get_by_role("button", name="Delete users").click()
    expect(dialog.get_by_role("heading", name="Deleting users…")).to_be_visible()
    assert engine.run_job(committed, latest_job(committed)) == JobState.DONE
    expect(dialog.get_by_role("heading", name="Done", exact=True)).to_be_focused()
    expect(dialog).to_contain_text("Deleted: 1 user.")
    screenshot(page, "bulk-06-done")
    dialog.get_by_role("link", name="OK").click()
    users = page.locator(".user-list")
    for name in ("Ada Abbott", "Eve Evans", "Kemi Khan", "Gus Green"):
        expect(users).not_to_contain_text(name)
    expect(users).to_contain_text("Brian Baker")


def test_edit_and_more_actions_from_the_dialog(
    world: World, page: Page, committed: sessionmaker[Session]
) -> None:
    sign_in(page, world)
    page.goto(world.url + f"/occupiers/{world.occupier_id}/users")
    open_dialog(page)
    dialog = page.locator("#bulk-dialog")
    dialog.get_by_label("Filter by Wi-Fi account").select_option(label="No Wi-Fi account")
    expect(dialog.locator(".bulk-table tbody").get_by_role("row")).to_have_count(3)
    dialog.get_by_label("Select all users").check()
    dialog.get_by_role("button", name="Edit users…").click()
    expect(page.get_by_role("dialog", name=re.compile("Edit all 3 users"))).to_be_visible()
    edit = dialog
    edit.get_by_label(re.compile("Create a Wi-Fi account")).check()
    edit.get_by_role("button", name="Review the changes").click()  # no homesite: said on the form
    expect(edit.locator(".error-summary")).to_contain_text("homesite")
    edit.get_by_label("Wi-Fi homesite").select_option(label="LON01 · London Bridge")
    edit.get_by_label("Concurrent device limit").fill("3")
    screenshot(page, "bulk-07-edit")
    edit.get_by_role("button", name="Review the changes").click()
    expect(edit.get_by_role("heading", name="Apply these changes to 3 users?")).to_be_visible()
    expect(edit.locator(".change-list")).to_contain_text("Create a Wi-Fi account for users without one")
    screenshot(page, "bulk-08-edit-confirm")
    edit.get_by_role("button", name="Apply changes").click()
    expect(edit.get_by_role("heading", name="Applying the changes…")).to_be_visible()
    assert engine.run_job(committed, latest_job(committed)) == JobState.DONE
    expect(edit.get_by_role("heading", name="Done", exact=True)).to_be_visible()
    edit.get_by_role("link", name="OK").click()

    # Another action from "More actions": deactivate the users that have Wi-Fi at LDS01.
    open_dialog(page)
    dialog = page.locator("#bulk-dialog")
    expect(dialog.get_by_label("Filter by Wi-Fi account").locator("option")).to_have_text(
        ["All", "No Wi-Fi account", "Provisioning", "Active"]
    )
    dialog.get_by_label("Filter by Wi-Fi homesite").select_option(label="LDS01 · Leeds Dock")
    expect(dialog.locator(".bulk-table tbody").get_by_role("row")).to_have_count(4)
    dialog.get_by_label("Select all users").check()
    dialog.locator("summary", has_text="More actions").click()
    screenshot(page, "bulk-09-more-actions")
    dialog.get_by_role("button", name="Deactivate users…").click()
    expect(dialog.get_by_role("heading", name="Deactivate 4 users?")).to_be_visible()
    # Cancel discards the preview and closes the dialog; focus goes back to the button that opened it.
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    with committed() as db:
        assert db.scalar(select(BulkJob.state).order_by(BulkJob.id.desc()).limit(1)) == JobState.CANCELLED


def test_deactivate_users_from_pasted_emails(
    world: World, page: Page, committed: sessionmaker[Session]
) -> None:
    sign_in(page, world)
    page.goto(world.url + f"/occupiers/{world.occupier_id}/users")
    page.get_by_role("link", name="Deactivate users").click()
    expect(page.get_by_role("heading", name="Deactivate users")).to_be_visible()
    page.get_by_role("button", name="Check the users").click()  # nothing given: said on the page
    expect(page.locator(".error-summary")).to_be_focused()
    page.get_by_label("Email addresses").fill(
        "brian@globex.example\nnobody@globex.example\nchloe@globex.example"
    )
    screenshot(page, "bulk-10-deactivate-page")
    page.get_by_role("button", name="Check the users").click()
    expect(page.get_by_role("heading", name="Deactivate 2 users?")).to_be_visible()
    rows = page.locator(".items-table tbody")
    expect(rows).to_contain_text("nobody@globex.example")
    expect(rows).to_contain_text("No user has the email nobody@globex.example.")
    page.get_by_role("link", name="All rows").click()
    expect(rows.get_by_role("row")).to_have_count(3)
    screenshot(page, "bulk-11-deactivate-preview")
    # The pop-up asks once more (seed 004: "Yes, deactivate users").
    page.get_by_role("link", name="Deactivate 2 users…").click()
    confirm = page.get_by_role("dialog", name="Deactivate 2 users?")
    expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Yes, deactivate users").click()
    expect(page.get_by_role("heading", name="Deactivating users…")).to_be_visible()
    assert engine.run_job(committed, latest_job(committed)) == JobState.PARTIALLY_DONE
    expect(page.get_by_role("heading", name="Partially done", exact=True)).to_be_visible()  # the page polls
    expect(page.locator("main")).to_contain_text("Deactivated: 2 of 3 users.")
    screenshot(page, "bulk-12-deactivate-results")
    with committed() as db:
        statuses = dict(db.execute(select(OccupierUser.first_name, OccupierUser.status)).tuples().all())
    assert statuses["Brian"] == statuses["Chloe"] == "DEACTIVATED" and statuses["Ada"] == "ACTIVE"

    # The Jobs page has it, with its counts.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("row", name=re.compile("Deactivate users"))).to_contain_text("Partially done")
    screenshot(page, "bulk-13-jobs")


def test_add_users_from_a_csv_file_with_bad_rows(
    world: World, page: Page, committed: sessionmaker[Session], tmp_path: object
) -> None:
    from pathlib import Path

    rows = [
        "first_name,last_name,email",
        "Mia,Moss,mia@globex.example",
        "Noah,Nash,noah@globex.example",
        ",Owens,olive@globex.example",
        "Pia,Park,not-an-email",
        "Quinn,Quest,ada@globex.example",
        "Rae,Reed,mia@globex.example",
    ]
    file = Path(str(tmp_path)) / "new-starters.csv"
    file.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    sign_in(page, world)
    page.goto(world.url + f"/occupiers/{world.occupier_id}/users")
    page.get_by_role("link", name="Add multiple users").click()
    expect(page.get_by_role("heading", name="Add multiple users")).to_be_visible()
    page.get_by_role("button", name="Check the file").click()  # no file: said next to the field
    expect(page.locator("#up-file-error")).to_contain_text("Choose a CSV file to upload.")
    page.get_by_label(re.compile("CSV file")).set_input_files(str(file))
    screenshot(page, "bulk-14-import-page")
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("heading", name="Add 2 users?")).to_be_visible()
    problems = page.locator(".items-table tbody")
    expect(problems.get_by_role("row")).to_have_count(4)
    for line in ("4", "5", "6", "7"):
        expect(problems.get_by_role("cell", name=line, exact=True)).to_be_visible()
    screenshot(page, "bulk-15-import-preview")
    page.get_by_role("link", name="Add 2 users…").click()
    page.get_by_role("dialog", name="Add 2 users?").get_by_role("button", name="Yes, add users").click()
    expect(page.get_by_role("heading", name="Adding users…")).to_be_visible()
    screenshot(page, "bulk-16-import-progress")
    assert engine.run_job(committed, latest_job(committed)) == JobState.PARTIALLY_DONE
    expect(page.get_by_role("heading", name="Partially done", exact=True)).to_be_visible()
    expect(page.locator("main")).to_contain_text("Done: 2 of 6 rows.")
    expect(page.get_by_role("link", name="Download results")).to_be_visible()
    screenshot(page, "bulk-17-import-results")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download results").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "row,identifier,status,outcome,code,message"
    assert "mia@globex.example" in text


def test_the_dialog_works_without_javascript(
    world: World, chromium: object, committed: sessionmaker[Session]
) -> None:
    context = chromium.new_context(viewport={"width": 1360, "height": 900}, java_script_enabled=False)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        sign_in(page, world)
        page.goto(world.url + f"/occupiers/{world.occupier_id}/users")
        page.get_by_role("link", name="Edit or delete multiple users").click()  # a page, not a dialog
        expect(page.get_by_role("heading", name="Edit or delete multiple users")).to_be_visible()
        page.get_by_label("Filter by Wi-Fi account").select_option(label="No Wi-Fi account")
        page.get_by_role("button", name="Apply filters").click()
        rows = page.locator(".bulk-table tbody")
        expect(rows.get_by_role("row")).to_have_count(3)
        screenshot(page, "bulk-18-no-js-list")
        rows.get_by_label(re.compile("Chloe Carter")).check()
        rows.get_by_label(re.compile("Farah Faulkner")).check()
        page.get_by_role("button", name="Delete users").click()
        expect(page.get_by_role("heading", name="Delete 2 users?")).to_be_visible()
        page.get_by_role("button", name="Delete users").click()
        expect(page.get_by_role("heading", name="Deleting users…")).to_be_visible()
        assert engine.run_job(committed, latest_job(committed)) == JobState.DONE
        page.reload()
        expect(page.get_by_role("heading", name="Done", exact=True)).to_be_visible()
        screenshot(page, "bulk-19-no-js-done")
    finally:
        context.close()


class WorkingServer(LiveServer):
    """The app as ``occupant serve`` runs it: with the background worker (huey's consumer) inside."""

    def __init__(self) -> None:
        import threading

        import uvicorn

        from occupant.web.app import create_app
        from tests.web.browser import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(run_worker=True), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)


def test_the_background_worker_runs_the_job_while_the_dialog_polls(
    committed: sessionmaker[Session], page: Page
) -> None:
    from occupant.worker.queue import huey

    with transaction(committed) as db:
        operator = make_operator(db, name="Acme Workspace")
        globex = make_occupier(db, operator, name="Globex Corporation")
        for first in ("Ada", "Brian", "Chloe"):
            make_user(db, globex, first_name=first, last_name="Test", email=f"{first.lower()}@globex.example")
        staff = make_staff(db, operator, email="admin@acme.example", password=PASSWORD)
        occupier_id, staff_email = globex.id, staff.email
    huey.flush()  # nothing left over from other tests
    with WorkingServer() as server:
        world = World(url=server.url, occupier_id=occupier_id, staff_email=staff_email, ids={})
        sign_in(page, world)
        page.goto(world.url + f"/occupiers/{occupier_id}/users")
        open_dialog(page)
        dialog = page.locator("#bulk-dialog")
        dialog.get_by_label("Select all users").check()
        dialog.get_by_role("button", name="Delete users").click()
        expect(dialog.get_by_role("heading", name="Delete 3 users?")).to_be_visible()
        dialog.get_by_role("button", name="Delete users").click()
        expect(dialog.get_by_role("heading", name="Done", exact=True)).to_be_visible(timeout=20_000)
        expect(dialog).to_contain_text("Deleted: 3 users.")
    with committed() as db:
        assert db.scalar(select(func.count()).select_from(OccupierUser)) == 0
