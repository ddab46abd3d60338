"""Occupier users through the API: create, read, change, act on, delete, list."""

from __future__ import annotations

from datetime import timedelta

import pytest

from occupant.groups import service as groups
from occupant.kit.clock import utcnow
from occupant.occupiers import service as occupiers
from occupant.users.models import OccupierUser
from tests.factories import admin_actor, make_occupier, make_user


def new_user(**fields):
    return {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@Example.COM", **fields}


def test_create_user_returns_it_with_location_etag_and_normalised_fields(api):
    group = groups.create_group(api.db, actor=admin_actor(api.operator), name="Doors", site_id=api.site.id)
    api.db.flush()
    response = api.post(
        f"/occupiers/{api.occupier.id}/users",
        json=new_user(mobile="07911 123456", language="FR", job_title="Engineer", group_ids=[group.id]),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/v1/users/{body['id']}"
    assert response.headers["etag"] == f'"{body["id"]}.1"'
    assert body["email"] == "ada@example.com"
    assert body["mobile"] == "+447911123456"
    assert body["language"] == "fr"
    assert body["status"] == "ACTIVE" and body["busy"] is False
    assert body["occupier_id"] == api.occupier.id
    assert body["group_ids"] == [group.id]

    fetched = api.get(f"/users/{body['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert fetched.headers["etag"] == response.headers["etag"]


def test_api_writes_are_audited_as_the_api_key(api):
    user_id = api.post(f"/occupiers/{api.occupier.id}/users", json=new_user()).json()["id"]
    assert api.post(f"/users/{user_id}/deactivate").status_code == 200
    events = api.events(target_type="occupier_user", target_id=str(user_id))
    assert [e.action for e in events] == ["user.created", "user.deactivated"]
    assert {(e.actor_type, e.actor_id) for e in events} == {("api_key", str(api.key_id))}
    assert all(e.request_id for e in events)


def test_email_must_be_unique_in_the_operator_ignoring_case(api):
    other_occupier = make_occupier(api.db, api.operator, sites_=[api.site])
    make_user(api.db, other_occupier, email="ada@example.com")
    api.db.flush()
    response = api.post(f"/occupiers/{api.occupier.id}/users", json=new_user(email="ADA@example.com"))
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "email_taken"
    assert body["details"] == [
        {"field": "email", "code": "email_taken", "message": "Email must be unique within the operator."}
    ]


def test_every_invalid_field_is_reported_at_once(api):
    response = api.post(
        f"/occupiers/{api.occupier.id}/users",
        json=new_user(email="not-an-email", mobile="12", direct_line="abc", language="xx"),
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    codes = {d["field"]: d["code"] for d in body["details"]}
    assert codes == {
        "email": "invalid_email",
        "mobile": "invalid_phone",
        "direct_line": "invalid_phone",
        "language": "invalid_language",
    }


def test_shape_errors_name_each_field(api):
    response = api.post(
        f"/occupiers/{api.occupier.id}/users",
        json={
            "last_name": "  ",
            "email": "a@example.com",
            "first_nam": "Ada",
            "job_title": "x" * 201,
            "group_ids": ["one"],
        },
    )
    assert response.status_code == 422
    details = {(d["field"], d["code"]) for d in response.json()["details"]}
    assert details == {
        ("first_name", "required"),
        ("last_name", "required"),
        ("first_nam", "unknown_field"),
        ("job_title", "too_long"),
        ("group_ids.0", "invalid_integer"),
    }
    assert all(d["message"] for d in response.json()["details"])


def test_unknown_field_on_update_is_refused(api):
    user = make_user(api.db, api.occupier)
    api.db.flush()
    response = api.patch(f"/users/{user.id}", json={"status": "DEACTIVATED"})
    assert response.status_code == 422
    assert response.json()["details"] == [
        {"field": "status", "code": "unknown_field", "message": "Unknown field."}
    ]


@pytest.mark.parametrize("raw", ['{"first_name": ', "not json", '{"a": 1,}'])
def test_malformed_json_is_400(api, raw):
    response = api.post(
        f"/occupiers/{api.occupier.id}/users", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


@pytest.mark.parametrize("payload", [[], "text", 5, None, [new_user()], {"first_name": {"a": 1}}])
def test_bodies_of_the_wrong_shape_are_422_never_500(api, payload):
    response = api.post(f"/occupiers/{api.occupier.id}/users", json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    "path",
    [
        "/users/abc",
        "/users/0",
        "/users/-3",
        "/users/1.5",
        "/users/99999999999999999999999999",
        f"/users/{2**63}",
    ],
)
def test_bad_ids_in_the_path_are_422(api, path):
    response = api.get(path)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "user_id"


def test_huge_numbers_in_bodies_and_queries_are_refused_cleanly(api):
    too_big = 10**30
    response = api.post(f"/occupiers/{api.occupier.id}/users", json=new_user(group_ids=[too_big]))
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "group_ids.0"
    for params in (
        {"occupier_id": too_big},
        {"limit": too_big},
        {"limit": 0},
        {"limit": "many"},
        {"status": "HAPPY"},
    ):
        response = api.get("/users", params=params)
        assert response.status_code == 422, params
        assert response.json()["code"] == "validation_error"


def test_nul_characters_are_refused_not_crashing(api):
    response = api.get("/users", params={"q": "ab\x00cd"})
    assert response.status_code in (200, 422)
    response = api.post(f"/occupiers/{api.occupier.id}/users", json=new_user(first_name="A\x00da"))
    assert response.status_code in (201, 422)


def test_patch_changes_only_the_fields_sent_and_moves_the_etag(api):
    user = make_user(api.db, api.occupier, job_title="Engineer", mobile="07911 123456")
    api.db.flush()
    first = api.get(f"/users/{user.id}")
    response = api.patch(
        f"/users/{user.id}",
        json={"last_name": "Byron", "mobile": ""},
        headers={"If-Match": first.headers["etag"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["last_name"] == "Byron" and body["mobile"] is None and body["job_title"] == "Engineer"
    assert response.headers["etag"] != first.headers["etag"]
    assert api.get(f"/users/{user.id}").headers["etag"] == response.headers["etag"]


def test_stale_if_match_is_412_and_changes_nothing(api):
    user = make_user(api.db, api.occupier, first_name="Ada")
    api.db.flush()
    stale = api.get(f"/users/{user.id}").headers["etag"]
    assert (
        api.patch(f"/users/{user.id}", json={"job_title": "CTO"}, headers={"If-Match": stale}).status_code
        == 200
    )
    for header in (stale, '"999.1"', "garbage", f'W/"{user.id}.2"'):
        response = api.patch(f"/users/{user.id}", json={"first_name": "Eve"}, headers={"If-Match": header})
        assert response.status_code == 412, header
        assert response.json()["code"] == "precondition_failed"
    assert api.delete(f"/users/{user.id}", headers={"If-Match": stale}).status_code == 412
    assert api.get(f"/users/{user.id}").json()["first_name"] == "Ada"
    assert (
        api.patch(f"/users/{user.id}", json={"first_name": "Eve"}, headers={"If-Match": "*"}).status_code
        == 200
    )


def test_email_in_patch_is_an_email_change(api):
    user = make_user(api.db, api.occupier, email="old@example.com")
    api.db.flush()
    response = api.patch(f"/users/{user.id}", json={"email": "New@Example.com"})
    assert response.status_code == 200
    assert response.json()["email"] == "New@example.com"
    assert [e.action for e in api.events(target_type="occupier_user", target_id=str(user.id))][
        -1
    ] == "user.email_changed"


def test_change_email_action_and_its_clash(api):
    user = make_user(api.db, api.occupier, email="one@example.com")
    make_user(api.db, api.occupier, email="two@example.com")
    api.db.flush()
    response = api.post(f"/users/{user.id}/change-email", json={"email": "three@example.com"})
    assert response.status_code == 200 and response.json()["email"] == "three@example.com"
    clash = api.post(f"/users/{user.id}/change-email", json={"email": "TWO@example.com"})
    assert clash.status_code == 409 and clash.json()["code"] == "email_taken"
    missing = api.post(f"/users/{user.id}/change-email", json={})
    assert missing.status_code == 422 and missing.json()["details"][0]["field"] == "email"


def test_deactivate_reactivate(api):
    user = make_user(api.db, api.occupier)
    api.db.flush()
    response = api.post(f"/users/{user.id}/deactivate")
    assert response.status_code == 200 and response.json()["status"] == "DEACTIVATED"
    assert api.post(f"/users/{user.id}/deactivate").json()["status"] == "DEACTIVATED"
    response = api.post(f"/users/{user.id}/reactivate")
    assert response.status_code == 200 and response.json()["status"] == "ACTIVE"
    again = api.post(f"/users/{user.id}/reactivate")
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"


def test_delete_user(api):
    user = make_user(api.db, api.occupier)
    api.db.flush()
    etag = api.get(f"/users/{user.id}").headers["etag"]
    response = api.delete(f"/users/{user.id}", headers={"If-Match": etag})
    assert response.status_code == 204 and response.content == b""
    assert api.get(f"/users/{user.id}").status_code == 404
    assert api.delete(f"/users/{user.id}").json()["code"] == "not_found"
    assert [e.action for e in api.events(target_type="occupier_user", target_id=str(user.id))][
        -1
    ] == "user.deleted"


def test_busy_user_answers_action_in_progress(api):
    user = make_user(api.db, api.occupier)
    user.busy_owner, user.busy_until = "wifi", utcnow() + timedelta(minutes=5)
    api.db.flush()
    assert api.get(f"/users/{user.id}").json()["busy"] is True
    for method, path, body in [
        ("PATCH", f"/users/{user.id}", {"job_title": "x"}),
        ("DELETE", f"/users/{user.id}", None),
        ("POST", f"/users/{user.id}/deactivate", None),
        ("POST", f"/users/{user.id}/change-email", {"email": "z@example.com"}),
        ("PUT", f"/users/{user.id}/groups", {"group_ids": []}),
    ]:
        response = api.request(method, path, json=body)
        assert response.status_code == 409, (method, path)
        assert response.json()["code"] == "action_in_progress"


def test_decommissioning_occupier_refuses_user_changes(api):
    user = make_user(api.db, api.occupier)
    occupiers.start_decommission(api.db, api.occupier, actor=admin_actor(api.operator))
    api.db.flush()
    for method, path, body in [
        ("POST", f"/occupiers/{api.occupier.id}/users", new_user()),
        ("PATCH", f"/users/{user.id}", {"job_title": "x"}),
        ("DELETE", f"/users/{user.id}", None),
        ("POST", f"/users/{user.id}/deactivate", None),
    ]:
        response = api.request(method, path, json=body)
        assert response.status_code == 409, (method, path)
        assert response.json()["code"] == "occupier_decommissioned"
    assert api.get(f"/users/{user.id}").status_code == 200


def test_user_groups_get_and_put(api):
    door = groups.create_group(api.db, actor=admin_actor(api.operator), name="Door", site_id=api.site.id)
    own = groups.create_group(
        api.db, actor=admin_actor(api.operator), name="Team", occupier_id=api.occupier.id
    )
    elsewhere = make_occupier(api.db, api.operator)
    foreign = groups.create_group(api.db, actor=admin_actor(api.operator), name="X", occupier_id=elsewhere.id)
    user = make_user(api.db, api.occupier)
    api.db.flush()
    assert api.get(f"/users/{user.id}/groups").json() == {"group_ids": []}
    response = api.put(f"/users/{user.id}/groups", json={"group_ids": [own.id, door.id]})
    assert response.status_code == 200
    assert response.json() == {"group_ids": sorted([door.id, own.id])}
    assert api.get(f"/users/{user.id}").json()["group_ids"] == sorted([door.id, own.id])
    refused = api.put(f"/users/{user.id}/groups", json={"group_ids": [foreign.id]})
    assert refused.status_code == 422 and refused.json()["details"][0]["code"] == "invalid_group"
    assert api.put(f"/users/{user.id}/groups", json={"group_ids": []}).json() == {"group_ids": []}
    assert [e.action for e in api.events(target_type="occupier_user", target_id=str(user.id))].count(
        "user.groups_changed"
    ) == 2


@pytest.fixture
def crowd(api):
    """Seven users over two occupiers, with known names and statuses."""
    second = make_occupier(api.db, api.operator, sites_=[api.site], name="Beta Corp")
    names = [
        ("Ann", "Smith", api.occupier),
        ("Bob", "Smith", api.occupier),
        ("Cy", "Jones", api.occupier),
        ("Di", "Brown", second),
        ("Ed", "Smithers", second),
        ("Flo", "Adams", second),
        ("Gus", "Young", api.occupier),
    ]
    made = [
        make_user(api.db, occ, first_name=f, last_name=last, email=f"{f.lower()}@corp.example")
        for f, last, occ in names
    ]
    made[2].status = "DEACTIVATED"
    api.db.flush()
    return second, made


def test_walking_every_page_returns_each_user_once_in_name_order(api, crowd):
    _, made = crowd
    items = api.walk("/users", limit=2)
    assert [i["id"] for i in items] == [u.id for u in sorted(made, key=lambda u: (u.sort_key, u.id))]
    assert len({i["id"] for i in items}) == 7
    first = api.get("/users", params={"limit": 2})
    assert first.json()["next_cursor"] and "cursor=" in first.headers["link"]


def test_user_filters(api, crowd):
    second, made = crowd

    def ids(path, **params):
        return {i["id"] for i in api.walk(path, **params)}

    by_name = {u.first_name: u.id for u in made}
    assert ids("/users", occupier_id=second.id) == {by_name[n] for n in ("Di", "Ed", "Flo")}
    assert ids("/users", status="DEACTIVATED") == {by_name["Cy"]}
    assert ids("/users", q="smith") == {by_name[n] for n in ("Ann", "Bob", "Ed")}
    assert ids("/users", q="SMITH", occupier_id=second.id, limit=1) == {by_name["Ed"]}
    assert ids("/users", q="flo@corp") == {by_name["Flo"]}
    assert ids("/users", q="zz") == set()
    assert ids(f"/occupiers/{second.id}/users") == {by_name[n] for n in ("Di", "Ed", "Flo")}
    assert ids(f"/occupiers/{api.occupier.id}/users", q="smith", limit=1) == {
        by_name[n] for n in ("Ann", "Bob")
    }
    assert ids(f"/occupiers/{api.occupier.id}/users", status="ACTIVE") == {
        by_name[n] for n in ("Ann", "Bob", "Gus")
    }


def test_list_items_carry_the_user_fields(api, crowd):
    item = api.get("/users", params={"q": "gus"}).json()["items"][0]
    assert set(item) == {
        "id",
        "occupier_id",
        "first_name",
        "last_name",
        "email",
        "job_title",
        "mobile",
        "direct_line",
        "language",
        "employee_number",
        "username",
        "external_id",
        "status",
        "busy",
        "wifi_status",
        "wifi_homesite_id",
        "wifi_device_limit",
        "account_status",
        "account_role",
        "account_portal",
        "account_mobile_app",
        "created_at",
        "updated_at",
    }


def test_bad_cursors_are_validation_errors(api, crowd):
    from occupant.kit.pagination import encode_cursor

    for cursor in (
        "!!!",
        "bm90LWpzb24",
        encode_cursor([1, 2]),
        encode_cursor(["a"]),
        encode_cursor([{"x": 1}, 2]),
        encode_cursor(["a", 10**40]),
        encode_cursor(["a", True]),
    ):
        response = api.get("/users", params={"cursor": cursor})
        assert response.status_code == 422, cursor
        assert response.json()["details"][0] == {
            "field": "cursor",
            "code": "invalid_cursor",
            "message": "The cursor is not valid.",
        }


def test_page_size_is_capped(api):
    response = api.get("/users", params={"limit": 501})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "limit"
    assert api.get("/users", params={"limit": 500}).status_code == 200


def test_users_of_another_operator_are_not_found(api, other):
    theirs = other()
    assert api.get(f"/occupiers/{theirs['occupier'].id}/users").status_code == 404
    assert api.post(f"/occupiers/{theirs['occupier'].id}/users", json=new_user()).status_code == 404
    assert api.get("/users", params={"occupier_id": theirs["occupier"].id}).json()["items"] == []
    assert theirs["user"].id not in {i["id"] for i in api.walk("/users")}
    api.db.expire_all()
    assert api.db.get(OccupierUser, theirs["user"].id) is not None
