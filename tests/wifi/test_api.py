"""Wi-Fi Secure through the REST API: accounts, their state changes, connected devices, errors and scope."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from occupant.occupiers import service as occupiers
from occupant.radius.models import RadAcct, RadGroupReply, RadUserGroup
from occupant.radius.sync import guest_group, home_group
from occupant.wifi import service
from occupant.wifi.passwords import nt_hash
from tests.api.conftest import Api
from tests.factories import admin_actor, make_occupier, make_site, make_user
from tests.wifi.support import give_wifi, mailed_password, open_session, password_mails, radius_check


def codes(response: Any) -> set[tuple[str, str]]:
    return {(d["field"], d["code"]) for d in response.json()["details"]}


def test_create_answers_provisioning_and_emails_the_password_it_never_returns(api: Api) -> None:
    user = make_user(api.db, api.occupier, language="fr")
    api.db.flush()
    response = api.post(f"/users/{user.id}/wifi", json={"homesite_id": api.site.id})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/api/v1/users/{user.id}/wifi"
    body = response.json()
    assert body["user_id"] == user.id and body["busy"] is True
    wifi = body["wifi"]
    assert wifi["status"] == "PROVISIONING" and wifi["provisioned_at"] is None
    assert wifi["homesite"] == {"id": api.site.id, "code": "LON01", "name": api.site.name}
    assert wifi["device_limit"] == api.occupier.default_wifi_device_limit == 2
    assert wifi["username"] == user.email

    api.db.expire_all()
    [mail] = password_mails(api.db, user.id)
    assert (mail.to_address, mail.language, mail.context["reason"]) == (user.email, "fr", "created")
    password = mailed_password(mail)
    assert password not in response.text and "password" not in wifi and "nt_hash" not in response.text

    # The worker confirms once RADIUS has the credential: ACTIVE, and the user is free again.
    account = service.account_of(api.db, user)
    assert account is not None and service.confirm_provisioning(api.db, account.id)
    api.db.flush()
    after = api.get(f"/users/{user.id}/wifi")
    assert after.status_code == 200 and password not in after.text
    assert after.json()["busy"] is False
    assert after.json()["wifi"]["status"] == "ACTIVE" and after.json()["wifi"]["provisioned_at"]
    shown = api.get(f"/users/{user.id}").json()
    assert (shown["wifi_status"], shown["wifi_homesite_id"], shown["wifi_device_limit"]) == (
        "ACTIVE",
        api.site.id,
        2,
    )
    events = api.events(target_type="occupier_user", target_id=str(user.id))
    assert [e.action for e in events] == ["user.created", "wifi.created"]
    assert (events[-1].actor_type, events[-1].actor_id) == ("api_key", str(api.key_id))


def test_a_user_without_wifi_answers_null(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    api.db.flush()
    assert api.get(f"/users/{user.id}/wifi").json() == {"user_id": user.id, "busy": False, "wifi": None}
    shown = api.get(f"/users/{user.id}").json()
    assert (shown["wifi_status"], shown["wifi_homesite_id"], shown["wifi_device_limit"]) == (None, None, None)
    assert api.get(f"/users/{user.id}/wifi/sessions").json() == {"items": []}


def test_create_refuses_bad_input_with_field_codes_and_changes_nothing(api: Api, other: Any) -> None:
    elsewhere = make_site(api.db, api.operator, code="PAR01")  # the operator's, not the occupier's
    foreign = other()["site"]
    user = make_user(api.db, api.occupier)
    api.db.flush()
    home = api.site.id
    cases: list[tuple[dict[str, Any], set[tuple[str, str]]]] = [
        ({"homesite_id": elsewhere.id}, {("homesite_id", "invalid_homesite")}),
        ({"homesite_id": foreign.id}, {("homesite_id", "invalid_homesite")}),
        ({"homesite_id": 987654321}, {("homesite_id", "invalid_homesite")}),
        ({"homesite_id": home, "device_limit": 0}, {("device_limit", "invalid_device_limit")}),
        ({"homesite_id": home, "device_limit": 6}, {("device_limit", "invalid_device_limit")}),
        (
            {"homesite_id": elsewhere.id, "device_limit": 99},
            {("homesite_id", "invalid_homesite"), ("device_limit", "invalid_device_limit")},
        ),
        ({"homesite_id": home, "device_limit": True}, {("device_limit", "invalid_integer")}),
        ({"homesite_id": home, "device_limit": "two"}, {("device_limit", "invalid_integer")}),
        ({"device_limit": 2}, {("homesite_id", "required")}),
        ({"homesite_id": home, "password": "chosen"}, {("password", "unknown_field")}),
    ]
    for body, expected in cases:
        response = api.post(f"/users/{user.id}/wifi", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
        assert codes(response) == expected, body
    too_many = api.post(f"/users/{user.id}/wifi", json={"homesite_id": home, "device_limit": 6})
    assert too_many.json()["details"][0]["message"] == "The device limit must be between 1 and 5."
    assert api.get(f"/users/{user.id}/wifi").json()["wifi"] is None
    assert password_mails(api.db, user.id) == []
    assert api.events(action="wifi.created") == []


def test_missing_account_busy_user_and_second_account_answer_409(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    api.db.flush()
    for method, path, body in [
        ("PATCH", f"/users/{user.id}/wifi", {"device_limit": 3}),
        ("POST", f"/users/{user.id}/wifi/reset-password", None),
        ("DELETE", f"/users/{user.id}/wifi/sessions/1", None),
    ]:
        response = api.request(method, path, json=body)
        assert response.status_code == 409, (method, path)
        assert response.json()["code"] == "no_wifi_account", (method, path)
        assert response.json()["message"] == "This user has no Wi-Fi account."

    assert api.post(f"/users/{user.id}/wifi", json={"homesite_id": api.site.id}).status_code == 201
    # Provisioning: the user is busy until the worker confirms.
    for method, path, body in [
        ("PATCH", f"/users/{user.id}/wifi", {"device_limit": 3}),
        ("POST", f"/users/{user.id}/wifi/reset-password", None),
        ("POST", f"/users/{user.id}/wifi", {"homesite_id": api.site.id}),
    ]:
        response = api.request(method, path, json=body)
        assert response.status_code == 409, (method, path)
        assert response.json()["code"] == "action_in_progress", (method, path)

    api.db.expire_all()
    account = service.account_of(api.db, user)
    assert account is not None and service.confirm_provisioning(api.db, account.id)
    api.db.flush()
    again = api.post(f"/users/{user.id}/wifi", json={"homesite_id": api.site.id})
    assert again.status_code == 409 and again.json()["code"] == "wifi_account_exists"
    assert api.get(f"/users/{user.id}/wifi").json()["wifi"]["device_limit"] == 2
    assert len(password_mails(api.db, user.id)) == 1


def test_a_decommissioning_occupier_refuses_wifi_changes(api: Api) -> None:
    with_wifi = make_user(api.db, api.occupier)
    give_wifi(api.db, with_wifi)
    without = make_user(api.db, api.occupier)
    occupiers.start_decommission(api.db, api.occupier, actor=admin_actor(api.operator))
    api.db.flush()
    for method, path, body in [
        ("POST", f"/users/{without.id}/wifi", {"homesite_id": api.site.id}),
        ("PATCH", f"/users/{with_wifi.id}/wifi", {"status": "DEACTIVATED"}),
        ("PATCH", f"/users/{with_wifi.id}/wifi", {"device_limit": 1}),
        ("POST", f"/users/{with_wifi.id}/wifi/reset-password", None),
    ]:
        response = api.request(method, path, json=body)
        assert response.status_code == 409, (method, path)
        assert response.json()["code"] == "occupier_decommissioned", (method, path)
    wifi = api.get(f"/users/{with_wifi.id}/wifi").json()["wifi"]
    assert (wifi["status"], wifi["device_limit"]) == ("ACTIVE", 2)
    assert api.get(f"/users/{without.id}/wifi").json()["wifi"] is None
    assert len(password_mails(api.db, with_wifi.id)) == 1


def test_another_operators_user_is_not_found(api: Api, other: Any) -> None:
    theirs = other()
    user = theirs["user"]
    give_wifi(api.db, user)
    row = open_session(api.db, user.email.lower(), mac="AA-BB-CC-DD-EE-01")
    for method, path, body in [
        ("GET", f"/users/{user.id}/wifi", None),
        ("POST", f"/users/{user.id}/wifi", {"homesite_id": theirs["site"].id}),
        ("PATCH", f"/users/{user.id}/wifi", {"status": "DEACTIVATED"}),
        ("POST", f"/users/{user.id}/wifi/reset-password", None),
        ("GET", f"/users/{user.id}/wifi/sessions", None),
        ("DELETE", f"/users/{user.id}/wifi/sessions/{row.radacctid}", None),
    ]:
        response = api.request(method, path, json=body)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "not_found"
    api.db.expire_all()
    assert api.db.get(RadAcct, row.radacctid).acctstoptime is None  # type: ignore[union-attr]


def test_patch_deactivates_activates_and_moves_homesite_and_limit(api: Api) -> None:
    paris = make_site(api.db, api.operator, code="PAR01", name="Paris Opera")
    unused = make_site(api.db, api.operator, code="BER01")
    occupier = make_occupier(api.db, api.operator, sites_=[api.site, paris])
    user = make_user(api.db, occupier)
    account = give_wifi(api.db, user)
    username = account.username
    path = f"/users/{user.id}/wifi"

    off = api.patch(path, json={"status": "DEACTIVATED"})
    assert off.status_code == 200 and off.json()["wifi"]["status"] == "DEACTIVATED"
    api.db.expire_all()
    assert radius_check(api.db, username) == {}  # refused from the next attempt

    # While deactivated a new homesite and limit wait, without a mail, for the activation's password.
    moved = api.patch(path, json={"homesite_id": paris.id, "device_limit": 4}).json()["wifi"]
    assert (moved["status"], moved["homesite"]["code"], moved["device_limit"]) == ("DEACTIVATED", "PAR01", 4)
    assert len(password_mails(api.db, user.id)) == 1
    on = api.patch(path, json={"status": "ACTIVE"})
    assert on.json()["wifi"]["status"] == "PROVISIONING" and on.json()["busy"] is True
    api.db.expire_all()
    mails = password_mails(api.db, user.id)
    assert len(mails) == 2
    assert (
        mails[-1].context["reason"],
        mails[-1].context["homesite"],
        mails[-1].context["device_limit"],
    ) == (
        "activated",
        "Paris Opera",
        4,
    )
    assert service.confirm_provisioning(api.db, account.id)
    api.db.flush()
    assert radius_check(api.db, username) == {
        "NT-Password": nt_hash(mailed_password(mails[-1])),
        "Simultaneous-Use": "4",
    }

    # A new homesite on a live account: a new password by email, and RADIUS's site groups follow.
    home = api.patch(path, json={"homesite_id": api.site.id})
    assert home.status_code == 200 and home.json()["wifi"]["homesite"]["code"] == "LON01"
    api.db.expire_all()
    mails = password_mails(api.db, user.id)
    assert len(mails) == 3 and mails[-1].context["reason"] == "homesite_changed"
    assert radius_check(api.db, username)["NT-Password"] == nt_hash(mailed_password(mails[-1]))
    # The limit alone: no mail, RADIUS follows.
    assert api.patch(path, json={"device_limit": 1}).json()["wifi"]["device_limit"] == 1
    api.db.expire_all()
    assert radius_check(api.db, username)["Simultaneous-Use"] == "1"
    assert len(password_mails(api.db, user.id)) == 3

    # Every invalid field at once, and nothing changes.
    bad = api.patch(path, json={"homesite_id": unused.id, "device_limit": 9, "status": "DEACTIVATED"})
    assert bad.status_code == 422
    assert codes(bad) == {("homesite_id", "invalid_homesite"), ("device_limit", "invalid_device_limit")}
    wrong_state = api.patch(path, json={"status": "PROVISIONING"})
    assert wrong_state.status_code == 422 and codes(wrong_state) == {("status", "invalid_choice")}
    wifi = api.get(path).json()["wifi"]
    assert (wifi["status"], wifi["homesite_id"], wifi["device_limit"]) == ("ACTIVE", api.site.id, 1)
    actions = [e.action for e in api.events(target_type="occupier_user", target_id=str(user.id))]
    assert actions[1:] == [
        "wifi.created",
        "wifi.deactivated",
        "wifi.device_limit_changed",
        "wifi.homesite_changed",
        "wifi.activated",
        "wifi.homesite_changed",
        "wifi.device_limit_changed",
    ]


def test_an_occupiers_other_sites_are_guest_sites(api: Api) -> None:
    paris = make_site(api.db, api.operator, code="PAR01")
    occupier = make_occupier(api.db, api.operator, sites_=[api.site, paris])
    user = make_user(api.db, occupier)
    api.db.flush()
    assert api.post(f"/users/{user.id}/wifi", json={"homesite_id": paris.id}).status_code == 201
    api.db.expire_all()

    groups = {
        (g.groupname, g.priority) for g in api.db.query(RadUserGroup).filter_by(username=user.email.lower())
    }
    assert groups == {(home_group(paris), 1), (guest_group(api.site), 2)}


def test_reset_password_emails_a_new_one_and_the_old_one_stops_working(api: Api) -> None:
    user = make_user(api.db, api.occupier)
    account = give_wifi(api.db, user)
    first = mailed_password(password_mails(api.db, user.id)[0])
    response = api.post(f"/users/{user.id}/wifi/reset-password")
    assert response.status_code == 200 and response.json()["wifi"]["status"] == "ACTIVE"
    api.db.expire_all()
    mails = password_mails(api.db, user.id)
    second = mailed_password(mails[-1])
    assert len(mails) == 2 and mails[-1].context["reason"] == "reset" and second != first
    assert second not in response.text
    assert radius_check(api.db, account.username)["NT-Password"] == nt_hash(second) != nt_hash(first)

    assert api.patch(f"/users/{user.id}/wifi", json={"status": "DEACTIVATED"}).status_code == 200
    refused = api.post(f"/users/{user.id}/wifi/reset-password")
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_state"
    assert len(password_mails(api.db, user.id)) == 2


def test_connected_devices_are_listed_with_their_site_and_a_stale_one_can_be_cleared(api: Api) -> None:
    paris = make_site(api.db, api.operator, code="PAR01", name="Paris Opera", nas=["ap-par-1"])
    user = make_user(api.db, api.occupier)
    account = give_wifi(api.db, user)
    someone = make_user(api.db, api.occupier)
    theirs = give_wifi(api.db, someone)
    here = open_session(
        api.db, account.username, mac="AA-BB-CC-00-00-01", nas_identifier="ap-par-1", minutes_ago=30
    )
    unknown = open_session(
        api.db,
        account.username,
        mac="AA-BB-CC-00-00-02",
        nas_identifier="ap-x",
        nas_ip="192.0.2.7",
        minutes_ago=2,
    )
    closed = open_session(api.db, account.username, mac="AA-BB-CC-00-00-03")
    closed.acctstoptime = closed.acctstarttime
    not_mine = open_session(api.db, theirs.username, mac="AA-BB-CC-00-00-04")
    api.db.flush()

    listed = api.get(f"/users/{user.id}/wifi/sessions").json()["items"]
    assert [item["id"] for item in listed] == [unknown.radacctid, here.radacctid]  # newest first
    assert listed[1]["mac_address"] == "AA-BB-CC-00-00-01" and listed[1]["started_at"]
    assert listed[1]["site"] == {"id": paris.id, "code": "PAR01", "name": "Paris Opera"}
    assert (listed[0]["site"], listed[0]["nas_ip_address"]) == (None, "192.0.2.7")

    cleared = api.delete(f"/users/{user.id}/wifi/sessions/{here.radacctid}")
    assert cleared.status_code == 204 and cleared.content == b""
    api.db.expire_all()
    row = api.db.get(RadAcct, here.radacctid)
    assert row is not None and row.acctstoptime is not None and row.acctterminatecause == "Admin-Reset"
    assert [i["id"] for i in api.get(f"/users/{user.id}/wifi/sessions").json()["items"]] == [
        unknown.radacctid
    ]
    for gone in (here.radacctid, closed.radacctid, not_mine.radacctid, 987654321):
        response = api.delete(f"/users/{user.id}/wifi/sessions/{gone}")
        assert response.status_code == 404 and response.json()["code"] == "not_found", gone
    assert api.db.get(RadAcct, not_mine.radacctid).acctstoptime is None  # type: ignore[union-attr]
    assert [e.action for e in api.events(action="wifi.session_cleared")] == ["wifi.session_cleared"]


def test_user_lists_show_each_wifi_state_with_one_query_for_the_page(api: Api) -> None:
    people = [make_user(api.db, api.occupier, last_name=f"Person{n}") for n in range(4)]
    give_wifi(api.db, people[0])
    give_wifi(api.db, people[1], live=False)
    give_wifi(api.db, people[2], limit=3)
    service.deactivate_wifi(api.db, people[2], actor=admin_actor(api.operator))
    api.db.flush()
    statements: list[str] = []
    engine = api.db.get_bind().engine

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        listed = api.walk(f"/occupiers/{api.occupier.id}/users")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    states = {u["id"]: (u["wifi_status"], u["wifi_device_limit"]) for u in listed}
    assert states == {
        people[0].id: ("ACTIVE", 2),
        people[1].id: ("PROVISIONING", 2),
        people[2].id: ("DEACTIVATED", 3),
        people[3].id: (None, None),
    }
    assert len([s for s in statements if "wifi_accounts" in s]) == 1
    everyone = {u["id"]: u["wifi_status"] for u in api.walk("/users")}
    assert everyone[people[1].id] == "PROVISIONING"


def test_sites_carry_validated_vlans_that_reach_radius(api: Api) -> None:
    created = api.post("/sites", json={"code": "PAR01", "name": "Paris", "country": "FR", "wifi_vlan": 210})
    assert created.status_code == 201, created.text
    site = created.json()
    assert (site["wifi_vlan"], site["guest_vlan"]) == (210, 900)
    for body, expected in [
        ({"wifi_vlan": 0}, {("wifi_vlan", "out_of_range")}),
        ({"guest_vlan": 4095}, {("guest_vlan", "out_of_range")}),
        ({"wifi_vlan": "ten"}, {("wifi_vlan", "invalid_integer")}),
        ({"guest_vlan": 210}, {("guest_vlan", "same_vlan")}),
    ]:
        response = api.patch(f"/sites/{site['id']}", json=body)
        assert response.status_code == 422, body
        assert codes(response) == expected, body
    changed = api.patch(f"/sites/{site['id']}", json={"guest_vlan": 3999})
    assert changed.status_code == 200 and changed.json()["guest_vlan"] == 3999
    api.db.expire_all()
    replies = {
        (r.groupname.split(":")[0], r.value)
        for r in api.db.query(RadGroupReply).filter(
            RadGroupReply.groupname.endswith(":PAR01"), RadGroupReply.attribute == "Tunnel-Private-Group-Id"
        )
    }
    assert replies == {("home", "210"), ("guest", "3999")}
    same = api.post(
        "/sites", json={"code": "X1", "name": "X", "country": "FR", "wifi_vlan": 5, "guest_vlan": 5}
    )
    assert same.status_code == 422 and codes(same) == {("guest_vlan", "same_vlan")}


def test_the_openapi_document_lists_the_wifi_endpoints(api: Api) -> None:
    paths = api.client.get("/api/v1/openapi.json").json()["paths"]
    assert set(paths["/api/v1/users/{user_id}/wifi"]) == {"get", "post", "patch"}
    assert set(paths["/api/v1/users/{user_id}/wifi/reset-password"]) == {"post"}
    assert set(paths["/api/v1/users/{user_id}/wifi/sessions"]) == {"get"}
    assert set(paths["/api/v1/users/{user_id}/wifi/sessions/{session_id}"]) == {"delete"}
    create = paths["/api/v1/users/{user_id}/wifi"]["post"]
    assert create["tags"] == ["wifi"] and "no_wifi_account" in create["responses"]["409"]["description"]
    schemas = api.client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert not {"password", "nt_hash"} & set(schemas["WifiAccountOut"]["properties"])
