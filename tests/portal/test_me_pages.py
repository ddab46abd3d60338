"""An occupier user's own details in the portal: view and edit them (not the email), and see their Wi-Fi
Secure account with the devices connected now."""

from __future__ import annotations

import pytest

from occupant.accounts.models import AccountRole
from occupant.kit import i18n
from occupant.users.models import OccupierUser
from tests.factories import make_site, make_user
from tests.portal.conftest import Portal, give_account, text_of
from tests.wifi.support import give_wifi, open_session


@pytest.fixture
def uma(portal: Portal) -> OccupierUser:
    """Portal signed in as Uma, an occupier user of Globex."""
    user = make_user(
        portal.db,
        portal.occupier,
        first_name="Uma",
        last_name="Usher",
        email="uma@globex.example",
        job_title="Analyst",
    )
    give_account(portal.db, user, role=AccountRole.USER)
    portal.sign_out()
    portal.sign_in_as(user)
    return user


def test_my_details_show_my_wifi_and_the_devices_connected_now(portal: Portal, uma: OccupierUser) -> None:
    make_site(portal.db, portal.operator, code="AMS01", name="Amsterdam", nas=["ap-ams"])
    account = give_wifi(portal.db, uma, limit=3)
    open_session(
        portal.db, account.username, mac="3C-22-FB-9A-10-4E", nas_identifier="ap-ams", minutes_ago=30
    )
    open_session(portal.db, account.username, mac="A4-83-E7-01-22-9B", nas_ip="10.9.9.9", minutes_ago=3)

    page = portal.get("/portal/me")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "My details Uma Usher · Analyst" in text and "Email uma@globex.example" in text
    assert "Wi-Fi Secure Active" in text and "Homesite London Bridge LON01 Concurrent device limit 3" in text
    assert "Connected devices 2 of 3" in text
    assert "3C-22-FB-9A-10-4E Amsterdam AMS01" in text and "A4-83-E7-01-22-9B An access point" in text
    assert "Role User" in text
    # An occupier user sees no user management.
    assert "User management" not in text and 'href="/portal/users"' not in page.text
    assert portal.get("/portal").headers["location"] == "/portal/me"


def test_without_wifi_the_page_says_so(portal: Portal, uma: OccupierUser) -> None:
    text = text_of(portal.get("/portal/me").text)
    assert "Wi-Fi Secure No account" in text and "No Wi-Fi account" in text
    assert "Connected devices" not in text


def test_edit_my_details_but_not_my_email(portal: Portal, uma: OccupierUser) -> None:
    form = portal.get("/portal/me/edit")
    assert form.status_code == 200
    assert 'name="email"' not in form.text and "Your email address cannot be changed here." in form.text
    assert 'value="Analyst"' in form.text
    response = portal.post(
        "/portal/me/edit",
        {
            "first_name": "Umar",
            "last_name": "Usher",
            "job_title": "Lead analyst",
            "mobile": "07911 123456",
            "direct_line": "",
            "language": "en",
            "email": "someone.else@globex.example",
        },
    )
    assert response.status_code == 303 and response.headers["location"] == "/portal/me"
    page = portal.get("/portal/me")
    assert "Your details were saved." in page.text
    portal.db.expire_all()
    assert (uma.first_name, uma.job_title, uma.mobile, uma.email) == (
        "Umar",
        "Lead analyst",
        "+447911123456",
        "uma@globex.example",
    )


def test_edit_errors_are_shown_by_their_fields(portal: Portal, uma: OccupierUser) -> None:
    response = portal.post(
        "/portal/me/edit", {"first_name": "", "last_name": "Usher", "mobile": "12", "language": "en"}
    )
    assert response.status_code == 422
    text = text_of(response.text)
    assert "Please correct" in text and "This is not a valid phone number." in text
    assert 'value="12"' in response.text
    portal.db.expire_all()
    assert uma.first_name == "Uma" and uma.mobile is None


def test_choosing_another_language_in_my_details_switches_the_portal(
    portal: Portal, uma: OccupierUser
) -> None:
    portal.client.cookies.set(i18n.LANG_COOKIE, "en")
    response = portal.post(
        "/portal/me/edit",
        {"first_name": "Uma", "last_name": "Usher", "job_title": "Analyst", "language": "fr"},
    )
    assert f"{i18n.LANG_COOKIE}=fr" in response.headers["set-cookie"]
    assert '<html lang="fr">' in portal.get("/portal/me").text
    portal.db.expire_all()
    assert uma.language == "fr"
