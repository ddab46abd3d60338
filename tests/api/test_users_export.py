"""``GET /api/v1/users/export.csv``: the file, its filters as query parameters, the errors, the scope."""

from __future__ import annotations

import csv
import io
import math
import re

import pytest

from occupant.authz.actor import Role
from occupant.groups import service as groups
from occupant.staff.models import ApiKey
from occupant.users import export
from tests.api.conftest import make_key
from tests.factories import admin_actor, make_occupier, make_user
from tests.users.support import StatementLog, bulk_users
from tests.wifi.support import give_wifi


def rows_of(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(response.text[1:])))


def scoped_key(api, role: Role, occupier_id: int | None) -> dict[str, str]:
    """The headers of a key with another role (occupier keys are made by the operator for integrations)."""
    key_id, token = make_key(api.db, api.operator, name=f"{role} key")
    key = api.db.get(ApiKey, key_id)
    key.role, key.occupier_id = role, occupier_id
    api.db.flush()
    return {"Authorization": f"Bearer {token}"}


def test_the_file_neutralises_formulas_and_names_itself(api):
    ada = make_user(api.db, api.occupier, first_name="=cmd()", last_name="Lovelace", mobile="+447911123456")
    give_wifi(api.db, ada, limit=2)
    response = api.get("/users/export.csv", params={"occupier_id": api.occupier.id})
    (row,) = rows_of(response)
    assert row["first_name"] == "'=cmd()"
    assert row["mobile"] == "'+447911123456"
    assert (row["wifi_status"], row["wifi_homesite"], row["wifi_device_limit"]) == ("ACTIVE", "LON01", "2")
    assert re.fullmatch(
        r'attachment; filename="users-acme-ltd-\d{4}-\d{2}-\d{2}\.csv"',
        response.headers["content-disposition"],
    )
    assert response.headers["cache-control"] == "no-store"
    (event,) = api.events(action="users.exported")
    assert event.actor_type == "api_key" and event.actor_id == str(api.key_id)
    assert event.changes == {"filter": {"occupier_id": api.occupier.id}, "rows": 1}
    assert event.request_id == response.headers["x-request-id"]


def test_filters_are_query_parameters(api):
    wendy = make_user(api.db, api.occupier, first_name="Wendy", last_name="Wifi")
    give_wifi(api.db, wendy)
    make_user(api.db, api.occupier, first_name="Nemo", last_name="None")
    other = make_occupier(api.db, api.operator, sites_=[api.site], name="Initech")
    make_user(api.db, other, first_name="Ivy", last_name="Initech")

    def names(**params: object) -> list[str]:
        return [r["first_name"] for r in rows_of(api.get("/users/export.csv", params=params))]

    assert names() == ["Ivy", "Nemo", "Wendy"]  # the whole operator, in name order
    assert names(occupier_id=api.occupier.id, wifi="none") == ["Nemo"]
    assert names(wifi="active") == ["Wendy"]  # any case
    assert names(wifi_homesite_id=api.site.id, wifi_device_limit=2) == ["Wendy"]
    assert names(q="initech") == ["Ivy"]
    assert names(portal="no_account", wifi="") == ["Ivy", "Nemo", "Wendy"]  # blank = all


def test_bad_filter_values_answer_422_with_codes(api):
    response = api.get(
        "/users/export.csv",
        params={"wifi": "sometimes", "wifi_device_limit": "0", "occupier_id": "abc", "colour": "red"},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert {(e["field"], e["code"]) for e in body["details"]} == {
        ("wifi", "invalid_choice"),
        ("wifi_device_limit", "out_of_range"),
        ("occupier_id", "invalid_integer"),
        ("colour", "unknown_field"),
    }
    nul = api.get("/users/export.csv", params={"q": "a\x00b"})
    assert nul.status_code == 422 and nul.json()["details"][0]["field"] == "q"
    huge = api.get("/users/export.csv", params={"occupier_id": str(2**70)})
    assert huge.status_code == 422
    assert api.events(action="users.exported") == []


def test_another_operators_occupier_is_not_found(api, other):
    theirs = other()
    response = api.get("/users/export.csv", params={"occupier_id": theirs["occupier"].id})
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    everyone = rows_of(api.get("/users/export.csv"))
    assert str(theirs["user"].id) not in {r["user_id"] for r in everyone}


def test_an_occupier_key_sees_its_occupier_only(api):
    mine = make_user(api.db, api.occupier, first_name="Mine")
    other = make_occupier(api.db, api.operator, sites_=[api.site], name="Initech")
    make_user(api.db, other, first_name="Theirs")
    headers = scoped_key(api, Role.OCCUPIER_ADMIN, api.occupier.id)
    response = api.get("/users/export.csv", headers=headers)
    assert [r["user_id"] for r in rows_of(response)] == [str(mine.id)]
    assert 'filename="users-acme-ltd-' in response.headers["content-disposition"]
    refused = api.get("/users/export.csv", params={"occupier_id": other.id}, headers=headers)
    assert refused.status_code == 404


def test_an_occupier_user_may_not_download(api):
    make_user(api.db, api.occupier)
    response = api.get("/users/export.csv", headers=scoped_key(api, Role.OCCUPIER_USER, api.occupier.id))
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert api.events(action="users.exported") == []


@pytest.mark.parametrize("count", [3000])
def test_a_large_download_streams_in_bounded_queries(api, engine, count):
    group = groups.create_group(api.db, actor=admin_actor(api.operator), name="Doors", site_id=api.site.id)
    bulk_users(api.db, api.occupier, count, homesite_id=api.site.id, group_id=group.id)
    with StatementLog(engine) as log:
        response = api.get("/users/export.csv", params={"occupier_id": api.occupier.id})
    rows = rows_of(response)
    assert len(rows) == count and {r["groups"] for r in rows} == {"Doors"}
    batches = math.ceil(count / export.BATCH)
    users_queries = [s for s in log.selects if "FROM occupier_users" in s and "LIMIT" in s]
    assert len(users_queries) == batches
    # The request's own reads (API key, occupier, count), then two per batch (users, their groups).
    streamed = log.selects[log.selects.index(users_queries[0]) :]
    assert len(streamed) == 2 * batches and streamed[::2] == users_queries
    assert len(log.selects) <= 8 + 2 * batches
