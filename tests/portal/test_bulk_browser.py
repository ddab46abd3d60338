"""The portal's bulk pages in a real Chromium: an occupier admin deletes users in bulk (the admins, themself
included, are left out: a partially done outcome), reads the dialog in French, and deactivates users from
pasted emails. The test plays the background worker (``engine.run_job``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from occupant.accounts import service as accounts
from occupant.accounts.models import AccountRole, AccountStatus, InviteState
from occupant.bulk import engine
from occupant.bulk.models import BulkJob, JobState
from occupant.kit.db import transaction
from occupant.kit.security import hash_password
from occupant.users.models import OccupierUser, UserStatus
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_user
from tests.web.browser import LiveServer, screenshot
from tests.wifi.support import give_wifi

pytestmark = pytest.mark.browser

PASSWORD = "violet harbour 2031"


@dataclass
class World:
    url: str


@pytest.fixture
def world(committed: sessionmaker[Session]) -> Iterator[World]:
    with transaction(committed) as db:
        operator = make_operator(db, name="Acme Workspace")
        london = make_site(db, operator, code="LON01", name="London Bridge", country="GB")
        globex = make_occupier(db, operator, sites_=[london], name="Globex Corporation")
        staff = admin_actor(operator)
        olivia = make_user(db, globex, first_name="Olivia", last_name="Owens", email="olivia@globex.example")
        accounts.set_up_account(db, olivia, role=AccountRole.ADMIN, invite_portal=True, actor=staff)
        db.flush()
        account = accounts.account_of(db, olivia)
        assert account is not None
        account.password_hash = hash_password(PASSWORD)
        account.status, account.portal = AccountStatus.ACTIVE, InviteState.SIGNED_IN
        made = {}
        for first, last in (("Brian", "Baker"), ("Chloe", "Carter"), ("Dev", "Dhillon"), ("Eve", "Evans")):
            made[first] = make_user(
                db, globex, first_name=first, last_name=last, email=f"{first.lower()}@globex.example"
            )
        give_wifi(db, made["Chloe"], limit=3)
        accounts.set_up_account(db, made["Dev"], role=AccountRole.ADMIN, invite_portal=True, actor=staff)
    with LiveServer() as server:
        yield World(url=server.url)


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


def latest_job(factory: sessionmaker[Session]) -> int:
    with factory() as db:
        job_id = db.scalar(select(func.max(BulkJob.id)))
        assert job_id is not None
        return int(job_id)


def sign_in(page: Page, world: World) -> None:
    page.goto(world.url + "/portal/sign-in")
    page.get_by_label("Email").fill("olivia@globex.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("User management")


def test_an_admin_deletes_users_in_bulk_and_admins_are_left_out(
    world: World, page: Page, committed: sessionmaker[Session]
) -> None:
    sign_in(page, world)
    opener = page.get_by_role("link", name="Edit or delete multiple users")
    opener.click()
    expect(page.get_by_role("dialog", name="Edit or delete multiple users")).to_be_visible()
    dialog = page.locator("#bulk-dialog")
    expect(dialog.get_by_role("button", name="Delete users")).to_be_disabled()  # settled
    rows = dialog.locator(".bulk-table tbody")
    expect(rows.get_by_role("row")).to_have_count(5)
    expect(rows.get_by_role("row", name=re.compile("Dev Dhillon"))).to_contain_text("Admin")
    screenshot(page, "portal-bulk-01-dialog")

    dialog.get_by_label("Select all users").check()
    expect(dialog.get_by_role("status")).to_have_text("All 5 users are selected.")
    dialog.get_by_role("button", name="Delete users").click()
    expect(dialog.get_by_role("heading", name="Delete 3 users?")).to_be_visible()
    left_out = dialog.locator(".items-table tbody")
    expect(left_out.get_by_role("row")).to_have_count(2)
    expect(left_out).to_contain_text("Occupier admins cannot be deleted in the portal")
    screenshot(page, "portal-bulk-02-confirm")
    dialog.get_by_role("button", name="Delete users").click()
    expect(dialog.get_by_role("heading", name="Deleting users…")).to_be_visible()
    assert engine.run_job(committed, latest_job(committed)) == JobState.PARTIALLY_DONE
    expect(dialog.get_by_role("heading", name="Partially done", exact=True)).to_be_focused()
    expect(dialog).to_contain_text("Deleted: 3 of 5 users.")
    expect(dialog.locator(".items-table tbody")).to_contain_text("Olivia Owens")
    screenshot(page, "portal-bulk-03-partially-done")
    dialog.get_by_role("link", name="OK").click()
    expect(page.locator("#user-rows").get_by_role("row")).to_have_count(2)  # the two admins remain

    # In French, the same dialog.
    page.context.add_cookies([{"name": "occupant_lang", "value": "fr", "url": world.url}])
    page.reload()
    page.get_by_role("link", name="Modifier ou supprimer plusieurs utilisateurs").click()
    french = page.locator("#bulk-dialog")
    expect(french.get_by_role("heading", name="Modifier ou supprimer plusieurs utilisateurs")).to_be_visible()
    expect(french.get_by_role("button", name="Supprimer les utilisateurs")).to_be_disabled()
    expect(french.get_by_label("Sélectionner tous les utilisateurs")).to_be_visible()
    screenshot(page, "portal-bulk-04-dialog-fr")
    french.get_by_role("button", name="Annuler").click()
    expect(french).to_be_hidden()


def test_an_admin_deactivates_users_from_pasted_emails(
    world: World, page: Page, committed: sessionmaker[Session]
) -> None:
    sign_in(page, world)
    page.get_by_role("link", name="Deactivate users").click()
    page.get_by_label("Email addresses").fill(
        "brian@globex.example, eve@globex.example, nobody@globex.example"
    )
    page.get_by_role("button", name="Check the users").click()
    expect(page.get_by_role("heading", name="Deactivate 2 users?")).to_be_visible()
    expect(page.locator(".items-table tbody")).to_contain_text("No user of your organisation has this email")
    screenshot(page, "portal-bulk-05-deactivate-preview")
    page.get_by_role("link", name="Deactivate users…").click()
    page.get_by_role("dialog", name="Deactivate 2 users?").get_by_role("button", name="Yes, go ahead").click()
    expect(page.get_by_role("heading", name="Deactivating users…")).to_be_visible()
    assert engine.run_job(committed, latest_job(committed)) == JobState.PARTIALLY_DONE
    expect(page.get_by_role("heading", name="Partially done", exact=True)).to_be_visible()
    expect(page.locator("#job-state")).to_have_text("Partially done")
    screenshot(page, "portal-bulk-06-deactivate-results")
    with committed() as db:
        statuses = dict(db.execute(select(OccupierUser.first_name, OccupierUser.status)).tuples().all())
    assert statuses["Brian"] == statuses["Eve"] == UserStatus.DEACTIVATED
    assert statuses["Chloe"] == UserStatus.ACTIVE
