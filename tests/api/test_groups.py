"""Access groups and their members through the API."""

from __future__ import annotations

from tests.factories import make_occupier, make_user


def test_group_lifecycle(api):
    site_group = api.post("/groups", json={"name": "Front door", "site_id": api.site.id})
    assert site_group.status_code == 201, site_group.text
    own = api.post(
        "/groups", json={"name": "Engineering", "occupier_id": api.occupier.id, "description": "Builders"}
    )
    assert own.status_code == 201 and own.json()["kind"] == "occupier"
    gid = site_group.json()["id"]
    assert site_group.headers["location"] == f"/api/v1/groups/{gid}"
    assert [g["name"] for g in api.walk("/groups", limit=1)] == ["Engineering", "Front door"]
    assert [g["name"] for g in api.walk("/groups", site_id=api.site.id)] == ["Front door"]
    assert [g["name"] for g in api.walk("/groups", occupier_id=api.occupier.id)] == ["Engineering"]

    renamed = api.patch(f"/groups/{gid}", json={"name": "Main door"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Main door"
    assert api.get(f"/groups/{gid}").json()["name"] == "Main door"
    assert api.delete(f"/groups/{gid}").status_code == 204
    assert api.get(f"/groups/{gid}").status_code == 404
    actions = [e.action for e in api.events(target_type="access_group", target_id=str(gid))]
    assert actions == ["group.created", "group.renamed", "group.deleted"]


def test_group_errors(api):
    both = api.post("/groups", json={"name": "X", "site_id": api.site.id, "occupier_id": api.occupier.id})
    assert both.status_code == 422 and both.json()["details"][0]["code"] == "invalid_scope"
    neither = api.post("/groups", json={"name": "X"})
    assert neither.status_code == 422
    api.post("/groups", json={"name": "Door", "site_id": api.site.id})
    taken = api.post("/groups", json={"name": "Door", "site_id": api.site.id})
    assert taken.status_code == 422 and taken.json()["details"][0]["code"] == "name_taken"
    blank = api.post("/groups", json={"name": "   ", "site_id": api.site.id})
    assert blank.json()["details"] == [
        {"field": "name", "code": "required", "message": "This field is required."}
    ]


def test_group_members(api):
    gid = api.post("/groups", json={"name": "Door", "site_id": api.site.id}).json()["id"]
    alice, bob = make_user(api.db, api.occupier), make_user(api.db, api.occupier)
    outsider = make_user(api.db, make_occupier(api.db, api.operator))  # its occupier is not at this site
    api.db.flush()
    assert api.get(f"/groups/{gid}/members").json() == {"user_ids": []}
    response = api.put(f"/groups/{gid}/members", json={"user_ids": [bob.id, alice.id]})
    assert response.status_code == 200 and response.json() == {"user_ids": sorted([alice.id, bob.id])}
    assert api.get(f"/users/{alice.id}/groups").json() == {"group_ids": [gid]}
    assert api.put(f"/groups/{gid}/members", json={"user_ids": [bob.id]}).json() == {"user_ids": [bob.id]}
    assert api.get(f"/groups/{gid}/members").json() == {"user_ids": [bob.id]}

    refused = api.put(f"/groups/{gid}/members", json={"user_ids": [outsider.id, 987654321]})
    assert refused.status_code == 422
    assert {d["code"] for d in refused.json()["details"]} == {"invalid_group", "not_found"}
    assert api.get(f"/groups/{gid}/members").json() == {"user_ids": [bob.id]}
