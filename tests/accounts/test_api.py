"""App accounts through the staff REST API: set up and invite, the account actions, the user resource's
account state, errors and scope."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from occupant.accounts import service
from occupant.accounts.errors import LinkInvalid
from occupant.accounts.models import AccountRole, App, TokenPurpose
from occupant.occupiers import service as occupiers
from tests.accounts.app_support import activate, invite, link_token, mailed_link, mails
from tests.api.conftest import Api
from tests.factories import admin_actor, make_occupier, make_user


def codes(response: Any) -> set[tuple[str, str]]:
    return {(d["field"], d["code"]) for d in response.json()["details"]}


def test_a_user_never_invited_is_not_invited_with_no_role(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    api.db.flush()
    response = api.get(f"/users/{user.id}/account")
    assert response.status_code == 200
    assert response.json() == {
        "user_id": user.id,
        "status": "NOT_INVITED",
        "role": None,
        "portal": "NOT_INVITED",
        "mobile_app": "NOT_INVITED",
        "must_change_password": False,
        "invited_at": None,
        "first_sign_in_at": None,
        "last_sign_in_at": None,
        "portal_offered": True,
        "mobile_app_offered": True,
    }
    shown = api.get(f"/users/{user.id}").json()
    assert (shown["account_status"], shown["account_role"]) == ("NOT_INVITED", None)
    assert (shown["account_portal"], shown["account_mobile_app"]) == ("NOT_INVITED", "NOT_INVITED")


def test_put_sets_the_role_and_invites_with_one_link_then_a_notice(api: Api) -> None:
    user = make_user(api.db, api.occupier, language="de")
    api.db.flush()
    first = api.put(f"/users/{user.id}/account", json={"role": "admin", "invite_portal": True})
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["status"], body["role"], body["portal"], body["mobile_app"]) == (
        "AWAITING_SIGN_IN",
        "admin",
        "INVITED",
        "NOT_INVITED",
    )
    assert body["invited_at"] is not None
    api.db.expire_all()
    [mail] = mails(api.db, user.id)
    assert (mail.template, mail.to_address, mail.language) == ("app_invitation", user.email, "de")
    link = mailed_link(mail)
    assert "/portal/invitation/" in link and link_token(mail) not in first.text

    second = api.put(f"/users/{user.id}/account", json={"role": "admin", "invite_mobile_app": True})
    assert second.json()["mobile_app"] == "INVITED" and second.json()["portal"] == "INVITED"
    api.db.expire_all()
    assert [m.template for m in mails(api.db, user.id)] == ["app_invitation", "app_second_invitation"]
    # Ticking apps already invited changes nothing and sends nothing; the role still changes.
    again = api.put(
        f"/users/{user.id}/account", json={"role": "user", "invite_portal": True, "invite_mobile_app": True}
    )
    assert again.json()["role"] == "user"
    assert len(mails(api.db, user.id)) == 2
    events = api.events(target_type="occupier_user", target_id=str(user.id))
    assert [e.action for e in events] == [
        "user.created",
        "app_account.invited",
        "app_account.invited",
        "app_account.role_changed",
    ]
    assert (events[1].actor_type, events[1].actor_id) == ("api_key", str(api.key_id))
    assert events[-1].changes == {"role": ["admin", "user"]}
    listed = {u["id"]: u for u in api.walk("/users")}
    assert (listed[user.id]["account_status"], listed[user.id]["account_role"]) == (
        "AWAITING_SIGN_IN",
        "user",
    )


def test_put_refuses_bad_input_and_apps_the_occupier_does_not_offer(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    api.db.flush()
    for body, expected in [
        ({}, {("role", "required")}),
        ({"role": "owner"}, {("role", "invalid_choice")}),
        ({"role": "user", "invite_portal": "yes"}, {("invite_portal", "invalid_boolean")}),
        ({"role": "user", "invite_portal": 1}, {("invite_portal", "invalid_boolean")}),
        ({"role": "user", "password": "chosen one"}, {("password", "unknown_field")}),
    ]:
        response = api.put(f"/users/{user.id}/account", json=body)
        assert response.status_code == 422, body
        assert codes(response) == expected, body

    portal_only = make_occupier(api.db, api.operator, sites_=[api.site], mobile_app_offered=False)
    theirs = make_user(api.db, portal_only)
    api.db.flush()
    refused = api.put(
        f"/users/{theirs.id}/account", json={"role": "user", "invite_portal": True, "invite_mobile_app": True}
    )
    assert refused.status_code == 422
    assert codes(refused) == {("invite_mobile_app", "app_not_offered")}
    shown = api.get(f"/users/{theirs.id}/account").json()
    assert (shown["status"], shown["mobile_app_offered"], shown["portal_offered"]) == (
        "NOT_INVITED",
        False,
        True,
    )
    assert mails(api.db, theirs.id) == []


def test_resend_gives_a_new_link_and_kills_the_old_one_only_while_awaiting(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    invite(api.db, user, App.PORTAL)
    old_token = link_token(mails(api.db, user.id)[-1])
    resent = api.post(f"/users/{user.id}/account/resend-invitation")
    assert resent.status_code == 200 and resent.json()["status"] == "AWAITING_SIGN_IN"
    api.db.expire_all()
    _, again = mails(api.db, user.id, "app_invitation")
    assert again.context["resent"] is True and link_token(again) != old_token
    with pytest.raises(LinkInvalid):
        service.check_link(api.db, old_token, TokenPurpose.INVITATION)
    assert service.check_link(api.db, link_token(again), TokenPurpose.INVITATION)

    active = make_user(api.db, api.occupier)
    activate(api.db, active)
    refused = api.post(f"/users/{active.id}/account/resend-invitation")
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_state"
    never = make_user(api.db, api.occupier)
    api.db.flush()
    for action in ("resend-invitation", "deactivate", "password-reset", "force-password-reset", "welcome"):
        response = api.post(f"/users/{never.id}/account/{action}")
        assert response.status_code == 409, action
        assert response.json()["code"] == "invalid_state", action
    assert api.get(f"/users/{never.id}/account").json()["status"] == "NOT_INVITED"


def test_deactivate_activate_resets_and_welcome(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    activate(api.db, user)
    base = f"/users/{user.id}/account"

    reset = api.post(base + "/password-reset")
    assert reset.status_code == 200 and reset.json()["status"] == "ACTIVE"
    api.db.expire_all()
    assert "/portal/reset/" in mailed_link(mails(api.db, user.id, "password_reset")[-1])

    welcome = api.post(base + "/welcome")
    assert welcome.status_code == 200
    api.db.expire_all()
    [mail] = mails(api.db, user.id, "welcome")
    assert mail.context["portal_url"].endswith("/portal")

    forced = api.post(base + "/force-password-reset")
    assert forced.json()["must_change_password"] is True

    off = api.post(base + "/deactivate")
    assert off.status_code == 200 and off.json()["status"] == "DEACTIVATED"
    for action in ("password-reset", "welcome", "resend-invitation"):
        response = api.post(f"{base}/{action}")
        assert response.status_code == 409 and response.json()["code"] == "invalid_state", action
    assert api.post(base + "/deactivate").json()["status"] == "DEACTIVATED"  # harmless twice
    on = api.post(base + "/activate")
    assert on.status_code == 200 and on.json()["status"] == "ACTIVE"
    assert [e.action for e in api.events(target_id=str(user.id))][-5:] == [
        "app_account.password_reset_sent",
        "app_account.welcome_sent",
        "app_account.password_reset_forced",
        "app_account.deactivated",
        "app_account.activated",
    ]

    # Without a password yet, activation goes back to awaiting sign-in.
    waiting = make_user(api.db, api.occupier)
    invite(api.db, waiting, App.MOBILE_APP)
    assert api.post(f"/users/{waiting.id}/account/deactivate").json()["status"] == "DEACTIVATED"
    assert api.post(f"/users/{waiting.id}/account/activate").json()["status"] == "AWAITING_SIGN_IN"
    # A reset before the invitation was used sends the invitation again, with a new link.
    again = api.post(f"/users/{waiting.id}/account/password-reset")
    assert again.status_code == 200 and again.json()["status"] == "AWAITING_SIGN_IN"
    api.db.expire_all()
    assert [m.context["resent"] for m in mails(api.db, waiting.id, "app_invitation")] == [False, True]
    assert mails(api.db, waiting.id, "password_reset") == []


def test_lists_carry_each_users_account_state_in_one_query(api: Api, engine: Any) -> None:
    people = [make_user(api.db, api.occupier, last_name=f"Person{i}") for i in range(4)]
    activate(api.db, people[0], role=AccountRole.ADMIN)
    invite(api.db, people[1], App.MOBILE_APP)
    invite(api.db, people[2], App.PORTAL)
    service.deactivate_account(api.db, people[2], actor=admin_actor(api.operator))
    api.db.flush()
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        listed = api.walk(f"/occupiers/{api.occupier.id}/users")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    states = {u["id"]: (u["account_status"], u["account_role"], u["account_portal"]) for u in listed}
    assert states == {
        people[0].id: ("ACTIVE", "admin", "INVITED"),
        people[1].id: ("AWAITING_SIGN_IN", "user", "NOT_INVITED"),
        people[2].id: ("DEACTIVATED", "user", "INVITED"),
        people[3].id: ("NOT_INVITED", None, "NOT_INVITED"),
    }
    assert len([s for s in statements if "app_accounts" in s]) == 1
    everyone = {u["id"]: u["account_mobile_app"] for u in api.walk("/users")}
    assert everyone[people[1].id] == "INVITED"


def test_another_operators_user_is_not_found(api: Api, other: Any) -> None:
    theirs = other()["user"]
    invite(api.db, theirs, App.PORTAL)
    for method, path, body in [
        ("GET", f"/users/{theirs.id}/account", None),
        ("PUT", f"/users/{theirs.id}/account", {"role": "admin", "invite_mobile_app": True}),
        ("POST", f"/users/{theirs.id}/account/resend-invitation", None),
        ("POST", f"/users/{theirs.id}/account/deactivate", None),
        ("POST", f"/users/{theirs.id}/account/activate", None),
        ("POST", f"/users/{theirs.id}/account/password-reset", None),
        ("POST", f"/users/{theirs.id}/account/force-password-reset", None),
        ("POST", f"/users/{theirs.id}/account/welcome", None),
        ("GET", "/users/987654321/account", None),
    ]:
        response = api.request(method, path, json=body)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "not_found", (method, path)
    api.db.expire_all()
    account = service.account_of(api.db, theirs)
    assert account is not None and (account.role, account.mobile_app) == ("user", "NOT_INVITED")
    assert len(mails(api.db, theirs.id)) == 1
    assert api.client.get(f"/api/v1/users/{theirs.id}/account").status_code == 401  # no key at all


def test_a_decommissioning_occupier_refuses_account_changes(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    activate(api.db, user)
    fresh = make_user(api.db, api.occupier)
    occupiers.start_decommission(api.db, api.occupier, actor=admin_actor(api.operator))
    api.db.flush()
    for method, path, body in [
        ("PUT", f"/users/{fresh.id}/account", {"role": "user", "invite_portal": True}),
        ("POST", f"/users/{user.id}/account/deactivate", None),
        ("POST", f"/users/{user.id}/account/welcome", None),
    ]:
        response = api.request(method, path, json=body)
        assert response.status_code == 409, (method, path)
        assert response.json()["code"] == "occupier_decommissioned", (method, path)
    assert api.get(f"/users/{user.id}/account").json()["status"] == "ACTIVE"
