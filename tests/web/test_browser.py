"""The console in a real Chromium: what an operator admin does on a working day, step by step."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from occupant.groups import service as groups
from occupant.kit.db import transaction
from occupant.notify.models import OutboxMessage
from occupant.users.models import OccupierUser, UserStatus
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_staff, make_user
from tests.web.browser import LiveServer, screenshot
from tests.wifi.support import give_wifi, open_session

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


@dataclass
class World:
    url: str
    occupier_id: int
    staff_email: str
    ada_id: int


@pytest.fixture
def world(committed: sessionmaker[Session]) -> Iterator[World]:
    with transaction(committed) as db:
        operator = make_operator(db, name="Acme Workspace")
        london = make_site(db, operator, code="LON01", name="London Bridge", country="GB", nas=["ap-lon-1"])
        globex = make_occupier(db, operator, sites_=[london], name="Globex Corporation")
        make_occupier(db, operator, sites_=[london], name="Initech")
        groups.create_group(db, actor=admin_actor(operator), name="Door access floor 3", site_id=london.id)
        people = [
            ("Ada", "Abbott"),
            ("Brian", "Baker"),
            ("Chloe", "Carter"),
            ("Dev", "Dhillon"),
            ("Eve", "Evans"),
        ]
        created = []
        for first, last in people:
            user = make_user(
                db,
                globex,
                first_name=first,
                last_name=last,
                email=f"{first.lower()}@globex.example",
                job_title="Analyst",
            )
            created.append(user)
        ada = created[0]
        account = give_wifi(db, ada, limit=3)
        open_session(db, account.username, mac="3C-22-FB-9A-10-4E", nas_identifier="ap-lon-1", minutes_ago=42)
        staff = make_staff(db, operator, email="admin@acme.example", password=PASSWORD)
        occupier_id, staff_email, ada_id = globex.id, staff.email, ada.id
    with LiveServer() as server:
        yield World(url=server.url, occupier_id=occupier_id, staff_email=staff_email, ada_id=ada_id)


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


def test_operator_admin_manages_an_occupiers_users(
    world: World, page: Page, committed: sessionmaker[Session]
) -> None:
    # Signed out, a console page sends us to sign in, and back afterwards.
    page.goto(world.url + "/occupiers")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Foccupiers$"))
    page.get_by_label("Email").fill(world.staff_email)
    page.get_by_label("Password").fill(PASSWORD)
    screenshot(page, "01-sign-in")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(world.url + "/occupiers")
    expect(page.get_by_role("row", name=re.compile("Initech"))).to_be_visible()

    # Occupiers are filtered as you type; the address follows, so a reload shows the same list.
    page.get_by_label("Search occupiers").press_sequentially("glo", delay=30)
    expect(page.get_by_role("row", name=re.compile("Initech"))).to_have_count(0)
    expect(page.get_by_role("link", name="Globex Corporation")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/occupiers\?q=glo"))
    screenshot(page, "02-occupiers-search")

    # The Users tab opens with the top user selected.
    page.get_by_role("link", name="Globex Corporation").click()
    page.get_by_role("navigation", name="Occupier").get_by_role("link", name="Users").click()
    users = page.locator(".user-list")
    expect(users.locator("a[aria-current=true]")).to_contain_text("Ada Abbott")
    expect(page.locator("#pane-title")).to_have_text("Ada Abbott")
    expect(page.get_by_text("5 users")).to_be_visible()
    screenshot(page, "03-users-tab")

    # Users are filtered as you type, by name or email; choosing one shows their details.
    search = page.get_by_label("Search users by name or email")
    search.press_sequentially("chloe@", delay=30)
    expect(users.get_by_role("link")).to_have_count(1)
    expect(page.locator("#user-status")).to_have_text(re.compile("1 user matches"))
    users.get_by_role("link", name=re.compile("Chloe Carter")).click()
    expect(page.locator("#pane-title")).to_have_text("Chloe Carter")
    expect(page).to_have_url(re.compile(r"/users/\d+\?q=chloe%40"))
    search.fill("")
    search.press("Enter")
    expect(users.get_by_role("link")).to_have_count(5)

    # Add a user: a bad email and phone come back as errors next to their fields, with what was typed kept.
    page.get_by_role("link", name="Add user").click()
    wizard = page.locator("#user-detail")
    expect(wizard.get_by_role("heading", name=re.compile("Add a user"))).to_be_visible()
    wizard.get_by_label("First name").fill("Frank")
    wizard.get_by_label("Last name").fill("Fischer")
    wizard.get_by_label("Email").fill("frank@@globex")
    wizard.get_by_label("Mobile").fill("12")
    wizard.get_by_role("button", name="Next").click()
    expect(wizard.locator("fieldset.step > legend")).to_contain_text("Wi-Fi")  # optional: left unticked
    wizard.get_by_role("button", name="Next").click()
    expect(wizard.locator("fieldset.step > legend")).to_contain_text("Access groups")
    wizard.get_by_label(re.compile("Door access floor 3")).check()
    wizard.get_by_role("button", name="Next").click()
    expect(wizard.locator("fieldset.step > legend")).to_contain_text("User account")  # optional: no invite
    wizard.get_by_role("button", name="Add user").click()
    expect(wizard.locator("fieldset.step > legend")).to_contain_text("User details")
    expect(wizard.locator("#new-email-error")).to_contain_text("Not a valid email address")
    expect(wizard.locator("#new-mobile-error")).to_contain_text("Not a valid phone number")
    expect(wizard.get_by_label("First name")).to_have_value("Frank")
    expect(wizard.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".error-summary")).to_be_focused()
    screenshot(page, "04-add-user-errors")
    wizard.get_by_label("Email").fill("frank@globex.example")
    wizard.get_by_label("Mobile").fill("07911 123456")
    wizard.get_by_role("button", name="Next").click()
    expect(wizard.locator("fieldset.step > legend")).to_contain_text("Wi-Fi")
    wizard.get_by_role("button", name="Next").click()
    expect(wizard.get_by_label(re.compile("Door access floor 3"))).to_be_checked()
    screenshot(page, "05-add-user-groups-step")
    wizard.get_by_role("button", name="Next").click()
    expect(wizard.get_by_label("Send invite to portal")).not_to_be_checked()
    wizard.get_by_role("button", name="Add user").click()
    expect(page.get_by_role("status").filter(has_text="The user was added.")).to_be_visible()
    detail = page.locator("#user-detail")
    expect(detail.locator("#pane-title")).to_have_text("Frank Fischer")
    expect(detail).to_contain_text("+447911123456")
    expect(detail.locator(".tag")).to_have_text("Door access floor 3")
    expect(users.locator("a[aria-current=true]")).to_contain_text("Frank Fischer")

    # Edit: the details and the list row change in place.
    detail.get_by_role("link", name="Edit").click()
    expect(detail.get_by_label("First name")).to_be_focused()  # settled: typing no longer races the autofocus
    detail.get_by_label("Job title").fill("Head of Facilities")
    detail.get_by_label("Last name").fill("Fischer-Lang")
    screenshot(page, "06-edit-user")
    detail.get_by_role("button", name="Save").click()
    expect(detail).to_contain_text("Head of Facilities")
    expect(detail.locator("#pane-title")).to_have_text("Frank Fischer-Lang")
    expect(users.get_by_role("link", name=re.compile("Frank Fischer-Lang"))).to_be_visible()

    # Deactivate and reactivate.
    detail.get_by_role("button", name="Deactivate").click()
    expect(detail.locator(".pane-header .badge")).to_have_text("Deactivated")
    expect(users.get_by_role("link", name=re.compile("Frank Fischer-Lang")).locator(".badge")).to_have_text(
        "Deactivated"
    )
    screenshot(page, "07-user-deactivated")
    detail.get_by_role("button", name="Reactivate").click()
    expect(detail.locator(".pane-header .badge")).to_have_text("Active")

    # Change email: both addresses are notified through the outbox.
    detail.get_by_role("link", name="Change email").click()
    detail.get_by_label("New email").fill("frank.fischer@globex.example")
    detail.get_by_role("button", name="Change email").click()
    expect(detail).to_contain_text("frank.fischer@globex.example")
    with committed() as db:
        user = db.scalars(select(OccupierUser).where(OccupierUser.first_name == "Frank")).one()
        assert user.status == UserStatus.ACTIVE
        mail = set(
            db.execute(
                select(OutboxMessage.template, OutboxMessage.to_address).where(
                    OutboxMessage.occupier_user_id == user.id
                )
            ).all()
        )
    assert mail == {
        ("email_changed_old", "frank@globex.example"),
        ("email_changed_new", "frank.fischer@globex.example"),
    }

    # Delete, with a confirmation dialog: Cancel keeps the user, and focus returns to the button.
    delete = detail.get_by_role("link", name="Delete")
    delete.click()
    dialog = page.get_by_role("dialog", name=re.compile("Delete Frank Fischer-Lang"))
    expect(dialog).to_be_visible()
    screenshot(page, "08-delete-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()
    delete.click()
    dialog.get_by_role("button", name="Delete user").click()
    expect(page.get_by_role("status").filter(has_text="The user was deleted.")).to_be_visible()
    expect(users.get_by_role("link", name=re.compile("Frank"))).to_have_count(0)
    expect(page.get_by_text("5 users")).to_be_visible()
    with committed() as db:
        assert (
            db.scalar(
                select(func.count()).select_from(OccupierUser).where(OccupierUser.first_name == "Frank")
            )
            == 0
        )

    # Sign out: the session ends on the server, and console pages ask to sign in again.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.goto(world.url + f"/occupiers/{world.occupier_id}/users")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))


def test_console_pages_look_right_and_work_by_keyboard(world: World, page: Page) -> None:
    page.goto(world.url + "/sign-in")
    page.get_by_label("Email").fill(world.staff_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page).to_have_url(world.url + "/occupiers")

    # The skip link is the first stop for the keyboard, and lands on the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    tour = [
        ("/occupiers", "Occupiers", "10-occupiers"),
        (f"/occupiers/{world.occupier_id}", "Globex Corporation", "11-occupier-overview"),
        (f"/occupiers/{world.occupier_id}/groups", "Globex Corporation", "12-occupier-groups"),
        ("/sites", "Sites", "13-sites"),
        ("/groups", "Access groups", "14-groups"),
        ("/audit", "Audit log", "15-audit"),
        ("/api-keys", "API keys", "16-api-keys"),
        ("/mailbox", "Mailbox", "17-mailbox"),
    ]
    for path, heading, shot in tour:
        page.goto(world.url + path)
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        screenshot(page, shot)

    # Decommissioning asks first, in a dialog that Escape closes.
    page.goto(world.url + f"/occupiers/{world.occupier_id}")
    page.get_by_role("link", name="Decommission…").click()
    dialog = page.get_by_role("dialog", name=re.compile("Decommission Globex"))
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # Wi-Fi Secure: "Reset Wi-Fi password" shows on hover of the section, and on keyboard focus.
    page.goto(world.url + f"/occupiers/{world.occupier_id}/users/{world.ada_id}")
    section = page.locator(".wifi-section")
    expect(section).to_contain_text("3C-22-FB-9A-10-4E")
    reset = section.get_by_role("link", name="Reset Wi-Fi password")
    expect(reset).to_have_css("opacity", "0")
    section.hover()
    expect(reset).to_have_css("opacity", "1")
    screenshot(page, "30-wifi-section")
    page.mouse.move(1, 1)
    expect(reset).to_have_css("opacity", "0")
    reset.focus()
    expect(reset).to_have_css("opacity", "1")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name=re.compile("Reset the Wi-Fi password of Ada Abbott"))
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(reset).to_be_focused()

    # An API key is shown once, selected for copying.
    page.goto(world.url + "/api-keys")
    page.get_by_label("Name").fill("HR sync")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_label("New API key")).to_have_value(re.compile(r"^occ_"))
    screenshot(page, "18-api-key-created")
