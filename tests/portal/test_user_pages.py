"""User management in the portal (an occupier admin's pages): the list with search as you type and pages,
a user's details, adding a user with Wi-Fi and invitations, editing, deleting, resending an invitation."""

from __future__ import annotations

import html
import re

from sqlalchemy import func, select

from occupant.accounts import service as accounts
from occupant.accounts.models import AccountRole, AccountStatus, InviteState
from occupant.kit import i18n
from occupant.notify.models import OutboxMessage
from occupant.occupiers import service as occupiers
from occupant.occupiers.models import OccupierState
from occupant.occupiers.schemas import OccupierUpdate
from occupant.users import service as users
from occupant.users.models import OccupierUser
from occupant.wifi import service as wifi
from occupant.wifi.models import WifiAccount, WifiStatus
from tests.accounts.app_support import mails
from tests.factories import admin_actor, make_occupier, make_site, make_user
from tests.portal.conftest import Portal, give_account, text_of
from tests.wifi.support import give_wifi, password_mails


def _row(html: str, user: OccupierUser) -> str:
    match = re.search(rf'<tr id="user-row-{user.id}".*?</tr>', html, re.S)
    assert match, f"no row for {user.full_name}"
    return match.group(0)


def _valid_new_user(**extra: str) -> dict[str, str]:
    return {
        "first_name": "Frank",
        "last_name": "Fischer",
        "email": "frank@globex.example",
        "language": "en",
        "role": "user",
        **extra,
    }


# --- the list ---------------------------------------------------------------------------------------------


def test_the_list_shows_each_users_role_wifi_and_account_with_row_actions(portal: Portal) -> None:
    db = portal.db
    brian = make_user(
        db, portal.occupier, first_name="Brian", last_name="Baker", email="brian@globex.example"
    )
    give_wifi(db, brian)
    chloe = make_user(
        db, portal.occupier, first_name="Chloe", last_name="Carter", email="chloe@globex.example"
    )
    give_account(db, chloe, signed_in=False)
    dan = make_user(db, portal.occupier, first_name="Dan", last_name="Diaz")
    give_account(db, dan, role=AccountRole.ADMIN)

    page = portal.get("/portal/users")
    assert page.status_code == 200
    headers = re.findall(r'<th scope="col"[^>]*>(.*?)</th>', page.text)
    assert headers[:5] == ["Name", "Email", "Role", "Wi-Fi access", "User account"]
    assert "Phone number" not in page.text  # the operator does not manage Globex's telephony
    assert "4 users" in text_of(page.text)

    brian_row = text_of(_row(page.text, brian))
    assert "Brian Baker brian@globex.example" in brian_row and "Active Not invited" in brian_row
    assert "No user account" in brian_row
    assert "Awaiting sign-in" in text_of(_row(page.text, chloe))
    assert "User" in text_of(_row(page.text, chloe))
    # Edit and Delete on each row (named for screen readers); no Delete on admins, nor on oneself.
    assert (
        f'href="/portal/users/{brian.id}/edit">Edit<span class="visually-hidden"> Brian Baker</span>'
        in page.text
    )
    assert f'hx-get="/portal/users/{brian.id}/delete" hx-target="#dialog-slot"' in page.text
    assert "Delete" not in text_of(_row(page.text, dan)) and "Edit" in text_of(_row(page.text, dan))
    mine = text_of(_row(page.text, portal.me))
    assert "(you)" in mine and "Delete" not in mine
    # A click anywhere on the row opens the details.
    assert f'data-href="/portal/users/{brian.id}"' in _row(page.text, brian)
    # Shown on hover and keyboard focus, always on touch screens.
    css = portal.get("/portal/static/portal.css").text
    assert (
        ".user-table tbody tr:hover .row-actions .button,\n"
        ".user-table tbody tr:focus-within .row-actions .button { opacity: 1; }" in css
    )
    assert "@media (hover: none) { .user-table .row-actions .button { opacity: 1; } }" in css


def test_the_phone_number_column_shows_when_the_operator_manages_telephony(portal: Portal) -> None:
    occupiers.update_occupier(
        portal.db, portal.occupier, OccupierUpdate(telephony_managed=True), actor=admin_actor(portal.operator)
    )
    page = portal.get("/portal/users")
    assert "Phone number" in page.text
    assert "Not assigned" in text_of(_row(page.text, portal.me))


def test_search_as_you_type_by_name_or_email(portal: Portal) -> None:
    db = portal.db
    chloe = make_user(db, portal.occupier, first_name="Chloe", last_name="Carter", email="cc@globex.example")
    make_user(db, portal.occupier, first_name="Brian", last_name="Baker", email="brian@globex.example")
    other = make_occupier(db, portal.operator, sites_=[portal.site], name="Initech")
    make_user(db, other, first_name="Chloe", last_name="Elsewhere", email="chloe@initech.example")

    found = portal.hx_get("/portal/users?q=chlo", "user-results")
    assert found.status_code == 200 and "<!doctype" not in found.text
    assert found.text.count('<tr id="user-row-') == 1 and f"user-row-{chloe.id}" in found.text
    assert 'id="user-status" hx-swap-oob="innerHTML">1 user matches “chlo”' in found.text
    by_email = portal.hx_get("/portal/users?q=cc@glo", "user-results")
    assert f"user-row-{chloe.id}" in by_email.text
    none = portal.hx_get("/portal/users?q=zzz", "user-results")
    assert "No user matches “zzz”" in none.text
    # Without htmx the same address is the whole page, with the search filled in.
    full = portal.get("/portal/users?q=chlo")
    assert "<!doctype html>" in full.text and 'value="chlo"' in full.text
    assert 'hx-trigger="input changed delay:250ms, search"' in full.text


def test_large_occupiers_are_listed_a_page_at_a_time(portal: Portal) -> None:
    for n in range(55):
        make_user(portal.db, portal.occupier, first_name=f"Person{n:02d}", last_name="Zed")
    first = portal.get("/portal/users")
    assert first.text.count('<tr id="user-row-') == 50
    assert "56 users · showing the first 50" in text_of(first.text)
    cursor = re.search(r'hx-get="/portal/users\?q=&amp;cursor=([^"]+)"', first.text)
    assert cursor
    more = portal.hx_get(f"/portal/users?q=&cursor={cursor.group(1)}", "user-more")
    assert more.text.count('<tr id="user-row-') == 6 and "Load more" not in more.text
    assert "<table" not in more.text


# --- details -----------------------------------------------------------------------------------------------


def test_the_details_are_read_only_with_wifi_and_user_account_sections(portal: Portal) -> None:
    db = portal.db
    brian = make_user(
        db,
        portal.occupier,
        first_name="Brian",
        last_name="Baker",
        email="brian@globex.example",
        job_title="Analyst",
        mobile="07911 123456",
        language="fr",
    )
    give_wifi(db, brian, limit=3)
    give_account(db, brian, signed_in=False)

    page = portal.get(f"/portal/users/{brian.id}")
    text = text_of(page.text)
    assert not re.search(r'<(input(?![^>]*type="hidden")|select|textarea)', page.text.split("<main")[1])
    assert "First name Brian Last name Baker Email brian@globex.example Job title Analyst" in text
    assert "Mobile +447911123456" in text and "Language Français" in text
    assert "Wi-Fi account Active" in text and "Homesite London Bridge LON01 Concurrent device limit 3" in text
    assert "Access Awaiting sign-in Role User" in text and "Portal Invited Mobile app Not invited" in text
    assert "Resend invite" in text
    assert "Edit user details" in text and "Delete user" in text

    # Signed in already: nothing to resend.
    account = accounts.account_of(db, brian)
    assert account is not None
    account.status, account.portal = AccountStatus.ACTIVE, InviteState.SIGNED_IN
    db.flush()
    assert "Resend invite" not in portal.get(f"/portal/users/{brian.id}").text


def test_resend_invite_sends_a_new_link(portal: Portal) -> None:
    brian = make_user(portal.db, portal.occupier, email="brian@globex.example")
    give_account(portal.db, brian, signed_in=False)
    response = portal.post(f"/portal/users/{brian.id}/resend")
    assert response.status_code == 303 and response.headers["location"] == f"/portal/users/{brian.id}"
    assert (
        "The invitation was sent again; the previous link no longer works."
        in portal.get(response.headers["location"]).text
    )
    portal.db.expire_all()
    invitations = mails(portal.db, brian.id, "app_invitation")
    assert len(invitations) == 2


def test_another_occupiers_user_is_not_found(portal: Portal) -> None:
    initech = make_occupier(portal.db, portal.operator, sites_=[portal.site], name="Initech")
    stranger = make_user(portal.db, initech, email="someone@initech.example")
    for path in ("", "/edit", "/delete"):
        response = portal.get(f"/portal/users/{stranger.id}{path}")
        assert response.status_code == 404
        assert "someone@initech.example" not in response.text and "Occupant portal" in response.text


# --- add ---------------------------------------------------------------------------------------------------


def test_the_add_page_offers_wifi_and_invitations_to_the_apps_offered(portal: Portal) -> None:
    page = portal.get("/portal/users/new")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Add a user" in text and "Create a Wi-Fi account" in text
    assert "Send invite to portal" in text and "Send invite to mobile app" in text
    # The Add button waits for valid required fields (portal.js); the server checks again.
    assert 'data-require-valid="add-incomplete"' in page.text and page.text.count("data-needs-valid") == 2
    assert re.search(r'id="user-first_name" name="first_name" type="text" value="" required', page.text)
    assert re.search(r'id="user-email" name="email" type="email" value="" required', page.text)
    assert f'<option value="{portal.site.id}" selected>London Bridge (LON01)' in page.text

    occupiers.update_occupier(
        portal.db,
        portal.occupier,
        OccupierUpdate(mobile_app_offered=False),
        actor=admin_actor(portal.operator),
    )
    only_portal = text_of(portal.get("/portal/users/new").text)
    assert "Send invite to portal" in only_portal and "mobile app" not in only_portal
    occupiers.update_occupier(
        portal.db, portal.occupier, OccupierUpdate(portal_offered=False), actor=admin_actor(portal.operator)
    )
    # Without the portal, nobody of the occupier can use it, its admins neither: sent to sign in.
    gone = portal.get("/portal/users/new")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/portal/sign-in")


def test_add_a_user_with_wifi_and_invitations(portal: Portal) -> None:
    response = portal.post(
        "/portal/users/new",
        _valid_new_user(
            job_title="Analyst",
            mobile="07911 123456",
            language="de",
            wifi="on",
            homesite_id=str(portal.site.id),
            device_limit="3",
            role="admin",
            invite_portal="on",
            invite_mobile_app="on",
        ),
    )
    assert response.status_code == 303
    portal.db.expire_all()
    frank = portal.db.scalars(select(OccupierUser).where(OccupierUser.email == "frank@globex.example")).one()
    assert response.headers["location"] == f"/portal/users/{frank.id}"
    assert (frank.occupier_id, frank.job_title, frank.mobile, frank.language) == (
        portal.occupier.id,
        "Analyst",
        "+447911123456",
        "de",
    )
    wifi_account = wifi.account_of(portal.db, frank)
    assert wifi_account is not None and wifi_account.device_limit == 3
    account = accounts.account_of(portal.db, frank)
    assert account is not None and account.role == AccountRole.ADMIN
    assert (account.portal, account.mobile_app) == (InviteState.INVITED, InviteState.INVITED)
    assert (
        len(mails(portal.db, frank.id, "app_invitation")) == 1
        and len(password_mails(portal.db, frank.id)) == 1
    )
    page = portal.get(response.headers["location"])
    assert "The user was added; their invitations are on their way by email." in page.text


def test_add_a_user_with_basic_details_only(portal: Portal) -> None:
    response = portal.post(
        "/portal/users/new", _valid_new_user(homesite_id=str(portal.site.id), device_limit="2")
    )
    assert response.status_code == 303
    portal.db.expire_all()
    frank = portal.db.scalars(select(OccupierUser).where(OccupierUser.email == "frank@globex.example")).one()
    assert wifi.account_of(portal.db, frank) is None and accounts.account_of(portal.db, frank) is None
    assert (
        portal.db.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.occupier_user_id == frank.id)
        )
        == 0
    )
    assert "The user was added." in portal.get(response.headers["location"]).text


def test_add_reports_every_error_by_its_field_and_creates_nothing(portal: Portal) -> None:
    make_user(portal.db, portal.occupier, email="taken@globex.example")
    response = portal.post(
        "/portal/users/new",
        {
            "first_name": "",
            "last_name": "Fischer",
            "email": "frank@@globex",
            "mobile": "12",
            "wifi": "on",
            "homesite_id": "",
            "device_limit": "99",
            "role": "user",
            "language": "en",
        },
    )
    assert response.status_code == 422
    text = text_of(response.text)
    assert "Please correct these:" in text
    assert re.search(r'id="user-first_name-error">.*This field is required\.', response.text)
    assert "This is not a valid email address." in text
    assert "Mobile: This is not a valid phone number." in text
    assert "Homesite: This field is required." in text
    assert 'value="Fischer"' in response.text and 'value="frank@@globex"' in response.text
    assert portal.db.scalar(select(func.count()).select_from(OccupierUser)) == 2  # Ada and "taken"

    # An action's field error (the email is taken) undoes everything.
    clash = portal.post(
        "/portal/users/new", _valid_new_user(email="taken@globex.example", invite_portal="on", mobile="12")
    )
    assert clash.status_code == 422
    assert (
        "Another user already has this email address." in clash.text
        or "This is not a valid phone number." in clash.text
    )
    portal.db.expire_all()
    assert portal.db.scalar(select(func.count()).select_from(OccupierUser)) == 2
    assert (
        portal.db.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.template == "app_invitation")
        )
        == 1
    )  # Ada's own, from the fixture


def test_an_invitation_to_an_app_not_offered_is_refused(portal: Portal) -> None:
    occupiers.update_occupier(
        portal.db,
        portal.occupier,
        OccupierUpdate(mobile_app_offered=False),
        actor=admin_actor(portal.operator),
    )
    response = portal.post("/portal/users/new", _valid_new_user(invite_mobile_app="on"))
    assert response.status_code == 422
    assert "Your organisation does not offer this app." in response.text
    portal.db.expire_all()
    assert (
        portal.db.scalars(select(OccupierUser).where(OccupierUser.email == "frank@globex.example")).first()
        is None
    )


# --- edit --------------------------------------------------------------------------------------------------


def _edit_values(user: OccupierUser, **extra: str) -> dict[str, str]:
    return {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "language": user.language,
        "role": "user",
        "version": str(user.version_id),
        **extra,
    }


def test_the_edit_page_shows_the_email_but_never_changes_it(portal: Portal) -> None:
    brian = make_user(portal.db, portal.occupier, first_name="Brian", email="brian@globex.example")
    page = portal.get(f"/portal/users/{brian.id}/edit")
    assert page.status_code == 200
    assert 'name="email"' not in page.text and "brian@globex.example" in page.text
    assert "The email address cannot be changed after the user has been created." in page.text
    response = portal.post(
        f"/portal/users/{brian.id}/edit", _edit_values(brian, job_title="Lead", email="hacker@globex.example")
    )
    assert response.status_code == 303
    portal.db.expire_all()
    assert (brian.email, brian.job_title) == ("brian@globex.example", "Lead")
    assert "The changes were saved." in portal.get(response.headers["location"]).text


def test_edit_creates_wifi_and_invites(portal: Portal) -> None:
    brian = make_user(portal.db, portal.occupier, first_name="Brian")
    response = portal.post(
        f"/portal/users/{brian.id}/edit",
        _edit_values(brian, wifi="on", homesite_id=str(portal.site.id), device_limit="4", invite_portal="on"),
    )
    assert response.status_code == 303
    portal.db.expire_all()
    assert wifi.account_of(portal.db, brian).device_limit == 4  # type: ignore[union-attr]
    account = accounts.account_of(portal.db, brian)
    assert account is not None and account.portal == InviteState.INVITED
    assert account.status == AccountStatus.AWAITING_SIGN_IN


def test_edit_deactivates_and_activates_wifi_and_changes_homesite_and_limit(portal: Portal) -> None:
    manchester = make_site(portal.db, portal.operator, code="MAN01", name="Manchester")
    occupiers.update_occupier(
        portal.db,
        portal.occupier,
        OccupierUpdate(site_ids=[portal.site.id, manchester.id]),
        actor=admin_actor(portal.operator),
    )
    brian = make_user(portal.db, portal.occupier, first_name="Brian")
    give_wifi(portal.db, brian, limit=2)
    page = portal.get(f"/portal/users/{brian.id}/edit")
    assert re.search(r'id="user-wifi" name="wifi" type="checkbox" checked', page.text)
    assert "Wi-Fi access" in page.text

    off = portal.post(
        f"/portal/users/{brian.id}/edit",
        _edit_values(brian, homesite_id=str(portal.site.id), device_limit="2"),  # "wifi" unticked
    )
    assert off.status_code == 303
    portal.db.expire_all()
    account = portal.db.scalars(select(WifiAccount).where(WifiAccount.user_id == brian.id)).one()
    assert account.status == WifiStatus.DEACTIVATED

    on = portal.post(
        f"/portal/users/{brian.id}/edit",
        _edit_values(brian, wifi="on", homesite_id=str(manchester.id), device_limit="5"),
    )
    assert on.status_code == 303
    portal.db.expire_all()
    account = portal.db.scalars(select(WifiAccount).where(WifiAccount.user_id == brian.id)).one()
    assert (account.status, account.homesite_id, account.device_limit) == (
        WifiStatus.PROVISIONING,
        manchester.id,
        5,
    )
    # Provisioning makes the user busy: no edit is offered until it is done.
    details = portal.get(f"/portal/users/{brian.id}").text
    assert "An action is in progress for this user" in details and "Edit user details" not in details
    assert portal.get(f"/portal/users/{brian.id}/edit").status_code == 409


def test_edit_errors_keep_what_was_typed_and_change_nothing(portal: Portal) -> None:
    brian = make_user(portal.db, portal.occupier, first_name="Brian", job_title="Analyst")
    response = portal.post(
        f"/portal/users/{brian.id}/edit",
        _edit_values(
            brian,
            first_name="",
            job_title="Changed",
            mobile="12",
            wifi="on",
            homesite_id=str(portal.site.id),
            device_limit="2",
        ),
    )
    assert response.status_code == 422
    text = text_of(response.text)
    assert (
        "First name: This field is required." in text and "Mobile: This is not a valid phone number." in text
    )
    assert 'value="Changed"' in response.text and 'value="12"' in response.text
    portal.db.expire_all()
    assert brian.job_title == "Analyst" and wifi.account_of(portal.db, brian) is None

    # A Wi-Fi error found by the action undoes the details saved before it.
    limit = portal.post(
        f"/portal/users/{brian.id}/edit",
        _edit_values(
            brian, job_title="Changed", wifi="on", homesite_id=str(portal.site.id), device_limit="0"
        ),
    )
    assert limit.status_code == 422
    assert "Concurrent device limit: Enter a number within the limits shown." in text_of(limit.text)
    portal.db.expire_all()
    assert brian.job_title == "Analyst" and wifi.account_of(portal.db, brian) is None


def test_a_deactivated_users_form_offers_only_their_details_and_says_why(portal: Portal) -> None:
    gus = make_user(portal.db, portal.occupier, first_name="Gus", job_title="Clerk")
    give_wifi(portal.db, gus)
    users.deactivate_user(portal.db, gus, actor=admin_actor(portal.operator))
    edit = f"/portal/users/{gus.id}/edit"
    page = portal.get(edit)
    text = text_of(page.text)
    assert "Send invite to portal" not in text and "Send invite to mobile app" not in text
    assert "This user is deactivated: they can be invited once your operator reactivates them." in text
    assert 'name="wifi"' not in page.text and 'name="homesite_id"' not in page.text
    assert "their Wi-Fi account can be changed once your operator reactivates them." in text

    saved = portal.post(edit, _edit_values(gus, job_title="Archivist"))
    assert saved.status_code == 303, text_of(saved.text)
    portal.db.expire_all()
    assert gus.job_title == "Archivist"
    assert wifi.account_of(portal.db, gus).status == WifiStatus.DEACTIVATED  # type: ignore[union-attr]

    # A page shown before the deactivation still ticks an invitation: refused, saying why; nothing saved.
    stale = portal.post(edit, _edit_values(gus, job_title="Changed", invite_portal="on"))
    assert stale.status_code == 409
    assert "This user is deactivated. Ask your operator to reactivate them first." in text_of(stale.text)
    portal.client.cookies.set(i18n.LANG_COOKIE, "fr")
    stale_wifi = {"wifi": "on", "homesite_id": str(portal.site.id), "device_limit": "2"}
    in_french = portal.post(edit, _edit_values(gus, job_title="Changed", **stale_wifi))
    assert in_french.status_code == 409
    assert (
        "Cet utilisateur est désactivé. Demandez d'abord à votre opérateur de le réactiver."
        in html.unescape(text_of(in_french.text))
    )
    portal.db.expire_all()
    assert gus.job_title == "Archivist" and accounts.account_of(portal.db, gus) is None
    assert wifi.account_of(portal.db, gus).status == WifiStatus.DEACTIVATED  # type: ignore[union-attr]


def test_a_deactivated_account_is_not_offered_invitations(portal: Portal) -> None:
    ivy = make_user(portal.db, portal.occupier, first_name="Ivy")
    give_account(portal.db, ivy)  # the portal; not the mobile app
    accounts.deactivate_account(portal.db, ivy, actor=admin_actor(portal.operator))
    text = text_of(portal.get(f"/portal/users/{ivy.id}/edit").text)
    assert "Send invite to mobile app" not in text and "Mobile app: Not invited" in text
    assert (
        "This user's account is deactivated: they cannot sign in. Ask your operator to activate it." in text
    )
    refused = portal.post(f"/portal/users/{ivy.id}/edit", _edit_values(ivy, invite_mobile_app="on"))
    assert refused.status_code == 409
    reason = "This user's account is deactivated. Ask your operator to activate it first."
    assert reason in html.unescape(text_of(refused.text))

    # A user with a password is told that an invitation opens the other app with it.
    ada = accounts.account_of(portal.db, portal.me)
    assert ada is not None and ada.mobile_app == InviteState.NOT_INVITED
    mine = text_of(portal.get(f"/portal/users/{portal.me.id}/edit").text)
    assert (
        "The user already has a password: an invitation tells them by email that it opens this app too."
        in mine
    )


def test_a_resend_that_came_too_late_says_why(portal: Portal) -> None:
    cleo = make_user(portal.db, portal.occupier, first_name="Cleo")
    give_account(portal.db, cleo)  # signed in already
    refused = portal.post(f"/portal/users/{cleo.id}/resend")
    assert refused.status_code == 409
    assert "There is no invitation to resend: this user has signed in already" in text_of(refused.text)
    portal.db.expire_all()
    assert len(mails(portal.db, cleo.id, "app_invitation")) == 1


def test_edit_changes_the_role_but_never_ones_own(portal: Portal) -> None:
    brian = make_user(portal.db, portal.occupier, first_name="Brian")
    give_account(portal.db, brian)
    promoted = portal.post(f"/portal/users/{brian.id}/edit", _edit_values(brian, role="admin"))
    assert promoted.status_code == 303
    portal.db.expire_all()
    assert accounts.account_of(portal.db, brian).role == AccountRole.ADMIN  # type: ignore[union-attr]

    own = portal.get(f"/portal/users/{portal.me.id}/edit")
    assert 'name="role"' not in own.text and "You cannot change your own role; ask another admin." in own.text
    kept = portal.post(f"/portal/users/{portal.me.id}/edit", _edit_values(portal.me, role="user"))
    assert kept.status_code == 303
    portal.db.expire_all()
    assert accounts.account_of(portal.db, portal.me).role == AccountRole.ADMIN  # type: ignore[union-attr]


def test_edit_of_a_user_changed_meanwhile_says_so(portal: Portal) -> None:
    brian = make_user(portal.db, portal.occupier, first_name="Brian")
    stale = _edit_values(brian, job_title="Mine")
    portal.post(f"/portal/users/{brian.id}/edit", _edit_values(brian, job_title="Theirs"))
    response = portal.post(f"/portal/users/{brian.id}/edit", stale)
    assert response.status_code == 412
    assert "Someone changed this user meanwhile." in response.text
    portal.db.expire_all()
    assert brian.job_title == "Theirs"


# --- delete ------------------------------------------------------------------------------------------------


def test_delete_asks_first_then_deletes_permanently(portal: Portal) -> None:
    brian = make_user(portal.db, portal.occupier, first_name="Brian", last_name="Baker")
    dialog = portal.hx_get(f"/portal/users/{brian.id}/delete", "dialog-slot")
    assert dialog.status_code == 200 and dialog.text.lstrip().startswith("<dialog")
    assert "Delete Brian Baker?" in dialog.text and "permanent and cannot be reversed" in dialog.text
    fallback = portal.get(f"/portal/users/{brian.id}/delete")
    assert "<!doctype html>" in fallback.text and "Delete Brian Baker?" in fallback.text

    brian_id = brian.id
    response = portal.post(f"/portal/users/{brian_id}/delete")
    assert response.status_code == 303 and response.headers["location"] == "/portal/users"
    assert "The user was deleted." in portal.get("/portal/users").text
    portal.db.expire_all()
    assert portal.db.get(OccupierUser, brian_id) is None


def test_admins_and_oneself_cannot_be_deleted_in_the_portal(portal: Portal) -> None:
    dan = make_user(portal.db, portal.occupier, first_name="Dan")
    give_account(portal.db, dan, role=AccountRole.ADMIN)
    assert "Delete user" not in portal.get(f"/portal/users/{dan.id}").text
    confirm = portal.get(f"/portal/users/{dan.id}/delete")
    assert confirm.status_code == 403
    refused = portal.post(f"/portal/users/{dan.id}/delete")
    assert refused.status_code == 403
    assert "Occupier admins cannot be deleted in the portal; ask your operator." in refused.text
    own = portal.post(f"/portal/users/{portal.me.id}/delete")
    assert own.status_code == 403
    portal.db.expire_all()
    assert (
        portal.db.get(OccupierUser, dan.id) is not None
        and portal.db.get(OccupierUser, portal.me.id) is not None
    )


# --- a decommissioned occupier ------------------------------------------------------------------------------


def test_nothing_can_change_while_the_occupier_is_decommissioned(portal: Portal) -> None:
    brian = make_user(portal.db, portal.occupier, first_name="Brian")
    portal.occupier.state = OccupierState.DECOMMISSION_FAILED
    portal.db.flush()
    page = portal.get("/portal/users")
    assert "Your organisation is being closed down" in page.text
    assert "Add a user" not in page.text and f"/portal/users/{brian.id}/edit" not in page.text
    details = portal.get(f"/portal/users/{brian.id}").text
    assert "Edit user details" not in details and "Delete user" not in details
    assert portal.get("/portal/users/new").status_code == 409
    refused = portal.post(f"/portal/users/{brian.id}/delete")
    assert refused.status_code == 409
    assert "Your organisation is being closed down: its users cannot be changed." in refused.text
