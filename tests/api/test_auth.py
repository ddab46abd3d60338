"""Bearer API keys: no key, a wrong key, a revoked key; keys are stored hashed and shown once."""

from __future__ import annotations

from sqlalchemy import select

from occupant.staff import service as staff
from occupant.staff.models import ApiKey
from tests.factories import admin_actor


def test_no_key_is_401_with_a_bearer_challenge(api):
    response = api.client.get("/api/v1/users")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "not_authenticated"


def test_wrong_key_or_wrong_scheme_is_401(api):
    for header in ("Bearer occ_not-a-real-key", f"Basic {api.token}", "Bearer ", api.token):
        response = api.client.get("/api/v1/occupiers", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json()["code"] == "not_authenticated"


def test_revoked_key_stops_working_at_once(api, db):
    assert api.get("/users").status_code == 200
    staff.revoke_api_key(db, api.key_id, actor=admin_actor(api.operator))
    db.flush()
    response = api.get("/users")
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_key_is_stored_only_as_a_hash(api, db):
    stored = db.scalars(select(ApiKey).where(ApiKey.id == api.key_id)).one()
    assert api.token.startswith("occ_")
    assert api.token not in (stored.token_hash, stored.prefix)
    assert stored.role == "operator_admin" and stored.operator_id == api.operator.id


def test_unauthenticated_request_is_refused_before_validation(api):
    response = api.client.post(f"/api/v1/occupiers/{api.occupier.id}/users", json={"nope": 1})
    assert response.status_code == 401
