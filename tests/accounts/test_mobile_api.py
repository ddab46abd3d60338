"""The mobile app's API: sign-in for tokens, refresh with rotation, sign-out, and the user's own details."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from occupant.accounts import service
from occupant.accounts.models import AccountRole, App, AppSession
from occupant.occupiers import service as occupiers
from occupant.users.models import OccupierUser
from tests.accounts.app_support import PASSWORD, activate, invite
from tests.api.conftest import Api
from tests.factories import admin_actor, make_user
from tests.wifi.support import give_wifi, open_session

GENERIC = {"code": "not_authenticated", "message": "Email or password is incorrect.", "details": None}


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/token", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def me(client: TestClient, token: str) -> Any:
    return client.get("/api/v1/me", headers=bearer(token))


def tokens(api: Api, user: OccupierUser) -> dict[str, Any]:
    response = sign_in(api.client, user.email)
    assert response.status_code == 200, response.text
    return dict(response.json())


def refresh(client: TestClient, refresh_token: str) -> Any:
    return client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})


def test_sign_in_issues_tokens_that_open_me(api: Api) -> None:
    user = make_user(api.db, api.occupier, first_name="Ada", last_name="Abbott", email="Ada@Globex.example")
    activate(api.db, user, App.MOBILE_APP)

    response = sign_in(api.client, "  ada@GLOBEX.example ")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and 3590 <= body["expires_in"] <= 3600
    assert body["access_token"] != body["refresh_token"]
    assert response.headers["cache-control"] == "no-store"

    mine = me(api.client, body["access_token"])
    assert mine.status_code == 200, mine.text
    shown = mine.json()
    assert (shown["id"], shown["first_name"], shown["email"]) == (user.id, "Ada", "Ada@globex.example")
    assert shown["occupier_name"] == "Acme Ltd"
    assert shown["account"] == {
        "role": "user",
        "status": "ACTIVE",
        "portal": "NOT_INVITED",
        "mobile_app": "SIGNED_IN",
    }
    assert shown["wifi"] is None
    events = [e.action for e in api.events(target_id=str(user.id))]
    assert events[-1] == "app_account.signed_in"
    # The first sign-in through the app shows in the staff view too.
    account = api.get(f"/users/{user.id}/account").json()
    assert (account["status"], account["mobile_app"]) == ("ACTIVE", "SIGNED_IN")
    assert account["first_sign_in_at"] is not None


def test_every_failed_sign_in_gets_the_same_answer(api: Api) -> None:
    user = make_user(api.db, api.occupier, email="ada@globex.example")
    activate(api.db, user, App.MOBILE_APP)
    invited_only = make_user(api.db, api.occupier, email="ben@globex.example")
    invite(api.db, invited_only, App.MOBILE_APP)  # no password chosen yet
    gone = make_user(api.db, api.occupier, email="cy@globex.example")
    activate(api.db, gone, App.MOBILE_APP)
    service.deactivate_account(api.db, gone, actor=admin_actor(api.operator))
    api.db.flush()

    for email, password in [
        ("ada@globex.example", "wrong password here"),
        ("nobody@globex.example", PASSWORD),
        ("ben@globex.example", PASSWORD),
        ("cy@globex.example", PASSWORD),
    ]:
        response = sign_in(api.client, email, password)
        assert response.status_code == 401, email
        assert response.json() == GENERIC, email
        assert response.headers["www-authenticate"] == "Bearer"
    assert api.events(action="app_account.signed_in") == []

    blank = api.client.post("/api/v1/auth/token", json={"email": "", "password": ""})
    assert blank.status_code == 422
    assert {(d["field"], d["code"]) for d in blank.json()["details"]} == {
        ("email", "required"),
        ("password", "required"),
    }
    assert api.client.post("/api/v1/auth/token", json={"email": "a@b.c"}).status_code == 422


def test_too_many_failures_answer_429_with_retry_after_even_for_the_right_password(api: Api) -> None:
    user = make_user(api.db, api.occupier, email="ada@globex.example")
    activate(api.db, user, App.MOBILE_APP)
    for _ in range(10):
        assert sign_in(api.client, user.email, "not the password").status_code == 401
    limited = sign_in(api.client, user.email)
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 15 * 60 + 1


def test_a_forced_reset_answers_403_and_the_portal_only_account_is_not_let_in(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    activate(api.db, user, App.MOBILE_APP)
    service.force_password_reset(api.db, user, actor=admin_actor(api.operator))
    api.db.flush()
    forced = sign_in(api.client, user.email)
    assert forced.status_code == 403
    assert forced.json()["code"] == "password_change_required"
    assert "portal" in forced.json()["message"] and "access_token" not in forced.text

    portal_only = make_user(api.db, api.occupier)
    activate(api.db, portal_only, App.PORTAL)
    refused = sign_in(api.client, portal_only.email)
    assert refused.status_code == 403 and refused.json()["code"] == "app_not_available"


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    activate(api.db, user, App.MOBILE_APP)
    first = tokens(api, user)

    second = refresh(api.client, first["refresh_token"])
    assert second.status_code == 200, second.text
    pair = second.json()
    assert pair["token_type"] == "Bearer" and pair["expires_in"] > 3500
    assert pair["refresh_token"] != first["refresh_token"] and pair["access_token"] != first["access_token"]
    assert me(api.client, first["access_token"]).status_code == 401  # replaced
    assert me(api.client, pair["access_token"]).status_code == 200

    # The old refresh token again: someone else holds it. The whole session ends, for both holders.
    reused = refresh(api.client, first["refresh_token"])
    assert reused.status_code == 401 and reused.json()["code"] == "not_authenticated"
    assert me(api.client, pair["access_token"]).status_code == 401
    assert refresh(api.client, pair["refresh_token"]).status_code == 401
    api.db.expire_all()
    [row] = api.db.query(AppSession).all()
    assert row.revoked_at is not None

    # A new sign-in works as before.
    assert me(api.client, tokens(api, user)["access_token"]).status_code == 200
    assert refresh(api.client, "made.up").status_code == 401
    assert refresh(api.client, "").status_code == 422


def test_sign_out_ends_the_session_at_once(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    activate(api.db, user, App.MOBILE_APP)
    pair = tokens(api, user)
    other_device = tokens(api, user)

    out = api.client.post("/api/v1/auth/sign-out", headers=bearer(pair["access_token"]))
    assert out.status_code == 204 and out.content == b""
    assert me(api.client, pair["access_token"]).status_code == 401
    assert refresh(api.client, pair["refresh_token"]).status_code == 401
    assert me(api.client, other_device["access_token"]).status_code == 200  # another session stays
    assert api.events(action="app_account.signed_out")[-1].target_id == str(user.id)
    again = api.client.post("/api/v1/auth/sign-out", headers=bearer(pair["access_token"]))
    assert again.status_code == 401


def test_deactivation_and_an_email_change_end_the_app_sessions_at_the_next_request(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    activate(api.db, user, App.MOBILE_APP)
    pair = tokens(api, user)
    assert api.post(f"/users/{user.id}/account/deactivate").status_code == 200
    assert me(api.client, pair["access_token"]).status_code == 401
    assert refresh(api.client, pair["refresh_token"]).status_code == 401
    assert sign_in(api.client, user.email).json() == GENERIC

    assert api.post(f"/users/{user.id}/account/activate").json()["status"] == "ACTIVE"
    pair = tokens(api, user)
    assert api.post(f"/users/{user.id}/deactivate").status_code == 200  # the whole user
    assert me(api.client, pair["access_token"]).status_code == 401
    assert api.post(f"/users/{user.id}/reactivate").status_code == 200

    pair = tokens(api, user)
    changed = api.post(f"/users/{user.id}/change-email", json={"email": "new.address@globex.example"})
    assert changed.status_code == 200
    assert me(api.client, pair["access_token"]).status_code == 401
    assert sign_in(api.client, "new.address@globex.example").status_code == 200


def test_a_password_change_a_forced_reset_and_deletion_end_the_app_sessions_too(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    activate(api.db, user)
    pair = tokens(api, user)

    # The user changes their password in the portal: the app must sign in again, with the new one.
    portal = service.sign_in(api.db, email=user.email, password=PASSWORD, app=App.PORTAL, address=None)
    service.change_own_password(
        api.db,
        portal.account,
        current=PASSWORD,
        new="a new long passphrase",
        keep_session_id=portal.session_row.id,
    )
    api.db.flush()
    assert me(api.client, pair["access_token"]).status_code == 401
    assert refresh(api.client, pair["refresh_token"]).status_code == 401
    assert sign_in(api.client, user.email).json() == GENERIC
    pair = tokens_with(api, user, "a new long passphrase")

    forced = api.post(f"/users/{user.id}/account/force-password-reset")
    assert forced.status_code == 200
    assert me(api.client, pair["access_token"]).status_code == 401
    assert refresh(api.client, pair["refresh_token"]).status_code == 401

    api.db.expire_all()
    again = service.sign_in(
        api.db, email=user.email, password="a new long passphrase", app=App.PORTAL, address=None
    )
    assert again.must_change_password  # the portal's "choose a new password" step
    service.change_own_password(
        api.db,
        again.account,
        current=None,
        new="yet another passphrase",
        keep_session_id=again.session_row.id,
    )
    api.db.flush()
    pair = tokens_with(api, user, "yet another passphrase")
    assert api.delete(f"/users/{user.id}").status_code == 204
    assert me(api.client, pair["access_token"]).status_code == 401
    assert refresh(api.client, pair["refresh_token"]).status_code == 401
    assert sign_in(api.client, user.email, "yet another passphrase").json() == GENERIC


def tokens_with(api: Api, user: OccupierUser, password: str) -> dict[str, Any]:
    response = sign_in(api.client, user.email, password)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_me_takes_only_app_tokens_and_staff_endpoints_take_only_api_keys(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    activate(api.db, user, role=AccountRole.ADMIN)  # portal and mobile app
    pair = tokens(api, user)
    for path in ("/users", f"/users/{user.id}", f"/users/{user.id}/account", f"/occupiers/{api.occupier.id}"):
        response = api.client.get("/api/v1" + path, headers=bearer(pair["access_token"]))
        assert response.status_code == 401, path
    assert api.get("/me").status_code == 401  # the operator API key
    assert api.post("/auth/sign-out").status_code == 401
    assert api.client.get("/api/v1/me").status_code == 401
    assert (
        api.client.get("/api/v1/me", headers={"Authorization": f"Basic {pair['access_token']}"}).status_code
        == 401
    )
    # A portal session's token is not a mobile token either.
    portal = service.sign_in(api.db, email=user.email, password=PASSWORD, app=App.PORTAL, address="192.0.2.9")
    api.db.flush()
    assert me(api.client, portal.token).status_code == 401


def test_me_shows_the_wifi_account_and_the_devices_connected_now(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    activate(api.db, user, App.MOBILE_APP)
    account = give_wifi(api.db, user, limit=3)
    open_session(api.db, account.username, mac="AA-BB-CC-00-11-22")
    shown = me(api.client, tokens(api, user)["access_token"]).json()
    wifi = shown["wifi"]
    assert (wifi["status"], wifi["device_limit"], wifi["username"]) == ("ACTIVE", 3, user.email)
    assert wifi["homesite"] == {"id": api.site.id, "code": "LON01", "name": api.site.name}
    [device] = wifi["devices"]
    assert device["mac_address"] == "AA-BB-CC-00-11-22" and device["started_at"]
    assert "nas_ip_address" not in device and "password" not in str(shown)


def test_patch_me_changes_only_what_is_sent_and_reports_every_invalid_field(api: Api) -> None:
    user = make_user(api.db, api.occupier, first_name="Ada", last_name="Abbott", job_title="Engineer")
    activate(api.db, user, App.MOBILE_APP)
    token = tokens(api, user)["access_token"]

    changed = api.client.patch(
        "/api/v1/me",
        headers=bearer(token),
        json={"last_name": "Byron", "mobile": "07911 123456", "language": "FR", "job_title": ""},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["first_name"], body["last_name"], body["mobile"], body["language"]) == (
        "Ada",
        "Byron",
        "+447911123456",
        "fr",
    )
    assert body["job_title"] is None
    event = api.events(action="user.updated")[-1]
    assert (event.actor_type, event.actor_id) == ("occupier_user", str(user.id))

    bad = api.client.patch(
        "/api/v1/me",
        headers=bearer(token),
        json={"first_name": "", "mobile": "12", "language": "xx", "email": "me@elsewhere.example"},
    )
    assert bad.status_code == 422
    assert {(d["field"], d["code"]) for d in bad.json()["details"]} == {
        ("first_name", "required"),
        ("email", "unknown_field"),
    }
    rules = api.client.patch("/api/v1/me", headers=bearer(token), json={"mobile": "12", "language": "xx"})
    assert rules.status_code == 422
    assert {(d["field"], d["code"]) for d in rules.json()["details"]} == {
        ("mobile", "invalid_phone"),
        ("language", "invalid_language"),
    }
    api.db.expire_all()
    assert (user.first_name, user.email, user.language) == ("Ada", user.email, "fr")
    assert api.client.patch("/api/v1/me", json={"first_name": "X"}).status_code == 401


def test_a_decommissioning_occupier_refuses_own_changes(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    activate(api.db, user, App.MOBILE_APP)
    token = tokens(api, user)["access_token"]
    occupiers.start_decommission(api.db, api.occupier, actor=admin_actor(api.operator))
    api.db.flush()
    refused = api.client.patch("/api/v1/me", headers=bearer(token), json={"first_name": "X"})
    assert refused.status_code == 409 and refused.json()["code"] == "occupier_decommissioned"
    assert me(api.client, token).json()["first_name"] == user.first_name
