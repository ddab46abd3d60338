"""App accounts in the console: the User account section of the user details and its buttons, the
add-user wizard's User account step, and the account state in the users list."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from occupant.accounts import service
from occupant.accounts.models import AccountRole, App
from occupant.audit.models import AuditEvent
from occupant.authz.actor import Role
from occupant.kit.db import transaction
from occupant.occupiers import service as occupiers
from occupant.users.models import OccupierUser
from tests.accounts.app_support import activate, invite, mails
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_staff, make_user
from tests.web.browser import LiveServer, screenshot
from tests.web.conftest import Console, text_of


def users_url(c: Console, user: OccupierUser | None = None, occupier_id: int | None = None) -> str:
    base = f"/occupiers/{occupier_id or c.occupier.id}/users"
    return f"{base}/{user.id}" if user is not None else base


def section(html: str) -> str:
    return html.split('<section class="detail-section account-section"')[1].split("</section>")[0]


def test_a_user_without_an_account_is_set_up_and_invited_from_the_details(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier, first_name="Ada", last_name="Abbott", language="fr")
    page = c.get(users_url(c, user))
    assert page.status_code == 200
    part = section(page.text)
    assert "User account Not invited" in text_of(part)
    assert (
        'name="invite_portal" type="checkbox"' in part and 'name="invite_mobile_app" type="checkbox"' in part
    )
    assert '<option value="user" selected>' in part and "Save user account" in part
    assert "Resend invitation" not in part and "Deactivate account" not in part

    done = c.post(
        users_url(c, user) + "/account/set-up",
        {"role": "admin", "invite_portal": "on"},
        htmx="user-detail",
    )
    assert done.status_code == 200, text_of(done.text)[:300]
    text = text_of(done.text)
    assert "The invitation is on its way by email." in text
    shown = text_of(section(done.text))
    assert "User account Awaiting sign in" in shown and "Role Admin" in shown
    assert "Portal Invited, not signed in yet" in shown and "Mobile app Not invited" in shown
    assert "Invite to mobile app" in shown and "Invite to portal" not in shown
    assert (
        "Resend invitation" in shown and "Send welcome email" in shown and "Send password reset" not in shown
    )
    # The list row changes in place.
    assert f'id="user-row-{user.id}" hx-swap-oob="true"' in done.text and "App awaiting sign in" in done.text
    c.db.expire_all()
    [mail] = mails(c.db, user.id)
    assert (mail.template, mail.language) == ("app_invitation", "fr")

    second = c.post(users_url(c, user) + "/account/invite/mobile-app", htmx="user-detail")
    assert "Mobile app Invited, not signed in yet" in text_of(section(second.text))
    c.db.expire_all()
    assert [m.template for m in mails(c.db, user.id)] == ["app_invitation", "app_second_invitation"]
    assert (
        c.post(users_url(c, user) + "/account/invite/carrier-pigeon", htmx="user-detail").status_code == 404
    )


def test_set_up_without_an_invitation_sets_only_the_role_and_bad_input_is_shown(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier)
    bad = c.post(users_url(c, user) + "/account/set-up", {"role": "owner"}, htmx="user-detail")
    assert bad.status_code == 422
    assert 'id="account-role-error"' in bad.text and "Role:" in text_of(bad.text)
    c.db.expire_all()
    assert service.account_of(c.db, user) is None

    saved = c.post(users_url(c, user) + "/account/set-up", {"role": "admin"}, htmx="user-detail")
    assert saved.status_code == 200 and "The user account was saved." in text_of(saved.text)
    shown = text_of(section(saved.text))
    assert "User account Not invited" in shown and "Role Admin" in shown
    assert "Invite to portal" in shown and "Invite to mobile app" in shown
    c.db.expire_all()
    assert mails(c.db, user.id) == []


def test_only_the_apps_the_occupier_offers_are_offered(console: Console) -> None:
    c = console
    portal_only = make_occupier(c.db, c.operator, sites_=[c.site], name="Initech", mobile_app_offered=False)
    user = make_user(c.db, portal_only)
    part = section(c.get(users_url(c, user, portal_only.id)).text)
    assert 'name="invite_portal"' in part and 'name="invite_mobile_app"' not in part

    invite(c.db, user, App.PORTAL)
    shown = text_of(section(c.get(users_url(c, user, portal_only.id)).text))
    assert "Mobile app Not offered by Initech" in shown and "Invite to mobile app" not in shown
    # The action refuses it too, whatever the page showed.
    refused = c.post(users_url(c, user, portal_only.id) + "/account/invite/mobile-app", htmx="user-detail")
    assert refused.status_code == 422

    neither = make_occupier(
        c.db, c.operator, sites_=[c.site], name="Hooli", portal_offered=False, mobile_app_offered=False
    )
    nobody = make_user(c.db, neither)
    part = section(c.get(users_url(c, nobody, neither.id)).text)
    assert "Hooli offers neither the portal nor the mobile app." in text_of(part)
    assert "<form" not in part


def test_the_buttons_of_an_active_account_work(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier, first_name="Ada", last_name="Abbott")
    activate(c.db, user)
    base = users_url(c, user) + "/account"
    part = section(c.get(users_url(c, user)).text)
    for button in ("Send password reset", "Send welcome email", "Deactivate account", "Change role"):
        assert button in part, button
    assert 'data-dialog="account-force-reset-dialog">Force password reset' in part
    assert 'id="account-force-reset-dialog"' in part and "Resend invitation" not in part

    reset = c.post(base + "/password-reset", htmx="user-detail")
    assert "A password-reset link is on its way by email." in text_of(reset.text)
    welcome = c.post(base + "/welcome", htmx="user-detail")
    assert "The welcome email is on its way." in text_of(welcome.text)
    c.db.expire_all()
    assert [m.template for m in mails(c.db, user.id)][-2:] == ["password_reset", "welcome"]

    # Without JavaScript the force reset asks on a pane of its own; the plain form then goes back to the user.
    confirm = c.get(base + "/force-password-reset")
    assert confirm.status_code == 200 and "Force Ada Abbott to choose a new password?" in confirm.text
    forced = c.post(base + "/force-password-reset")
    assert forced.status_code == 303 and forced.headers["location"] == users_url(c, user)
    shown = c.get(forced.headers["location"]).text
    assert "The user was signed out and must choose a new password to sign in." in shown
    assert "A password reset was forced" in shown

    role = c.post(base + "/role", {"role": "admin"}, htmx="user-detail")
    assert "The role was changed." in text_of(role.text) and "Role Admin" in text_of(section(role.text))

    off = c.post(base + "/deactivate", htmx="user-detail")
    shown = text_of(section(off.text))
    assert "User account Deactivated" in shown and "Activate account" in shown
    assert "Send password reset" not in shown and "Deactivate account" not in shown
    assert "App deactivated" in off.text
    on = c.post(base + "/activate", htmx="user-detail")
    assert "User account Active" in text_of(section(on.text))
    c.db.expire_all()
    events = c.db.scalars(
        select(AuditEvent).where(AuditEvent.target_id == str(user.id)).order_by(AuditEvent.id)
    )
    actions = [e.action for e in events]
    assert actions[-6:] == [
        "app_account.password_reset_sent",
        "app_account.welcome_sent",
        "app_account.password_reset_forced",
        "app_account.role_changed",
        "app_account.deactivated",
        "app_account.activated",
    ]


def test_resend_while_awaiting_and_refusals_show_as_messages(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier)
    invite(c.db, user, App.MOBILE_APP)
    base = users_url(c, user) + "/account"
    resent = c.post(base + "/resend", htmx="user-detail")
    assert "A new invitation is on its way by email" in text_of(resent.text)
    c.db.expire_all()
    assert [m.context["resent"] for m in mails(c.db, user.id, "app_invitation")] == [False, True]
    refused = c.post(base + "/force-password-reset", htmx="user-detail")
    assert refused.status_code == 409
    assert "Only an active account has a password to reset." in text_of(refused.text)


def test_nothing_is_offered_for_a_deactivated_user_or_a_decommissioning_occupier(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier)
    activate(c.db, user)
    idle = make_user(c.db, c.occupier)
    c.post(users_url(c, user) + "/deactivate", htmx="user-detail")
    part = text_of(section(c.get(users_url(c, user)).text))
    assert "User account Deactivated" in part and "Suspended with the user" in part
    assert "Activate account" not in part and "Change role" not in part

    occupiers.start_decommission(c.db, c.occupier, actor=admin_actor(c.operator))
    c.db.flush()
    part = section(c.get(users_url(c, idle)).text)
    assert "<form" not in part


def test_another_scopes_users_are_not_found(console: Console) -> None:
    c = console
    paris = make_site(c.db, c.operator, code="PAR01")
    elsewhere = make_occupier(c.db, c.operator, sites_=[paris], name="Initech")
    stranger = make_user(c.db, elsewhere)
    invite(c.db, stranger, App.PORTAL)
    c.sign_in_as(make_staff(c.db, c.operator, role=Role.SITE_MANAGER, sites_=[c.site]))
    for path in (
        users_url(c, stranger, elsewhere.id) + "/account/resend",
        users_url(c, stranger, elsewhere.id) + "/account/deactivate",
        users_url(c, stranger, c.occupier.id) + "/account/welcome",
    ):
        assert c.post(path).status_code == 404, path
    assert c.get(users_url(c, stranger, elsewhere.id) + "/account/force-password-reset").status_code == 404
    c.db.expire_all()
    assert len(mails(c.db, stranger.id)) == 1


DETAILS = {
    "step": "details",
    "first_name": "Frank",
    "last_name": "Fischer",
    "email": "frank@globex.example",
    "language": "de",
}


def test_the_wizard_invites_the_new_user_in_the_same_go(console: Console) -> None:
    c = console
    url = users_url(c) + "/new"
    assert "Step 1 of 3: User details" in c.get(url).text
    step = c.post(url, {**DETAILS, "step": "wifi", "go": "next"})
    assert step.status_code == 200 and "Step 3 of 3: User account" in step.text
    assert 'name="invite_portal" type="checkbox" aria-describedby' in step.text  # optional: not ticked
    assert 'name="invite_mobile_app" type="checkbox" aria-describedby' in step.text
    assert '<option value="user">User: sees and edits their own details' in step.text
    assert ">Add user</button>" in step.text

    account = {"step": "account", "role": "admin", "invite_portal": "on", "invite_mobile_app": "on"}
    done = c.post(url, {**DETAILS, **account, "go": "submit"}, htmx="user-detail")
    assert done.status_code == 204, text_of(done.text)[:300]
    c.db.expire_all()
    user = c.db.scalars(select(OccupierUser).where(OccupierUser.email == "frank@globex.example")).one()
    made = service.account_of(c.db, user)
    assert made is not None and (made.role, made.status, made.portal, made.mobile_app) == (
        AccountRole.ADMIN,
        "AWAITING_SIGN_IN",
        "INVITED",
        "INVITED",
    )
    [mail] = mails(c.db, user.id)
    assert (mail.template, mail.language, mail.context["apps"]) == (
        "app_invitation",
        "de",
        ["portal", "mobile_app"],
    )
    shown = text_of(c.get(done.headers["HX-Redirect"]).text)
    assert "The user was added; the invitation is on its way by email." in shown


def test_the_wizard_leaves_the_account_alone_when_nothing_is_chosen(console: Console) -> None:
    c = console
    done = c.post(users_url(c) + "/new", {**DETAILS, "step": "account", "role": "user", "go": "submit"})
    assert done.status_code == 303
    c.db.expire_all()
    user = c.db.scalars(select(OccupierUser).where(OccupierUser.email == "frank@globex.example")).one()
    assert service.account_of(c.db, user) is None and mails(c.db, user.id) == []


def test_the_wizard_step_appears_only_where_apps_are_offered(console: Console) -> None:
    c = console
    neither = make_occupier(
        c.db, c.operator, sites_=[c.site], name="Hooli", portal_offered=False, mobile_app_offered=False
    )
    start = c.get(users_url(c, occupier_id=neither.id) + "/new").text
    assert "Step 1 of 2: User details" in start and "User account" not in start
    app_only = make_occupier(c.db, c.operator, sites_=[c.site], name="Pied Piper", portal_offered=False)
    step = c.post(users_url(c, occupier_id=app_only.id) + "/new", {**DETAILS, "step": "wifi", "go": "next"})
    assert "Step 3 of 3: User account" in step.text
    assert 'name="invite_mobile_app"' in step.text and 'name="invite_portal"' not in step.text
    # A forged tick for the app not offered comes back as an error on the step; nobody is added.
    forged = c.post(
        users_url(c, occupier_id=app_only.id) + "/new",
        {**DETAILS, "step": "account", "role": "user", "invite_portal": "on", "go": "submit"},
    )
    assert forged.status_code == 422 and "Step 3 of 3: User account" in forged.text
    assert "The occupier does not offer this app." in text_of(forged.text)
    c.db.expire_all()
    assert c.db.scalar(select(OccupierUser.id).where(OccupierUser.email == "frank@globex.example")) is None


def test_the_users_list_shows_each_users_account_state(console: Console) -> None:
    c = console
    active = make_user(c.db, c.occupier, last_name="Active")
    activate(c.db, active)
    waiting = make_user(c.db, c.occupier, last_name="Waiting")
    invite(c.db, waiting, App.PORTAL)
    role_only = make_user(c.db, c.occupier, last_name="Roleonly")
    service.change_role(c.db, role_only, AccountRole.ADMIN, actor=admin_actor(c.operator))
    c.db.flush()
    page = c.get(users_url(c)).text

    def row(user: OccupierUser) -> str:
        return page.split(f'id="user-row-{user.id}"')[1].split("</li>")[0]

    assert "App active" in row(active)
    assert "App awaiting sign in" in row(waiting)
    assert "App " not in row(role_only)  # not invited: nothing to show


@pytest.mark.browser
def test_the_section_works_in_a_real_browser(committed: sessionmaker[Session], chromium: Any) -> None:
    """Invite, then force a reset through the dialog, by keyboard and mouse in Chromium (htmx swaps)."""
    password = "correct horse battery"
    with transaction(committed) as db:
        operator = make_operator(db, name="Acme Workspace")
        london = make_site(db, operator, code="LON01", name="London Bridge")
        globex = make_occupier(db, operator, sites_=[london], name="Globex Corporation")
        ada = make_user(db, globex, first_name="Ada", last_name="Abbott", email="ada@globex.example")
        ben = make_user(db, globex, first_name="Ben", last_name="Baker", email="ben@globex.example")
        activate(db, ada)
        staff = make_staff(db, operator, email="admin@acme.example", password=password)
        ada_url = f"/occupiers/{globex.id}/users/{ada.id}"
        ben_url = f"/occupiers/{globex.id}/users/{ben.id}"
        email, ben_id = staff.email, ben.id
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        with LiveServer() as server:
            page.goto(server.url + ben_url)
            page.get_by_label("Email").fill(email)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            account = page.locator("#account")
            expect(account.locator(".section-header")).to_contain_text("Not invited")
            account.get_by_label("Role").select_option("admin")
            account.get_by_label("Send invite to portal").check()
            account.get_by_role("button", name="Save user account").click()
            expect(page.get_by_role("status").filter(has_text="The invitation is on its way")).to_be_visible()
            expect(account.locator(".section-header")).to_contain_text("Awaiting sign in")
            expect(page.locator(f"#user-row-{ben_id}")).to_contain_text("App awaiting sign in")
            screenshot(page, "accounts-01-invited")

            page.goto(server.url + ada_url)
            account.get_by_role("link", name="Force password reset").click()
            dialog = page.get_by_role("dialog", name=re.compile("choose a new password"))
            expect(dialog).to_be_visible()
            screenshot(page, "accounts-02-force-reset-dialog")
            dialog.get_by_role("button", name="Force password reset").click()
            expect(page.get_by_text("A password reset was forced")).to_be_visible()
            account.get_by_role("button", name="Deactivate account").click()
            expect(account.locator(".section-header")).to_contain_text("Deactivated")
            expect(account.get_by_role("button", name="Activate account")).to_be_visible()
            screenshot(page, "accounts-03-deactivated")
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    with transaction(committed) as db:
        assert [m.template for m in mails(db, ben_id)] == ["app_invitation"]
