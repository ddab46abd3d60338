"""Another operator's objects answer 404 on every kind of endpoint, and nothing of theirs changes."""

from __future__ import annotations

import pytest

from occupant.audit.models import AuditEvent

ENDPOINTS = [
    ("GET", "/sites/{site}", None),
    ("PATCH", "/sites/{site}", {"name": "Mine now"}),
    ("DELETE", "/sites/{site}", None),
    ("GET", "/occupiers/{occupier}", None),
    ("PATCH", "/occupiers/{occupier}", {"name": "Mine now"}),
    ("POST", "/occupiers/{occupier}/decommission", None),
    ("GET", "/occupiers/{occupier}/groups", None),
    ("GET", "/occupiers/{occupier}/users", None),
    ("POST", "/occupiers/{occupier}/users", {"first_name": "A", "last_name": "B", "email": "ab@example.com"}),
    ("GET", "/users/{user}", None),
    ("PATCH", "/users/{user}", {"first_name": "Mine"}),
    ("DELETE", "/users/{user}", None),
    ("POST", "/users/{user}/deactivate", None),
    ("POST", "/users/{user}/reactivate", None),
    ("POST", "/users/{user}/change-email", {"email": "new@example.com"}),
    ("GET", "/users/{user}/groups", None),
    ("PUT", "/users/{user}/groups", {"group_ids": []}),
    ("GET", "/groups/{group}", None),
    ("PATCH", "/groups/{group}", {"name": "Mine"}),
    ("DELETE", "/groups/{group}", None),
    ("GET", "/groups/{group}/members", None),
    ("PUT", "/groups/{group}/members", {"user_ids": []}),
]


@pytest.mark.parametrize(("method", "template", "body"), ENDPOINTS, ids=[f"{m} {t}" for m, t, _ in ENDPOINTS])
def test_another_operators_object_is_not_found(api, other, method, template, body):
    theirs = other()
    ids = {name: theirs[name].id for name in ("site", "occupier", "user", "group")}
    before = api.db.query(AuditEvent).count()
    response = api.request(method, template.format(**ids), json=body)
    assert response.status_code == 404, response.text
    assert response.json() == {"code": "not_found", "message": "Not found.", "details": None}
    api.db.expire_all()
    assert api.db.query(AuditEvent).count() == before


def test_lists_show_only_the_keys_operator(api, other):
    theirs = other()
    assert theirs["site"].id not in {s["id"] for s in api.walk("/sites")}
    assert theirs["occupier"].id not in {o["id"] for o in api.walk("/occupiers")}
    assert theirs["group"].id not in {g["id"] for g in api.walk("/groups")}
    assert api.walk("/groups", site_id=theirs["site"].id) == []
    assert api.walk("/audit-events", occupier_id=theirs["occupier"].id) == []
    their_events = {str(e.id) for e in api.db.query(AuditEvent).filter_by(operator_id=theirs["operator"].id)}
    exported = {line.split(",")[0] for line in api.get("/audit-events.csv").text.splitlines()[1:]}
    assert their_events and exported and not their_events & exported
    assert not their_events & {str(e["id"]) for e in api.walk("/audit-events")}


def test_other_operators_users_cannot_join_my_group(api, other):
    theirs = other()
    gid = api.post("/groups", json={"name": "Door", "site_id": api.site.id}).json()["id"]
    response = api.put(f"/groups/{gid}/members", json={"user_ids": [theirs["user"].id]})
    assert response.status_code == 422 and response.json()["details"][0]["code"] == "not_found"
    refused = api.post("/groups", json={"name": "Sneaky", "occupier_id": theirs["occupier"].id})
    assert refused.status_code == 404
