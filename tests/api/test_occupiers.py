"""Occupiers through the API: list with filters, create, change with ETags, decommission."""

from __future__ import annotations

from occupant.occupiers.models import Occupier, OccupierState
from tests.factories import make_occupier, make_site, make_user


def test_create_get_and_list_an_occupier(api):
    site2 = make_site(api.db, api.operator, code="MAN01")
    api.db.flush()
    response = api.post(
        "/occupiers",
        json={
            "name": "Globex",
            "site_ids": [site2.id, api.site.id],
            "primary_site_id": site2.id,
            "telephony_managed": True,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/v1/occupiers/{body['id']}"
    assert body["state"] == "ACTIVE" and body["telephony_managed"] is True
    assert sorted(body["site_ids"]) == sorted([site2.id, api.site.id]) and body["primary_site_id"] == site2.id
    got = api.get(f"/occupiers/{body['id']}")
    assert got.json() == body and got.headers["etag"] == f'"{body["id"]}.1"'
    assert [o["name"] for o in api.walk("/occupiers")] == ["Acme Ltd", "Globex"]
    assert [e.action for e in api.events(target_type="occupier", target_id=str(body["id"]))] == [
        "occupier.created"
    ]


def test_create_occupier_errors(api, other):
    theirs = other()
    duplicate = api.post("/occupiers", json={"name": "Acme Ltd", "site_ids": [api.site.id]})
    assert duplicate.status_code == 422 and duplicate.json()["details"][0]["code"] == "name_taken"
    foreign_site = api.post("/occupiers", json={"name": "New", "site_ids": [theirs["site"].id]})
    assert foreign_site.status_code == 422
    assert foreign_site.json()["details"][0] == {
        "field": "site_ids",
        "code": "invalid_site",
        "message": f"Unknown site: {theirs['site'].id}.",
    }
    shape = api.post("/occupiers", json={"name": "", "site_ids": [], "default_wifi_device_limit": 0})
    assert {(d["field"], d["code"]) for d in shape.json()["details"]} == {
        ("name", "required"),
        ("site_ids", "too_few"),
        ("default_wifi_device_limit", "out_of_range"),
    }


def test_occupier_filters_and_pages(api):
    site2 = make_site(api.db, api.operator, code="MAN01")
    for name in ("Beta Labs", "Gamma Labs", "Delta Foods"):
        make_occupier(api.db, api.operator, sites_=[site2], name=name)
    gone = make_occupier(api.db, api.operator, sites_=[api.site], name="Epsilon Labs")
    gone.state = OccupierState.DECOMMISSIONED
    api.db.flush()

    def names(**params):
        return [o["name"] for o in api.walk("/occupiers", **params)]

    assert names(limit=2) == ["Acme Ltd", "Beta Labs", "Delta Foods", "Epsilon Labs", "Gamma Labs"]
    assert names(q="labs", limit=1) == ["Beta Labs", "Epsilon Labs", "Gamma Labs"]
    assert names(site_id=site2.id) == ["Beta Labs", "Delta Foods", "Gamma Labs"]
    assert names(state="DECOMMISSIONED") == ["Epsilon Labs"]
    assert names(state="ACTIVE", site_id=api.site.id) == ["Acme Ltd"]
    assert api.get("/occupiers", params={"state": "GONE"}).status_code == 422


def test_patch_occupier_with_if_match(api):
    site2 = make_site(api.db, api.operator, code="MAN01")
    api.db.flush()
    path = f"/occupiers/{api.occupier.id}"
    etag = api.get(path).headers["etag"]
    response = api.patch(
        path, json={"site_ids": [api.site.id, site2.id], "portal_offered": False}, headers={"If-Match": etag}
    )
    assert response.status_code == 200, response.text
    assert sorted(response.json()["site_ids"]) == sorted([api.site.id, site2.id])
    assert response.json()["portal_offered"] is False
    assert response.headers["etag"] != etag
    stale = api.patch(path, json={"site_ids": [site2.id]}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
    # a change of sites alone moves the ETag too, so a second writer cannot overwrite it unknowingly
    current = response.headers["etag"]
    moved = api.patch(path, json={"site_ids": [site2.id]}, headers={"If-Match": current})
    assert moved.status_code == 200 and moved.headers["etag"] != current


def test_decommission_and_retry(api):
    make_user(api.db, api.occupier)
    api.db.flush()
    path = f"/occupiers/{api.occupier.id}"
    response = api.post(f"{path}/decommission")
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "DECOMMISSION_PENDING"
    again = api.post(f"{path}/decommission")
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"
    edit = api.patch(path, json={"name": "Renamed"})
    assert edit.status_code == 409 and edit.json()["code"] == "invalid_state"

    api.db.expire_all()
    occupier = api.db.get(Occupier, api.occupier.id)
    occupier.state, occupier.decommission_error = (
        OccupierState.DECOMMISSION_FAILED,
        "1 user could not be deleted",
    )
    api.db.flush()
    failed = api.get(path).json()
    assert failed["state"] == "DECOMMISSION_FAILED" and failed["decommission_error"]
    retry = api.post(f"{path}/decommission")
    assert retry.status_code == 202 and retry.json()["state"] == "DECOMMISSION_PENDING"
    assert retry.json()["decommission_error"] is None
    actions = [e.action for e in api.events(target_type="occupier", target_id=str(api.occupier.id))]
    assert actions[-2:] == ["occupier.decommission_started", "occupier.decommission_retried"]


def test_groups_available_to_an_occupier(api):
    from occupant.groups import service as groups
    from tests.factories import admin_actor

    actor = admin_actor(api.operator)
    door = groups.create_group(api.db, actor=actor, name="Door", site_id=api.site.id)
    own = groups.create_group(api.db, actor=actor, name="Team", occupier_id=api.occupier.id)
    groups.create_group(api.db, actor=actor, name="Elsewhere", site_id=make_site(api.db, api.operator).id)
    api.db.flush()
    response = api.get(f"/occupiers/{api.occupier.id}/groups")
    assert response.status_code == 200
    assert [(g["id"], g["kind"]) for g in response.json()] == [(door.id, "site"), (own.id, "occupier")]
