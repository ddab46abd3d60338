"""The portal in a real Chromium: an occupier admin accepts their invitation, signs in, manages users, and is
shut out at their next click once operator staff deactivate them; an occupier user sees their own details.

Screenshots go to ``artifacts/screenshots/portal-*.png`` (the console harness's folder, printed below).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from occupant.accounts import service as accounts
from occupant.accounts.models import AccountRole, AccountStatus, InviteState
from occupant.kit.db import transaction
from occupant.kit.security import hash_password
from occupant.operators.models import Operator
from occupant.users import service as users
from occupant.users.models import OccupierUser
from occupant.wifi.models import WifiAccount
from tests.accounts.app_support import link_token, mails
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_user
from tests.web.browser import SCREENSHOTS, LiveServer, screenshot
from tests.wifi.support import give_wifi, open_session

pytestmark = pytest.mark.browser

PASSWORD = "violet harbour 2031"
USER_PASSWORD = "green meadow 1999"


@dataclass
class World:
    url: str
    invitation: str
    admin_id: int
    brian_id: int
    operator_id: int


@pytest.fixture
def world(committed: sessionmaker[Session]) -> Iterator[World]:
    with transaction(committed) as db:
        operator = make_operator(db, name="Acme Workspace")
        london = make_site(db, operator, code="LON01", name="London Bridge", country="GB", nas=["ap-lon-1"])
        make_site(db, operator, code="MAN01", name="Manchester Piccadilly", country="GB")
        globex = make_occupier(
            db, operator, sites_=[london], name="Globex Corporation", telephony_managed=True
        )
        staff = admin_actor(operator)
        admin = make_user(
            db,
            globex,
            first_name="Olivia",
            last_name="Owens",
            email="olivia@globex.example",
            job_title="Office manager",
        )
        accounts.set_up_account(db, admin, role=AccountRole.ADMIN, invite_portal=True, actor=staff)
        db.flush()
        invitation = link_token(mails(db, admin.id, "app_invitation")[-1])
        people = [
            ("Brian", "Baker", "Analyst"),
            ("Chloe", "Carter", "Designer"),
            ("Dev", "Dhillon", "Engineer"),
            ("Eve", "Evans", "Receptionist"),
        ]
        made = {}
        for first, last, title in people:
            made[first] = make_user(
                db,
                globex,
                first_name=first,
                last_name=last,
                email=f"{first.lower()}@globex.example",
                job_title=title,
            )
        chloe_wifi = give_wifi(db, made["Chloe"], limit=3)
        open_session(
            db, chloe_wifi.username, mac="3C-22-FB-9A-10-4E", nas_identifier="ap-lon-1", minutes_ago=42
        )
        open_session(
            db, chloe_wifi.username, mac="A4-83-E7-01-22-9B", nas_identifier="ap-lon-1", minutes_ago=7
        )
        accounts.set_up_account(db, made["Chloe"], role=AccountRole.USER, invite_portal=True, actor=staff)
        db.flush()
        chloe_account = accounts.account_of(db, made["Chloe"])
        assert chloe_account is not None
        chloe_account.password_hash = hash_password(USER_PASSWORD)
        chloe_account.status = AccountStatus.ACTIVE
        accounts.set_up_account(db, made["Dev"], role=AccountRole.ADMIN, invite_portal=True, actor=staff)
        ids = (admin.id, made["Brian"].id, operator.id)
    with LiveServer() as server:
        print(f"\nportal screenshots: {SCREENSHOTS}/portal-*.png")
        yield World(
            url=server.url, invitation=invitation, admin_id=ids[0], brian_id=ids[1], operator_id=ids[2]
        )


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


def test_an_occupier_admin_from_invitation_to_being_deactivated(
    world: World, page: Page, committed: sessionmaker[Session]
) -> None:
    # The invitation link: choose a password, twice; a mismatch is reported next to its field.
    page.goto(f"{world.url}/portal/invitation/{world.invitation}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome! Choose your password")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD + "x")
    page.get_by_role("button", name="Set password").click()
    expect(page.locator("#password-password_confirm-error")).to_contain_text(
        "The two passwords are not the same."
    )
    screenshot(page, "portal-01-invitation-mismatch")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Set password").click()

    # Then sign in: the admin lands on user management.
    expect(page).to_have_url(re.compile(r"/portal/sign-in$"))
    expect(page.locator(".flash.success")).to_contain_text("Your password is set.")
    page.get_by_label("Email").fill("olivia@globex.example")
    page.get_by_label("Password").fill(PASSWORD)
    screenshot(page, "portal-02-sign-in")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(world.url + "/portal/users")
    table = page.locator(".user-table")
    expect(table.locator("tbody tr")).to_have_count(5)
    expect(page.locator("#user-count")).to_have_text("5 users")
    # The used link is dead.
    with committed() as db:
        olivia = db.get(OccupierUser, world.admin_id)
        assert olivia is not None
        account = accounts.account_of(db, olivia)
        assert account is not None and account.status == AccountStatus.ACTIVE
        assert account.portal == InviteState.SIGNED_IN

    # Columns per row: name, email, role, phone number (telephony managed), Wi-Fi access, user account.
    chloe_row = table.get_by_role("row", name=re.compile("Chloe Carter"))
    expect(chloe_row).to_contain_text("chloe@globex.example")
    expect(chloe_row).to_contain_text("Not assigned")
    expect(chloe_row.locator("td").nth(3)).to_have_text("Active")  # Wi-Fi
    dev_row = table.get_by_role("row", name=re.compile("Dev Dhillon"))
    expect(dev_row.locator("td").nth(1)).to_have_text("Admin")
    expect(dev_row.locator("td").nth(4)).to_have_text("Awaiting sign-in")

    # Row actions show on hover and on keyboard focus; admins' rows have no Delete.
    brian_row = table.get_by_role("row", name=re.compile("Brian Baker"))
    edit = brian_row.get_by_role("link", name="Edit Brian Baker")
    expect(edit).to_have_css("opacity", "0")
    brian_row.hover()
    expect(edit).to_have_css("opacity", "1")
    expect(brian_row.get_by_role("link", name="Delete Brian Baker")).to_have_css("opacity", "1")
    screenshot(page, "portal-03-user-management-hover")
    page.mouse.move(1, 1)
    expect(edit).to_have_css("opacity", "0")
    edit.focus()
    expect(edit).to_have_css("opacity", "1")
    expect(dev_row.get_by_role("link", name=re.compile("Delete"))).to_have_count(0)
    expect(
        table.get_by_role("row", name=re.compile("Olivia Owens")).get_by_role(
            "link", name=re.compile("Delete")
        )
    ).to_have_count(0)

    # Search as you type, by name or email; the address follows.
    search = page.get_by_label("Filter users")
    search.press_sequentially("chlo", delay=30)
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(page.locator("#user-count")).to_have_text("1 user matches “chlo”")
    expect(page).to_have_url(re.compile(r"/portal/users\?q=chlo"))
    screenshot(page, "portal-04-search")
    search.fill("")
    search.press("Enter")
    expect(table.locator("tbody tr")).to_have_count(5)

    # A click on a row opens the user's details, read-only, with "Resend invite" while awaiting sign-in.
    page.locator(".user-table").get_by_role("row", name=re.compile("Dev Dhillon")).locator("td").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dev Dhillon")
    expect(page.get_by_role("button", name="Resend invite")).to_be_visible()
    expect(page.get_by_role("link", name="Delete user")).to_have_count(0)
    page.get_by_role("button", name="Resend invite").click()
    expect(page.locator(".flash.success")).to_contain_text("The invitation was sent again")
    screenshot(page, "portal-05-details-admin-awaiting")

    # Edit a user: basic details, a new Wi-Fi account and an invitation, saved together. Email is fixed.
    page.goto(f"{world.url}/portal/users/{world.brian_id}")
    page.get_by_role("link", name="Edit user details").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit Brian Baker")
    expect(page.get_by_role("textbox", name="Email")).to_have_count(0)
    expect(page.get_by_text("brian@globex.example")).to_be_visible()
    page.get_by_label("Job title").fill("Senior analyst")
    page.get_by_label("Mobile", exact=True).fill("07911 123456")
    homesite = page.get_by_label("Homesite")
    expect(homesite).to_be_hidden()  # shown only when a Wi-Fi account is asked for
    page.get_by_label("Create a Wi-Fi account").check()
    expect(homesite).to_be_visible()
    page.get_by_label("Concurrent device limit").fill("3")
    page.get_by_label("Send invite to portal").check()
    screenshot(page, "portal-06-edit-user")
    page.get_by_role("button", name="Save changes").first.click()
    expect(page).to_have_url(f"{world.url}/portal/users/{world.brian_id}")
    expect(page.locator(".flash.success")).to_contain_text("The changes were saved.")
    expect(page.locator("main")).to_contain_text("Senior analyst")
    expect(page.locator("main")).to_contain_text("+447911123456")
    expect(page.locator("#wifi-title")).to_contain_text("Provisioning")
    expect(page.locator("main")).to_contain_text("Awaiting sign-in")
    screenshot(page, "portal-07-user-details-after-edit")
    with committed() as db:
        assert db.scalar(select(WifiAccount.device_limit).where(WifiAccount.user_id == world.brian_id)) == 3
        assert sorted(m.template for m in mails(db, world.brian_id)) == ["app_invitation", "wifi_password"]

    # Add a user: "Add user" is enabled only once the required fields are valid.
    page.goto(f"{world.url}/portal/users")
    page.get_by_role("link", name="Add a user").click()
    add = page.get_by_role("button", name="Add user").first
    expect(add).to_be_disabled()
    page.get_by_label("First name").fill("Frank")
    page.get_by_label("Last name").fill("Fischer")
    page.get_by_label("Email").fill("frank@globex")
    page.get_by_label("Email").fill("frank@")
    expect(add).to_be_disabled()
    page.get_by_label("Email").fill("frank@globex.example")
    expect(add).to_be_enabled()
    page.get_by_label("Role").select_option("user")
    page.get_by_label("Send invite to mobile app").check()
    screenshot(page, "portal-08-add-user")
    add.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Frank Fischer")
    expect(page.locator(".flash.success")).to_contain_text(
        "The user was added; their invitations are on their way"
    )

    # Delete asks in a dialog; Cancel keeps the user and returns focus.
    page.goto(f"{world.url}/portal/users")
    frank_row = page.locator(".user-table").get_by_role("row", name=re.compile("Frank Fischer"))
    delete = frank_row.get_by_role("link", name="Delete Frank Fischer")
    delete.focus()
    delete.press("Enter")
    dialog = page.get_by_role("dialog", name="Delete Frank Fischer?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("permanent and cannot be reversed")
    screenshot(page, "portal-09-delete-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(delete).to_be_focused()
    delete.click()
    page.get_by_role("dialog", name="Delete Frank Fischer?").get_by_role("button", name="Delete user").click()
    expect(page.locator(".flash.success")).to_contain_text("The user was deleted.")
    expect(page.locator(".user-table").get_by_role("row", name=re.compile("Frank"))).to_have_count(0)

    # Operator staff deactivate the admin: their very next portal request lands on the sign-in page.
    with transaction(committed) as db:
        olivia = db.get(OccupierUser, world.admin_id)
        operator = db.get(Operator, world.operator_id)
        assert olivia is not None and operator is not None
        users.deactivate_user(db, olivia, actor=admin_actor(operator))
    page.get_by_role("link", name="Chloe Carter", exact=True).click()
    expect(page).to_have_url(re.compile(r"/portal/sign-in\?next=%2Fportal%2Fusers%2F\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to your portal")
    screenshot(page, "portal-10-deactivated-back-to-sign-in")
    # ... and cannot sign in again.
    page.get_by_label("Email").fill("olivia@globex.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Email or password is incorrect.")


def test_an_occupier_user_sees_their_details_and_devices_in_their_language(world: World, page: Page) -> None:
    page.goto(world.url + "/portal/users")
    expect(page).to_have_url(re.compile(r"/portal/sign-in\?next=%2Fportal%2Fusers$"))
    page.get_by_label("Email").fill("chloe@globex.example")
    page.get_by_label("Password").fill(USER_PASSWORD)
    page.get_by_label("Password").press("Enter")
    # Not an admin: user management is not theirs.
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    page.goto(world.url + "/portal")
    expect(page).to_have_url(world.url + "/portal/me")
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="User management")
    ).to_have_count(0)
    devices = page.get_by_role("table", name=re.compile("Connected devices"))
    expect(devices.locator("tbody tr")).to_have_count(2)
    expect(devices).to_contain_text("3C-22-FB-9A-10-4E")
    expect(page.locator("main")).to_contain_text("2 of 3")
    screenshot(page, "portal-20-my-details")

    page.get_by_role("link", name="Edit my details").click()
    page.get_by_label("Job title").fill("Lead designer")
    page.get_by_label("Mobile", exact=True).fill("12")
    page.get_by_role("button", name="Save changes").first.click()
    expect(page.locator("#me-mobile-error")).to_contain_text("This is not a valid phone number.")
    expect(page.locator(".error-summary")).to_be_focused()
    screenshot(page, "portal-21-edit-my-details-error")
    page.get_by_label("Mobile", exact=True).fill("")
    page.get_by_role("button", name="Save changes").first.click()
    expect(page.locator(".flash.success")).to_contain_text("Your details were saved.")
    expect(page.locator("main")).to_contain_text("Lead designer")

    # The language switcher: the page follows, and the choice is saved as the user's language.
    page.locator(".lang-menu summary").click()
    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page).to_have_url(world.url + "/portal/me")
    screenshot(page, "portal-22-my-details-fr")


def test_the_portal_works_on_a_narrow_screen(world: World, chromium: object) -> None:
    context = chromium.new_context(viewport={"width": 390, "height": 844})  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(world.url + "/portal/sign-in")
        page.get_by_label("Email").fill("chloe@globex.example")
        page.get_by_label("Password").fill(USER_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(world.url + "/portal/me")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide on a 390px screen"
        screenshot(page, "portal-30-my-details-phone")
    finally:
        context.close()
