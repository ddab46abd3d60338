"""The audit log through the API: filters, pages and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from occupant.audit.models import AuditEvent
from occupant.audit.queries import EXPORT_HEADER
from occupant.kit.clock import utcnow
from tests.factories import make_occupier


@pytest.fixture
def history(api):
    """Some API writes: two users created in two occupiers, one deactivated."""
    second = make_occupier(api.db, api.operator, sites_=[api.site], name="Beta")
    api.db.flush()
    one = api.post(
        f"/occupiers/{api.occupier.id}/users",
        json={"first_name": "A", "last_name": "B", "email": "=cmd@example.com"},
    ).json()
    two = api.post(
        f"/occupiers/{second.id}/users", json={"first_name": "C", "last_name": "D", "email": "cd@example.com"}
    ).json()
    api.post(f"/users/{one['id']}/deactivate")
    return second, one, two


def actions(response):
    assert response.status_code == 200, response.text
    return [e["action"] for e in response.json()["items"]]


def test_events_of_api_writes_are_listed_newest_first_with_filters(api, history):
    second, one, _two = history
    assert actions(api.get("/audit-events", params={"actor_type": "api_key"})) == [
        "user.deactivated",
        "user.created",
        "user.created",
    ]
    assert actions(api.get("/audit-events", params={"action": "user.created"})) == ["user.created"] * 2
    assert actions(api.get("/audit-events", params={"action": "user", "occupier_id": second.id})) == [
        "user.created"
    ]
    by_target = api.get("/audit-events", params={"target_type": "occupier_user", "target_id": one["id"]})
    assert actions(by_target) == ["user.deactivated", "user.created"]
    event = by_target.json()["items"][0]
    assert event["actor_id"] == str(api.key_id) and event["fields"] == ["status"]
    assert event["changes"] == {"status": ["ACTIVE", "DEACTIVATED"]}
    assert event["occupier_id"] == api.occupier.id and event["request_id"]
    assert "cmd@example.com" not in str(by_target.json())


def test_time_window_and_pages(api, history):
    api.db.expire_all()
    old = api.db.query(AuditEvent).filter_by(operator_id=api.operator.id, action="site.created").one()
    old.occurred_at = utcnow() - timedelta(days=30)
    api.db.flush()
    since = (utcnow() - timedelta(days=1)).isoformat()
    recent = [e["action"] for e in api.walk("/audit-events", since=since, limit=1)]
    assert "site.created" not in recent and recent.count("user.created") == 2
    until = (utcnow() - timedelta(days=29)).replace(microsecond=0).isoformat() + "+00:00"
    assert [e["action"] for e in api.walk("/audit-events", until=until)] == ["site.created"]
    everything = api.walk("/audit-events", limit=2)
    assert len(everything) == len({e["id"] for e in everything}) == len(api.events())
    assert [e["id"] for e in everything] == sorted((e["id"] for e in everything), reverse=True)


def test_bad_filters_are_field_errors(api):
    for params, field in (
        ({"actor_type": "robot"}, "actor_type"),
        ({"since": "yesterday"}, "since"),
        ({"occupier_id": "x"}, "occupier_id"),
        ({"action": "a" * 65}, "action"),
        ({"until": "0001-01-01T00:00:00+05:00"}, "until"),
    ):
        response = api.get("/audit-events", params=params)
        assert response.status_code == 422, params
        assert response.json()["details"][0]["field"] == field


def test_csv_export(api, history):
    response = api.get("/audit-events.csv", params={"action": "user"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows[0] == EXPORT_HEADER
    assert [r[EXPORT_HEADER.index("action")] for r in rows[1:]] == [
        "user.created",
        "user.created",
        "user.deactivated",
    ]
    assert {r[EXPORT_HEADER.index("actor_type")] for r in rows[1:]} == {"api_key"}
    assert api.client.get("/api/v1/audit-events.csv").status_code == 401
