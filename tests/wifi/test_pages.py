"""Wi-Fi Secure in the console: the section of the user details, its forms and confirmations, the add-user
wizard's Wi-Fi step, the users list, and the sites' VLANs."""

from __future__ import annotations

import re

from sqlalchemy import select

from occupant.occupiers import service as occupiers
from occupant.radius.models import RadAcct
from occupant.sites.models import Site
from occupant.users.models import OccupierUser
from occupant.wifi import service
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_user
from tests.web.conftest import Console, text_of
from tests.wifi.support import give_wifi, open_session, password_mails, radius_check


def users_url(c: Console, user: OccupierUser | None = None) -> str:
    base = f"/occupiers/{c.occupier.id}/users"
    return f"{base}/{user.id}" if user is not None else base


def test_the_details_show_the_wifi_section_with_reset_on_hover_and_keyboard_focus(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier, first_name="Ada", last_name="Abbott")
    give_wifi(c.db, user, limit=3)
    page = c.get(users_url(c, user))
    assert page.status_code == 200
    section = page.text.split('<section class="detail-section wifi-section"')[1].split("</section>")[0]
    text = text_of(section)
    assert "Wi-Fi Secure Active" in text
    assert "Homesite London Bridge LON01" in text and "Concurrent device limit 3" in text
    assert f"Wi-Fi username {user.email}" in text
    assert re.search(
        r'class="button secondary reveal"[^>]*data-dialog="wifi-reset-dialog">Reset Wi-Fi password', section
    )
    assert 'id="wifi-reset-dialog"' in section and "Deactivate Wi-Fi</button>" in section
    assert "Change homesite or limit" in section and "No device is connected now." in text
    # Hidden until hover, shown on keyboard focus within the section, and always on touch screens.
    css = c.get("/static/console.css").text
    assert ".detail-section .reveal { opacity: 0;" in css
    assert ".detail-section:hover .reveal, .detail-section:focus-within .reveal { opacity: 1; }" in css
    assert "@media (hover: none) { .detail-section .reveal { opacity: 1; } }" in css

    other = make_user(c.db, c.occupier, first_name="Ben", last_name="Brown")
    none = text_of(c.get(users_url(c, other)).text)
    assert "Wi-Fi Secure No account" in none and "Create Wi-Fi account" in none
    assert "Reset Wi-Fi password" not in none


def test_create_from_the_details_shows_provisioning_and_emails_the_password(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier, first_name="Ada", last_name="Abbott", language="de")
    url = users_url(c, user) + "/wifi/new"
    form = c.hx_get(url, "user-detail")
    assert form.status_code == 200 and "<!doctype" not in form.text
    assert f'<option value="{c.site.id}" selected>London Bridge (LON01)' in form.text
    assert 'name="device_limit" type="number" value="2"' in form.text and 'max="5"' in form.text

    done = c.post(url, {"homesite_id": str(c.site.id), "device_limit": "3"}, htmx="user-detail")
    assert done.status_code == 200
    text = text_of(done.text)
    assert "The Wi-Fi account was created; the password is on its way by email." in text
    assert "Wi-Fi Secure Provisioning" in text and "Concurrent device limit 3" in text
    assert "An action is in progress for this user" in text and "Reset Wi-Fi password" not in text
    assert f'id="user-row-{user.id}" hx-swap-oob="true"' in done.text and "Wi-Fi provisioning" in done.text
    c.db.expire_all()
    [mail] = password_mails(c.db, user.id)
    assert (mail.to_address, mail.language) == (user.email, "de")

    account = service.account_of(c.db, user)
    assert account is not None and service.confirm_provisioning(c.db, account.id)
    c.db.flush()
    page = c.get(users_url(c, user)).text
    assert "Wi-Fi Secure Active" in text_of(page) and "Wi-Fi active" in page


def test_create_errors_are_shown_by_their_fields_and_nothing_is_created(console: Console) -> None:
    c = console
    elsewhere = make_site(c.db, c.operator, code="PAR01", name="Paris Opera")
    user = make_user(c.db, c.occupier)
    url = users_url(c, user) + "/wifi/new"
    bad = c.post(url, {"homesite_id": str(elsewhere.id), "device_limit": "9"}, htmx="user-detail")
    assert bad.status_code == 422
    assert 'id="wifi-homesite_id-error"' in bad.text and 'id="wifi-device_limit-error"' in bad.text
    text = text_of(bad.text)
    assert "The homesite must be one of the sites the occupier can access." in text
    assert "The device limit must be between 1 and 5." in text
    assert 'value="9"' in bad.text
    typo = c.post(url, {"homesite_id": str(c.site.id), "device_limit": "two"}, htmx="user-detail")
    assert typo.status_code == 422 and "Enter a whole number." in typo.text
    c.db.expire_all()
    assert service.account_of(c.db, user) is None and password_mails(c.db, user.id) == []


def test_deactivate_activate_and_reset_the_password_from_the_details(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier, first_name="Ada", last_name="Abbott")
    account = give_wifi(c.db, user)
    base = users_url(c, user) + "/wifi"

    off = c.post(base + "/deactivate", htmx="user-detail")
    assert off.status_code == 200
    text = text_of(off.text)
    assert "Wi-Fi was deactivated" in text and "Wi-Fi Secure Deactivated" in text
    assert "Activate Wi-Fi" in text and "Reset Wi-Fi password" not in text and "Deactivate Wi-Fi" not in text
    c.db.expire_all()
    assert radius_check(c.db, account.username) == {}

    on = c.post(base + "/activate", htmx="user-detail")
    assert "Wi-Fi Secure Provisioning" in text_of(on.text)
    c.db.expire_all()
    assert len(password_mails(c.db, user.id)) == 2
    assert service.confirm_provisioning(c.db, account.id)
    c.db.flush()

    # Without JavaScript the reset asks on a page of its own; the plain form then goes back to the user.
    confirm = c.get(base + "/reset-password")
    assert confirm.status_code == 200 and confirm.text.startswith("<!doctype html>")
    assert "Reset the Wi-Fi password of Ada Abbott?" in confirm.text
    assert f'action="{base}/reset-password"' in confirm.text
    reset = c.post(base + "/reset-password")
    assert reset.status_code == 303 and reset.headers["location"] == users_url(c, user)
    assert "A new Wi-Fi password is on its way by email" in c.get(reset.headers["location"]).text
    c.db.expire_all()
    mails = password_mails(c.db, user.id)
    assert len(mails) == 3 and mails[-1].context["reason"] == "reset"


def test_the_settings_form_changes_homesite_and_limit(console: Console) -> None:
    c = console
    paris = make_site(c.db, c.operator, code="PAR01", name="Paris Opera")
    initech = make_occupier(c.db, c.operator, sites_=[c.site, paris], name="Initech")
    user = make_user(c.db, initech)
    give_wifi(c.db, user)
    url = f"/occupiers/{initech.id}/users/{user.id}/wifi/edit"
    form = c.get(url)
    assert form.status_code == 200 and 'name="device_limit" type="number" value="2"' in form.text
    assert "A new homesite emails the user a new password" in form.text

    bad = c.post(url, {"homesite_id": str(paris.id), "device_limit": "0"}, htmx="user-detail")
    assert bad.status_code == 422 and "The device limit must be between 1 and 5." in bad.text
    c.db.expire_all()
    assert len(password_mails(c.db, user.id)) == 1  # nothing changed, no mail

    saved = c.post(url, {"homesite_id": str(paris.id), "device_limit": "4"}, htmx="user-detail")
    assert saved.status_code == 200
    text = text_of(saved.text)
    assert "The Wi-Fi settings were saved." in text
    assert "Homesite Paris Opera PAR01" in text and "Concurrent device limit 4" in text
    c.db.expire_all()
    mails = password_mails(c.db, user.id)
    assert len(mails) == 2 and mails[-1].context["reason"] == "homesite_changed"


def test_connected_devices_are_listed_and_a_stale_session_is_cleared_after_confirming(
    console: Console,
) -> None:
    c = console
    make_site(c.db, c.operator, code="PAR01", name="Paris Opera", nas=["ap-par-1"])
    user = make_user(c.db, c.occupier, first_name="Ada", last_name="Abbott")
    account = give_wifi(c.db, user)
    phone = open_session(c.db, account.username, mac="AA-BB-CC-00-00-01", nas_identifier="ap-par-1")
    laptop = open_session(c.db, account.username, mac="AA-BB-CC-00-00-02", nas_ip="192.0.2.7", minutes_ago=60)
    page = c.get(users_url(c, user)).text
    text = text_of(page)
    assert "Connected devices 2 of 2" in text
    assert "AA-BB-CC-00-00-01 Paris Opera PAR01" in text
    assert "AA-BB-CC-00-00-02 Access point 192.0.2.7" in text
    assert text.index("AA-BB-CC-00-00-01") < text.index("AA-BB-CC-00-00-02")  # newest first
    clear_url = users_url(c, user) + f"/wifi/sessions/{laptop.radacctid}/clear"
    assert f'href="{clear_url}" data-dialog="clear-session-{laptop.radacctid}"' in page
    assert f'<dialog id="clear-session-{laptop.radacctid}"' in page

    confirm = c.get(clear_url)
    assert confirm.status_code == 200 and "Clear the session of AA-BB-CC-00-00-02?" in confirm.text
    cleared = c.post(clear_url, htmx="user-detail")
    assert cleared.status_code == 200
    text = text_of(cleared.text)
    assert "The session was cleared." in text and "AA-BB-CC-00-00-02" not in text
    assert "Connected devices 1 of 2" in text
    c.db.expire_all()
    assert c.db.get(RadAcct, laptop.radacctid).acctstoptime is not None  # type: ignore[union-attr]
    assert c.db.get(RadAcct, phone.radacctid).acctstoptime is None  # type: ignore[union-attr]
    again = c.post(clear_url, htmx="user-detail")
    assert again.status_code == 404 and "No such open session." in again.text


def test_wifi_actions_are_hidden_and_refused_while_the_occupier_decommissions(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier, first_name="Ada", last_name="Abbott")
    account = give_wifi(c.db, user)
    open_session(c.db, account.username, mac="AA-BB-CC-00-00-01")
    without = make_user(c.db, c.occupier, first_name="Ben", last_name="Brown")
    occupiers.start_decommission(c.db, c.occupier, actor=admin_actor(c.operator))
    c.db.flush()
    text = text_of(c.get(users_url(c, user)).text)
    assert "Wi-Fi Secure Active" in text and "AA-BB-CC-00-00-01" in text
    for offered in ("Reset Wi-Fi password", "Deactivate Wi-Fi", "Change homesite or limit", "Clear"):
        assert offered not in text, offered
    assert "Create Wi-Fi account" not in text_of(c.get(users_url(c, without)).text)
    for path, data in [
        (users_url(c, user) + "/wifi/deactivate", {}),
        (users_url(c, user) + "/wifi/reset-password", {}),
        (users_url(c, without) + "/wifi/new", {"homesite_id": str(c.site.id), "device_limit": "2"}),
    ]:
        response = c.post(path, data)
        assert response.status_code == 409, path
        assert "decommissioned" in response.text
    c.db.expire_all()
    assert service.account_of(c.db, without) is None and len(password_mails(c.db, user.id)) == 1


def test_another_operators_user_is_not_found_on_the_wifi_pages(console: Console) -> None:
    c = console
    operator = make_operator(c.db)
    theirs = make_occupier(c.db, operator, sites_=[make_site(c.db, operator)])
    stranger = make_user(c.db, theirs)
    give_wifi(c.db, stranger)
    c.db.flush()
    for base in (f"/occupiers/{theirs.id}/users/{stranger.id}", f"{users_url(c)}/{stranger.id}"):
        assert c.get(base + "/wifi/new").status_code == 404
        assert c.get(base + "/wifi/edit").status_code == 404
        assert c.post(base + "/wifi/deactivate").status_code == 404
        assert c.post(base + "/wifi/reset-password").status_code == 404
    c.db.expire_all()
    assert len(password_mails(c.db, stranger.id)) == 1


DETAILS = {
    "step": "details",
    "first_name": "Frank",
    "last_name": "Fischer",
    "email": "frank@globex.example",
    "language": "nl",
}


def test_the_wizard_adds_the_user_and_their_wifi_account_in_one_go(console: Console) -> None:
    c = console
    url = users_url(c) + "/new"
    start = c.get(url).text
    assert "Step 1 of 3: User details" in start
    assert f'<input type="hidden" name="homesite_id" value="{c.site.id}">' in start
    assert '<input type="hidden" name="device_limit" value="2">' in start

    step = c.post(url, {**DETAILS, "homesite_id": str(c.site.id), "device_limit": "2", "go": "next"})
    assert step.status_code == 200 and "Step 2 of 3: Wi-Fi" in step.text
    assert 'name="create_wifi" type="checkbox">' in step.text  # optional: not ticked
    assert f'<option value="{c.site.id}" selected>London Bridge (LON01)' in step.text

    wifi = {"step": "wifi", "create_wifi": "on", "homesite_id": str(c.site.id), "device_limit": "3"}
    done = c.post(url, {**DETAILS, **wifi, "go": "submit"}, htmx="user-detail")
    assert done.status_code == 204, text_of(done.text)[:300]
    c.db.expire_all()
    user = c.db.scalars(select(OccupierUser).where(OccupierUser.email == "frank@globex.example")).one()
    assert done.headers["HX-Redirect"] == users_url(c, user)
    account = service.account_of(c.db, user)
    assert account is not None and (account.status, account.device_limit) == ("PROVISIONING", 3)
    [mail] = password_mails(c.db, user.id)
    assert mail.language == "nl"
    shown = text_of(c.get(done.headers["HX-Redirect"]).text)
    assert "The user was added; their Wi-Fi password is on its way by email." in shown
    assert "Wi-Fi Secure Provisioning" in shown


def test_the_wizard_shows_wifi_errors_without_adding_the_user(console: Console) -> None:
    c = console
    elsewhere = make_site(c.db, c.operator, code="PAR01", name="Paris Opera")
    url = users_url(c) + "/new"
    wifi = {"step": "wifi", "create_wifi": "on", "homesite_id": str(elsewhere.id), "device_limit": "9"}
    response = c.post(url, {**DETAILS, **wifi, "go": "submit"})
    assert response.status_code == 422
    assert "Step 2 of 3: Wi-Fi" in response.text
    text = text_of(response.text)
    assert "Wi-Fi homesite: The homesite must be one of the sites the occupier can access." in text
    assert "Concurrent device limit: The device limit must be between 1 and 5." in text
    assert '<input type="hidden" name="email" value="frank@globex.example">' in response.text

    typo = c.post(url, {**DETAILS, **wifi, "device_limit": "lots", "go": "next"})
    assert typo.status_code == 422 and "Enter a whole number." in typo.text
    no_site = c.post(url, {**DETAILS, **wifi, "homesite_id": "", "go": "submit"})
    assert no_site.status_code == 422 and "Choose the Wi-Fi homesite." in no_site.text
    # Errors of both steps at once: back to the first step in error, every error listed.
    both = c.post(url, {**DETAILS, **wifi, "first_name": "", "device_limit": "lots", "go": "submit"})
    assert both.status_code == 422 and "Step 1 of 3: User details" in both.text
    summary = text_of(both.text)
    assert "First name: This field is required." in summary
    assert "Concurrent device limit: Enter a whole number." in summary
    c.db.expire_all()
    assert c.db.scalar(select(OccupierUser.id).where(OccupierUser.email == "frank@globex.example")) is None


def test_the_wizard_without_wifi_adds_only_the_user(console: Console) -> None:
    c = console
    done = c.post(
        users_url(c) + "/new",
        {**DETAILS, "step": "wifi", "homesite_id": str(c.site.id), "device_limit": "2", "go": "submit"},
    )
    assert done.status_code == 303
    c.db.expire_all()
    user = c.db.scalars(select(OccupierUser).where(OccupierUser.email == "frank@globex.example")).one()
    assert service.account_of(c.db, user) is None and password_mails(c.db, user.id) == []
    assert "The user was added." in c.get(done.headers["location"]).text


def test_the_users_list_shows_each_users_wifi_status(console: Console) -> None:
    c = console
    ada = make_user(c.db, c.occupier, first_name="Ada", last_name="Abbott")
    ben = make_user(c.db, c.occupier, first_name="Ben", last_name="Brown")
    cho = make_user(c.db, c.occupier, first_name="Cho", last_name="Chen")
    give_wifi(c.db, ada)
    give_wifi(c.db, ben)
    service.deactivate_wifi(c.db, ben, actor=admin_actor(c.operator))
    c.db.flush()
    page = c.get(users_url(c)).text

    def row(user: OccupierUser) -> str:
        return page.split(f'id="user-row-{user.id}"')[1].split("</li>")[0]

    assert '<span class="wifi-state state-active">Wi-Fi active</span>' in row(ada)
    assert '<span class="wifi-state state-deactivated">Wi-Fi deactivated</span>' in row(ben)
    assert "Wi-Fi" not in row(cho)
    search = c.hx_get(users_url(c) + "?q=ben", "user-results").text
    assert "Wi-Fi deactivated" in search


def test_the_site_form_sets_validated_vlans(console: Console) -> None:
    c = console
    new = c.get("/sites/new").text
    assert (
        'name="wifi_vlan" type="number" value="100"' in new
        and 'name="guest_vlan" type="number" value="900"' in new
    )
    site = {"code": "PAR01", "name": "Paris Opera", "country": "FR", "nas_identifiers": ""}
    for vlans, message in [
        ({"wifi_vlan": "0", "guest_vlan": "900"}, "Enter 1 or more."),
        ({"wifi_vlan": "100", "guest_vlan": "5000"}, "Enter 4094 or less."),
        ({"wifi_vlan": "ten", "guest_vlan": "900"}, "Enter a whole number."),
        ({"wifi_vlan": "300", "guest_vlan": "300"}, "The guest VLAN must differ from the Wi-Fi Secure VLAN"),
    ]:
        response = c.post("/sites/new", {**site, **vlans})
        assert response.status_code == 422, vlans
        assert message in response.text, vlans
    assert c.post("/sites/new", {**site, "wifi_vlan": "210", "guest_vlan": "901"}).status_code == 303
    created = c.db.scalars(select(Site).where(Site.operator_id == c.operator.id, Site.code == "PAR01")).one()
    assert (created.wifi_vlan, created.guest_vlan) == (210, 901)
    assert "210 secure · 901 guest" in text_of(c.get("/sites").text)
    edit = c.get(f"/sites/{created.id}/edit").text
    assert 'name="wifi_vlan" type="number" value="210"' in edit
    saved = c.post(
        f"/sites/{created.id}/edit",
        {**site, "wifi_vlan": "211", "guest_vlan": "901", "version": str(created.version_id)},
    )
    assert saved.status_code == 303
    c.db.expire_all()
    assert c.db.get(Site, created.id).wifi_vlan == 211  # type: ignore[union-attr]
