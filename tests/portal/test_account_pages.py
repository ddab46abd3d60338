"""Getting into the portal: sign in and out, invitation and reset links, "forgot password", changing the
password (also when an administrator forces it), the language switch, and the session checks on every
request."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from occupant.accounts import service as accounts
from occupant.accounts.models import AccountRole, AccountToken, App, AppAccount, AppSession, TokenPurpose
from occupant.kit import i18n
from occupant.kit.clock import utcnow
from occupant.kit.settings import get_settings
from occupant.kit.throttle import Throttle
from occupant.notify.models import OutboxMessage
from occupant.portal import account, me, user_forms
from occupant.portal import users as user_pages
from occupant.portal.deps import PORTAL_COOKIE
from occupant.users import service as users
from occupant.users.models import OccupierUser
from tests.accounts.app_support import PASSWORD, activate, invite, link_token, mails
from tests.factories import admin_actor, make_user
from tests.portal.conftest import Portal, text_of

NEW_PASSWORD = "a brand new secret 77"


def _form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form has no CSRF field"
    return match.group(1)


def _sign_in(client: TestClient, email: str, password: str, next_url: str = "") -> object:
    page = client.get("/portal/sign-in" + (f"?next={next_url}" if next_url else ""))
    return client.post(
        "/portal/sign-in",
        data={"email": email, "password": password, "csrf_token": _form_token(page.text), "next": next_url},
        follow_redirects=False,
    )


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


@pytest.fixture
def user(portal: Portal) -> OccupierUser:
    """Chloe, an occupier user of Globex with a password (invited to the portal and the mobile app)."""
    chloe = make_user(
        portal.db, portal.occupier, first_name="Chloe", last_name="Carter", email="chloe@globex.example"
    )
    activate(portal.db, chloe)
    return chloe


# --- sign in and out ------------------------------------------------------------------------------------


def test_sign_in_opens_a_session_with_a_safe_cookie_and_lands_on_the_right_page(
    portal: Portal, user: OccupierUser, client: TestClient
) -> None:
    response = _sign_in(client, "Chloe@Globex.example", PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/portal/me"  # an occupier user: their own details
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(PORTAL_COOKIE + "="))
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "secure" not in lowered
    assert "path=/portal" in lowered
    page = client.get("/portal/me")
    assert page.status_code == 200 and "chloe@globex.example" in page.text
    # Security headers come from the app.
    assert (
        page.headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )

    activate(
        portal.db, make_user(portal.db, portal.occupier, email="boss@globex.example"), role=AccountRole.ADMIN
    )
    admin_client = TestClient(client.app)
    assert _sign_in(admin_client, "boss@globex.example", PASSWORD).headers["location"] == "/portal/users"


def test_over_https_the_cookies_are_secure_and_browsers_are_told_to_keep_to_https(
    portal: Portal, user: OccupierUser, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "strict-transport-security" not in TestClient(client.app).get("/portal/sign-in").headers  # HTTP
    monkeypatch.setattr(get_settings(), "cookie_secure", True)
    client = TestClient(client.app, base_url="https://testserver")  # a browser sends secure cookies on HTTPS
    page = client.get("/portal/sign-in")
    assert page.headers["strict-transport-security"] == "max-age=31536000"
    pre_session = page.headers.get_list("set-cookie")
    assert pre_session and all("; secure" in c.lower() for c in pre_session)
    response = _sign_in(client, "chloe@globex.example", PASSWORD)
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(PORTAL_COOKIE + "="))
    assert "; secure" in cookie.lower() and "httponly" in cookie.lower()
    for headers in (response.headers, client.get("/api/v1/openapi.json").headers):
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
        assert headers["strict-transport-security"] == "max-age=31536000"


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_the_portal(
    portal: Portal, user: OccupierUser, client: TestClient
) -> None:
    signed_out = client.get("/portal/me/edit", follow_redirects=False)
    assert signed_out.headers["location"] == "/portal/sign-in?next=%2Fportal%2Fme%2Fedit"
    assert _sign_in(client, "chloe@globex.example", PASSWORD, "/portal/me/edit").headers["location"] == (
        "/portal/me/edit"
    )
    for evil in ("https://evil.example/", "//evil.example", "/occupiers"):
        other = TestClient(client.app)
        assert _sign_in(other, "chloe@globex.example", PASSWORD, evil).headers["location"] == "/portal/me"


def test_wrong_password_unknown_email_and_deactivated_user_get_one_generic_error(
    portal: Portal, user: OccupierUser, client: TestClient
) -> None:
    wrong = _sign_in(client, "chloe@globex.example", "not the password")
    unknown = _sign_in(client, "nobody@globex.example", PASSWORD)
    users.deactivate_user(portal.db, user, actor=admin_actor(portal.operator))
    deactivated = _sign_in(client, "chloe@globex.example", PASSWORD)
    for response in (wrong, unknown, deactivated):
        assert response.status_code == 401
        assert "Email or password is incorrect." in response.text
        assert PORTAL_COOKIE not in response.headers.get("set-cookie", "")
    assert 'value="chloe@globex.example"' in wrong.text  # the email is kept, the password is not
    assert PASSWORD not in wrong.text


def test_too_many_failures_answer_429_with_the_time_to_wait(
    portal: Portal, user: OccupierUser, client: TestClient
) -> None:
    for _ in range(10):
        assert _sign_in(client, "chloe@globex.example", "wrong password!").status_code == 401
    blocked = _sign_in(client, "chloe@globex.example", PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert re.search(r"Too many attempts\. Try again in 1[45] minutes\.", text_of(blocked.text))
    portal.db.execute(update(Throttle).values(window_start=utcnow() - timedelta(hours=1)))
    assert _sign_in(client, "chloe@globex.example", PASSWORD).status_code == 303


def test_sign_in_needs_the_form_token_and_an_invitation_to_the_portal(
    portal: Portal, client: TestClient
) -> None:
    page = client.get("/portal/sign-in")
    forged = client.post(
        "/portal/sign-in",
        data={"email": "chloe@globex.example", "password": PASSWORD, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert page.status_code == 200 and forged.status_code == 403
    assert "The form expired" in forged.text

    app_only = make_user(portal.db, portal.occupier, email="mo@globex.example")
    activate(portal.db, app_only, App.MOBILE_APP)
    refused = _sign_in(client, "mo@globex.example", PASSWORD)
    assert refused.status_code == 403
    assert "Your account does not give access to the portal." in refused.text


def test_sign_out_ends_the_session_on_the_server(portal: Portal) -> None:
    cookie = portal.client.cookies.get(PORTAL_COOKIE)
    without_token = portal.post("/portal/sign-out", csrf=False)
    assert without_token.status_code == 403 and "This form has expired" in without_token.text
    response = portal.post("/portal/sign-out")
    assert response.status_code == 303 and response.headers["location"] == "/portal/sign-in"
    page = portal.client.get("/portal/sign-in")
    assert "You have signed out." in page.text
    portal.client.cookies.set(PORTAL_COOKIE, cookie or "", path="/portal")  # a copied cookie is worthless
    assert portal.get("/portal/users").headers["location"] == "/portal/sign-in?next=%2Fportal%2Fusers"


def _outbox(db: Session) -> int:
    return int(db.scalar(select(func.count(OutboxMessage.id))) or 0)


def test_every_post_needs_the_sessions_csrf_token(portal: Portal, client: TestClient) -> None:
    """Every form of the portal, found from its routes: signed in, the session's token; before a session (sign
    in, forgot password, the links), the pre-session token. A forged or missing one changes nothing."""
    user = make_user(portal.db, portal.occupier, first_name="Tina", email="tina@globex.example")
    invite(portal.db, user, App.PORTAL)
    link = link_token(mails(portal.db, user.id, "app_invitation")[-1])
    accounts.send_password_reset(portal.db, portal.me, actor=admin_actor(portal.operator))
    reset_link = link_token(mails(portal.db, portal.me.id, "password_reset")[-1])
    before = (_outbox(portal.db), portal.me.language, portal.db.scalar(select(func.count(AppSession.id))))
    public = {"/portal/sign-in", "/portal/forgot", "/portal/invitation/{token}", "/portal/reset/{token}"}
    posts = sorted(
        {
            route.path
            for router in (account.router, user_pages.router, user_forms.router, me.router)
            for route in router.routes
            if "POST" in getattr(route, "methods", ())
        }
    )
    assert len(posts) >= 12 and public <= set(posts)
    form = {
        "csrf_token": "forged",
        "email": "tina@globex.example",
        "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD,
        "first_name": "Forged",
        "last_name": "Forged",
        "lang": "fr",
        "invite_mobile_app": "on",
    }
    for path in posts:
        token = reset_link if path.startswith("/portal/reset/") else link
        url = path.replace("{user_id:int}", str(user.id)).replace("{token}", token)
        if path in public:
            response = client.post(url, data=form, follow_redirects=False)
        else:
            response = portal.post(url, form, csrf=False)
            assert "This form has expired or did not come from this site." in response.text, path
        assert response.status_code == 403, path
    portal.db.expire_all()
    assert (
        _outbox(portal.db),
        portal.me.language,
        portal.db.scalar(select(func.count(AppSession.id))),
    ) == before
    tina = portal.db.get(OccupierUser, user.id)
    assert tina is not None and tina.first_name == "Tina"
    accounts.check_link(portal.db, link, TokenPurpose.INVITATION)  # both links still unused
    accounts.check_link(portal.db, reset_link, TokenPurpose.PASSWORD_RESET)
    # htmx sends the token in a header instead.
    ok = portal.client.post(
        f"/portal/users/{user.id}/delete", headers={"X-CSRF-Token": portal.csrf}, follow_redirects=False
    )
    assert ok.status_code == 303


def test_a_deactivated_deleted_or_revoked_user_is_sent_to_sign_in_at_their_next_request(
    portal: Portal,
) -> None:
    staff = admin_actor(portal.operator)
    assert portal.get("/portal/users").status_code == 200
    users.deactivate_user(portal.db, portal.me, actor=staff)
    response = portal.get("/portal/users")
    assert response.status_code == 303 and response.headers["location"].startswith("/portal/sign-in")
    htmx = portal.client.get(
        "/portal/users?q=a",
        headers={
            "HX-Request": "true",
            "HX-Target": "user-results",
            "HX-Current-URL": "http://testserver/portal/users",
        },
        follow_redirects=False,
    )
    assert htmx.status_code == 204 and htmx.headers["hx-redirect"] == "/portal/sign-in?next=%2Fportal%2Fusers"

    bob = make_user(portal.db, portal.occupier, email="bob@globex.example")
    activate(portal.db, bob, role=AccountRole.ADMIN)
    portal.sign_in_as(bob)
    assert portal.get("/portal/users").status_code == 200
    accounts.revoke_sessions(portal.db, accounts.account_of(portal.db, bob).id)  # type: ignore[union-attr]
    assert portal.get("/portal/users").status_code == 303

    portal.sign_in_as(bob)
    users.delete_user(portal.db, bob, actor=staff)
    assert portal.get("/portal/me").status_code == 303


def test_a_role_change_applies_at_the_next_request(portal: Portal) -> None:
    assert portal.get("/portal/users").status_code == 200
    accounts.change_role(portal.db, portal.me, AccountRole.USER, actor=admin_actor(portal.operator))
    refused = portal.get("/portal/users")
    assert refused.status_code == 403 and "You do not have permission to do this." in refused.text
    assert portal.get("/portal").headers["location"] == "/portal/me"  # the same session, now a user's
    accounts.change_role(portal.db, portal.me, AccountRole.ADMIN, actor=admin_actor(portal.operator))
    assert portal.get("/portal/users").status_code == 200


# --- links ------------------------------------------------------------------------------------------------


def test_the_invitation_link_sets_the_password_then_the_user_signs_in(
    portal: Portal, client: TestClient
) -> None:
    eve = make_user(portal.db, portal.occupier, first_name="Eve", email="eve@globex.example")
    invite(portal.db, eve, App.PORTAL)
    token = link_token(mails(portal.db, eve.id, "app_invitation")[-1])
    url = f"/portal/invitation/{token}"

    form = client.get(url)
    assert form.status_code == 200
    assert "Welcome! Choose your password" in form.text
    assert form.headers["referrer-policy"] == "no-referrer" and form.headers["cache-control"] == "no-store"
    csrf = _form_token(form.text)
    mismatch = client.post(
        url, data={"password": NEW_PASSWORD, "password_confirm": "other", "csrf_token": csrf}
    )
    assert mismatch.status_code == 422 and "The two passwords are not the same." in mismatch.text
    short = client.post(url, data={"password": "short", "password_confirm": "short", "csrf_token": csrf})
    assert short.status_code == 422 and "Use at least 10 characters." in short.text
    as_email = client.post(
        url,
        data={"password": "eve@globex.example", "password_confirm": "eve@globex.example", "csrf_token": csrf},
    )
    assert "Your password must not be your email address." in as_email.text

    done = client.post(
        url,
        data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal/sign-in"
    assert "Your password is set." in client.get("/portal/sign-in").text
    assert _sign_in(client, "eve@globex.example", NEW_PASSWORD).headers["location"] == "/portal/me"

    # Used once: the link now explains itself and offers a new one.
    again = client.get(url)
    assert again.status_code == 410
    assert "This link can no longer be used" in again.text and "already been used" in again.text
    assert 'href="/portal/forgot"' in again.text


def test_a_link_page_speaks_the_language_its_email_was_written_in(portal: Portal, client: TestClient) -> None:
    greta = make_user(
        portal.db, portal.occupier, first_name="Greta", email="greta@globex.example", language="de"
    )
    invite(portal.db, greta, App.PORTAL)
    url = f"/portal/invitation/{link_token(mails(portal.db, greta.id, 'app_invitation')[-1])}"
    english_browser = {"Accept-Language": "en-GB,en;q=0.9"}

    form = client.get(url, headers=english_browser)
    assert '<html lang="de">' in form.text and "Willkommen! Legen Sie Ihr Passwort fest" in text_of(form.text)
    short = client.post(
        url,
        data={"password": "kurz", "password_confirm": "kurz", "csrf_token": _form_token(form.text)},
        headers=english_browser,
    )
    assert short.status_code == 422 and "Verwenden Sie mindestens 10 Zeichen." in text_of(short.text)
    # The visitor's own choice (the language switch) still wins.
    client.cookies.set(i18n.LANG_COOKIE, "fr")
    assert '<html lang="fr">' in client.get(url, headers=english_browser).text
    client.cookies.delete(i18n.LANG_COOKIE)

    accounts.set_password_with_link(portal.db, url.rsplit("/", 1)[1], PASSWORD, address=None)
    accounts.send_password_reset(portal.db, greta, actor=admin_actor(portal.operator))
    reset = client.get(
        f"/portal/reset/{link_token(mails(portal.db, greta.id, 'password_reset')[-1])}",
        headers=english_browser,
    )
    assert '<html lang="de">' in reset.text and "Neues Passwort festlegen" in text_of(reset.text)
    # A link that cannot be used has no holder to speak for: the browser's language.
    assert '<html lang="en">' in client.get(url, headers=english_browser).text


def test_expired_and_unknown_links_offer_to_ask_for_a_new_one(portal: Portal, client: TestClient) -> None:
    eve = make_user(portal.db, portal.occupier, email="eve@globex.example")
    invite(portal.db, eve, App.PORTAL)
    token = link_token(mails(portal.db, eve.id, "app_invitation")[-1])
    portal.db.execute(update(AccountToken).values(expires_at=utcnow() - timedelta(minutes=1)))
    expired = client.get(f"/portal/invitation/{token}")
    assert expired.status_code == 410 and "The link has expired" in expired.text
    assert "Ask your organisation's portal admin to send you a new invitation" in expired.text
    posted = client.post(
        f"/portal/invitation/{token}",
        data={
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
            "csrf_token": _form_token(client.get("/portal/sign-in").text),
        },
    )
    assert posted.status_code == 410
    unknown = client.get("/portal/reset/not-a-real-token")
    assert unknown.status_code == 410 and "The link is not valid" in unknown.text
    assert "Ask for a new link" in unknown.text


def test_forgot_password_answers_the_same_and_mails_only_real_accounts(
    portal: Portal, user: OccupierUser, client: TestClient
) -> None:
    answers = []
    for email in ("chloe@globex.example", "nobody@globex.example"):
        page = client.get("/portal/forgot")
        answers.append(
            client.post("/portal/forgot", data={"email": email, "csrf_token": _form_token(page.text)})
        )
    assert [a.status_code for a in answers] == [200, 200]
    assert text_of(answers[0].text) == text_of(answers[1].text)
    assert "If an account with this email can sign in, we have sent it a link" in answers[0].text
    [reset] = mails(portal.db, user.id, "password_reset")

    # The reset link chooses a new password; the old one stops working.
    token = link_token(reset)
    page = client.get(f"/portal/reset/{token}")
    assert "Choose a new password" in page.text
    client.post(
        f"/portal/reset/{token}",
        data={
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
            "csrf_token": _form_token(page.text),
        },
    )
    assert _sign_in(TestClient(client.app), "chloe@globex.example", PASSWORD).status_code == 401
    assert _sign_in(TestClient(client.app), "chloe@globex.example", NEW_PASSWORD).status_code == 303


# --- change password ----------------------------------------------------------------------------------------


def test_change_password_keeps_this_session_and_ends_the_others(
    portal: Portal, user: OccupierUser, client: TestClient
) -> None:
    other = TestClient(client.app)
    _sign_in(other, "chloe@globex.example", PASSWORD)
    _sign_in(client, "chloe@globex.example", PASSWORD)
    page = client.get("/portal/change-password")
    assert "Current password" in page.text
    csrf = _form_token(page.text)
    wrong = client.post(
        "/portal/change-password",
        data={
            "current_password": "nope nope nope",
            "new_password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
            "csrf_token": csrf,
        },
    )
    assert wrong.status_code == 422 and "Your current password is not correct." in wrong.text
    same = client.post(
        "/portal/change-password",
        data={
            "current_password": PASSWORD,
            "new_password": PASSWORD,
            "password_confirm": PASSWORD,
            "csrf_token": csrf,
        },
    )
    assert "Choose a password different from your current one." in same.text
    done = client.post(
        "/portal/change-password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/portal/me"
    assert "Your password was changed." in client.get("/portal/me").text
    assert other.get("/portal/me", follow_redirects=False).status_code == 303  # signed out elsewhere


def test_a_forced_reset_leads_only_to_choosing_a_new_password(
    portal: Portal, user: OccupierUser, client: TestClient
) -> None:
    accounts.force_password_reset(portal.db, user, actor=admin_actor(portal.operator))
    signed = _sign_in(client, "chloe@globex.example", PASSWORD)
    assert signed.headers["location"] == "/portal/change-password"
    for path in ("/portal/me", "/portal", "/portal/me/edit"):
        assert client.get(path, follow_redirects=False).headers["location"] == "/portal/change-password"
    page = client.get("/portal/change-password")
    assert "Your administrator asks you to choose a new password" in page.text
    assert "Current password" not in page.text  # just signed in with it
    assert "User management" not in page.text and "My details" not in page.text
    done = client.post(
        "/portal/change-password",
        data={
            "new_password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
            "csrf_token": _form_token(page.text),
        },
        follow_redirects=False,
    )
    assert done.headers["location"] == "/portal/me"
    assert client.get("/portal/me").status_code == 200
    portal.db.expire_all()
    assert (
        portal.db.scalar(select(AppAccount.must_change_password).where(AppAccount.user_id == user.id))
        is False
    )


# --- language ---------------------------------------------------------------------------------------------


def test_the_language_follows_the_choice_the_user_and_the_browser(portal: Portal, client: TestClient) -> None:
    assert (
        '<html lang="de">'
        in client.get("/portal/sign-in", headers={"Accept-Language": "de-CH, en;q=0.5"}).text
    )
    chosen = client.get("/portal/language?lang=es&next=/portal/forgot", follow_redirects=False)
    assert chosen.status_code == 303 and chosen.headers["location"] == "/portal/forgot"
    assert f"{i18n.LANG_COOKIE}=es" in chosen.headers["set-cookie"]
    assert '<html lang="es">' in client.get("/portal/sign-in", headers={"Accept-Language": "de"}).text
    ignored = client.get("/portal/language?lang=xx&next=https://evil.example/", follow_redirects=False)
    assert ignored.headers["location"] == "/portal" and "set-cookie" not in ignored.headers

    # Signed in, the choice is saved as the user's language too (the portal's and their emails').
    switched = portal.post("/portal/language", {"lang": "nl", "next": "/portal/users?q=x"})
    assert switched.status_code == 303 and switched.headers["location"] == "/portal/users?q=x"
    assert f"{i18n.LANG_COOKIE}=nl" in switched.headers["set-cookie"]
    portal.db.expire_all()
    assert portal.db.get(OccupierUser, portal.me.id).language == "nl"  # type: ignore[union-attr]
    portal.client.cookies.delete(i18n.LANG_COOKIE)
    assert '<html lang="nl">' in portal.get("/portal/users").text  # the user's language, without the cookie


def test_the_language_switcher_is_on_every_page(portal: Portal) -> None:
    page = portal.get("/portal/users").text
    assert 'action="/portal/language"' in page and 'method="post"' in page
    for code, name in i18n.LANGUAGE_NAMES.items():
        assert f'name="lang" value="{code}" lang="{code}"' in page and name in page
    assert 'name="next" value="/portal/users"' in page


def test_portal_errors_are_portal_pages(portal: Portal) -> None:
    missing = portal.get("/portal/nothing-here")
    assert missing.status_code == 404
    assert "Occupant portal" in missing.text and "Not found" in missing.text
    assert 'href="/portal"' in missing.text and "/occupiers" not in missing.text
    # The console keeps its own.
    console = portal.get("/nothing-here")
    assert console.status_code == 404 and "Occupant portal" not in console.text


def test_a_portal_session_does_not_open_the_console(portal: Portal, db: Session) -> None:
    assert portal.get("/occupiers").headers["location"].startswith("/sign-in")
    assert db.scalar(select(AppSession.id).where(AppSession.revoked_at.is_(None))) is not None
