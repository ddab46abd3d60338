from __future__ import annotations

import pytest

from occupant.kit.errors import Conflict, FieldErrors
from occupant.sites import service as sites
from occupant.sites.schemas import SiteCreate, SiteUpdate
from tests.factories import admin_actor, make_occupier, make_operator, make_site


def test_site_codes_countries_and_nas_identifiers(db):
    operator = make_operator(db)
    me = admin_actor(operator)
    site = sites.create_site(
        db,
        SiteCreate(code="lon01", name="London", country="gb", nas_identifiers=["LON01-AP01", "LON01-AP02"]),
        actor=me,
    )
    assert (site.code, site.country, site.nas_identifiers) == ("LON01", "GB", ["LON01-AP01", "LON01-AP02"])
    with pytest.raises(FieldErrors) as err:
        sites.create_site(
            db, SiteCreate(code="LON01", name="Dup", country="XX", nas_identifiers=["LON01-AP01"]), actor=me
        )
    assert {e["code"] for e in err.value.errors} == {"code_taken", "invalid_country", "nas_taken"}
    sites.update_site(db, site, SiteUpdate(nas_identifiers=["LON01-AP02", "LON01-AP03"]), actor=me)
    assert site.nas_identifiers == ["LON01-AP02", "LON01-AP03"]


def test_a_site_in_use_cannot_be_deleted(db):
    operator = make_operator(db)
    site = make_site(db, operator)
    make_occupier(db, operator, sites_=[site])
    with pytest.raises(Conflict) as err:
        sites.delete_site(db, site, actor=admin_actor(operator))
    assert err.value.code == "site_in_use"
    unused = make_site(db, operator)
    sites.delete_site(db, unused, actor=admin_actor(operator))


def test_nas_identifiers_are_unique_across_operators(db):
    """One FreeRADIUS serves every operator and knows a request's site only by its NAS-Identifier."""
    ours, theirs = make_operator(db), make_operator(db, name="Other Spaces")
    make_site(db, theirs, code="AMS01", nas=["ap-shared-1"])
    mine = make_site(db, ours, code="LON01", nas=["ap-lon-1"])
    with pytest.raises(FieldErrors) as err:
        sites.create_site(
            db,
            SiteCreate(
                code="LON02", name="London 2", country="GB", nas_identifiers=["ap-shared-1", "ap-lon-1"]
            ),
            actor=admin_actor(ours),
        )
    [error] = err.value.errors
    assert (error["field"], error["code"]) == ("nas_identifiers", "nas_taken")
    assert "another site: ap-lon-1" in error["message"]
    assert "by another operator: ap-shared-1" in error["message"] and "AMS01" not in error["message"]
    with pytest.raises(FieldErrors):
        sites.update_site(db, mine, SiteUpdate(nas_identifiers=["ap-shared-1"]), actor=admin_actor(ours))
    assert mine.nas_identifiers == ["ap-lon-1"]
