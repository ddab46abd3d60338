"""Sites through the API."""

from __future__ import annotations

from tests.factories import make_occupier


def test_site_crud(api):
    response = api.post(
        "/sites",
        json={"code": "PAR01", "name": "Paris Opéra", "country": "fr", "nas_identifiers": ["ap-1", "ap-2"]},
    )
    assert response.status_code == 201, response.text
    site = response.json()
    assert site["code"] == "PAR01" and site["country"] == "FR" and site["nas_identifiers"] == ["ap-1", "ap-2"]
    path = f"/sites/{site['id']}"
    assert response.headers["location"] == f"/api/v1{path}"
    etag = api.get(path).headers["etag"]

    changed = api.patch(path, json={"nas_identifiers": ["ap-3"]}, headers={"If-Match": etag})
    assert changed.status_code == 200 and changed.json()["nas_identifiers"] == ["ap-3"]
    assert changed.headers["etag"] != etag
    assert api.patch(path, json={"name": "x"}, headers={"If-Match": etag}).status_code == 412
    assert api.delete(path, headers={"If-Match": etag}).status_code == 412

    codes = [s["code"] for s in api.walk("/sites", limit=1)]
    assert codes == ["LON01", "PAR01"]
    assert api.delete(path, headers={"If-Match": changed.headers["etag"]}).status_code == 204
    assert api.get(path).status_code == 404
    actions = [e.action for e in api.events(target_type="site", target_id=str(site["id"]))]
    assert actions == ["site.created", "site.updated", "site.deleted"]


def test_site_errors(api):
    make_occupier(api.db, api.operator, sites_=[api.site])
    api.db.flush()
    in_use = api.delete(f"/sites/{api.site.id}")
    assert in_use.status_code == 409 and in_use.json()["code"] == "site_in_use"
    clash = api.post("/sites", json={"code": "LON01", "name": "Again", "country": "XX"})
    assert clash.status_code == 422
    assert {(d["field"], d["code"]) for d in clash.json()["details"]} == {
        ("code", "code_taken"),
        ("country", "invalid_country"),
    }
    bad = api.post("/sites", json={"code": "no spaces!", "name": "n", "country": "GB", "extra": 1})
    assert {(d["field"], d["code"]) for d in bad.json()["details"]} == {
        ("code", "invalid_format"),
        ("extra", "unknown_field"),
    }
