"""Access groups: operator groups per site, occupier groups, and who may join which."""

from __future__ import annotations

import pytest

from occupant.groups import service as groups
from occupant.kit.errors import FieldErrors
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_user


def test_users_join_their_sites_groups_and_their_occupiers_groups_only(db):
    operator = make_operator(db)
    lon, par = make_site(db, operator, code="LON01"), make_site(db, operator, code="PAR01", country="FR")
    me = admin_actor(operator)
    occ = make_occupier(db, operator, sites_=[lon])
    other = make_occupier(db, operator, sites_=[par])
    lon_doors = groups.create_group(db, actor=me, name="LON doors", site_id=lon.id)
    par_doors = groups.create_group(db, actor=me, name="PAR doors", site_id=par.id)
    team = groups.create_group(db, actor=me, name="Team", occupier_id=occ.id)
    other_team = groups.create_group(
        db, actor=me, name="Team", occupier_id=other.id
    )  # same name, other scope
    assert {g.name for g in groups.list_available(db, occ)} == {"LON doors", "Team"}

    user = make_user(db, occ, group_ids=[lon_doors.id, team.id])
    assert sorted(groups.user_group_ids(db, user.id)) == sorted([lon_doors.id, team.id])
    with pytest.raises(FieldErrors) as err:
        groups.set_user_groups(db, user, [par_doors.id, other_team.id], actor=me)
    assert err.value.errors[0]["code"] == "invalid_group"
    assert groups.set_user_groups(db, user, [team.id], actor=me) == [team.id]


def test_group_members_and_duplicate_names(db):
    operator = make_operator(db)
    site = make_site(db, operator)
    me = admin_actor(operator)
    occ = make_occupier(db, operator, sites_=[site])
    doors = groups.create_group(db, actor=me, name="Doors", site_id=site.id)
    with pytest.raises(FieldErrors) as err:
        groups.create_group(db, actor=me, name="Doors", site_id=site.id)
    assert err.value.errors[0]["code"] == "name_taken"
    a, b, c = make_user(db, occ), make_user(db, occ), make_user(db, occ)
    assert groups.set_group_members(db, doors, [a.id, b.id], actor=me) == sorted([a.id, b.id])
    assert groups.set_group_members(db, doors, [b.id, c.id], actor=me) == sorted([b.id, c.id])
    assert groups.user_group_ids(db, a.id) == []
    groups.delete_group(db, doors, actor=me)
    assert groups.user_group_ids(db, b.id) == []
