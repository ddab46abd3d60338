"""Every role against every action, and against another tenant's objects."""

from __future__ import annotations

import pytest

from occupant.authz import scope
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.groups import service as groups
from occupant.kit.errors import NotFound, PermissionDenied
from occupant.occupiers import service as occupiers
from occupant.occupiers.queries import list_occupiers
from occupant.occupiers.schemas import OccupierCreate, OccupierUpdate
from occupant.sites import service as sites
from occupant.sites.schemas import SiteCreate
from occupant.users import queries as user_queries
from occupant.users import service as users
from occupant.users.schemas import UserUpdate
from tests.factories import make_occupier, make_operator, make_site, make_user, site_manager_actor


@pytest.fixture
def estate(db):
    operator = make_operator(db)
    lon, par = make_site(db, operator, code="LON01"), make_site(db, operator, code="PAR01", country="FR")
    at_lon = make_occupier(db, operator, sites_=[lon], name="At London")
    at_par = make_occupier(db, operator, sites_=[par], name="At Paris")
    other_operator = make_operator(db)
    foreign = make_occupier(db, other_operator, name="Foreign Co")
    return {
        "operator": operator,
        "lon": lon,
        "par": par,
        "at_lon": at_lon,
        "at_par": at_par,
        "foreign": foreign,
        "lon_user": make_user(db, at_lon),
        "par_user": make_user(db, at_par),
        "foreign_user": make_user(db, foreign),
    }


def actor(estate, role: Role) -> Actor:
    if role is Role.SITE_MANAGER:
        return site_manager_actor(estate["operator"], [estate["lon"].id])
    return Actor(kind=ActorKind.STAFF, id=None, operator_id=estate["operator"].id, role=role)


def test_site_manager_sees_only_occupiers_and_users_at_their_sites(db, estate):
    manager = actor(estate, Role.SITE_MANAGER)
    assert [o.name for o in list_occupiers(db, manager).items] == ["At London"]
    assert [u.id for u in user_queries.list_users(db, manager).items] == [estate["lon_user"].id]
    with pytest.raises(NotFound):
        scope.get_occupier(db, manager, estate["at_par"].id)
    with pytest.raises(NotFound):
        scope.get_user(db, manager, estate["par_user"].id)
    assert scope.get_user(db, manager, estate["lon_user"].id).id == estate["lon_user"].id


@pytest.mark.parametrize("role", [Role.OPERATOR_ADMIN, Role.SITE_MANAGER])
def test_another_operators_objects_are_not_found(db, estate, role):
    me = actor(estate, role)
    with pytest.raises(NotFound):
        scope.get_occupier(db, me, estate["foreign"].id)
    with pytest.raises(NotFound):
        scope.get_user(db, me, estate["foreign_user"].id)
    with pytest.raises(NotFound):
        scope.get_site(
            db, me, make_site(db, db.get(type(estate["operator"]), estate["foreign"].operator_id)).id
        )
    assert estate["foreign_user"].id not in {u.id for u in user_queries.list_users(db, me).items}


# action -> roles allowed (operator admin, site manager)
ACTIONS = {
    "create_site": {Role.OPERATOR_ADMIN},
    "create_occupier": {Role.OPERATOR_ADMIN},
    "update_occupier": {Role.OPERATOR_ADMIN},
    "decommission": {Role.OPERATOR_ADMIN},
    "operator_group": {Role.OPERATOR_ADMIN},
    "occupier_group": {Role.OPERATOR_ADMIN, Role.SITE_MANAGER},
    "edit_user": {Role.OPERATOR_ADMIN, Role.SITE_MANAGER},
    "change_email": {Role.OPERATOR_ADMIN, Role.SITE_MANAGER},
    "deactivate_user": {Role.OPERATOR_ADMIN, Role.SITE_MANAGER},
    "delete_user": {Role.OPERATOR_ADMIN, Role.SITE_MANAGER},
}


def run(action: str, db, estate, me: Actor) -> None:
    occ, user = estate["at_lon"], estate["lon_user"]
    match action:
        case "create_site":
            sites.create_site(db, SiteCreate(code="NEW01", name="New", country="GB"), actor=me)
        case "create_occupier":
            occupiers.create_occupier(
                db, OccupierCreate(name="New Co", site_ids=[estate["lon"].id]), actor=me
            )
        case "update_occupier":
            occupiers.update_occupier(db, occ, OccupierUpdate(name="Renamed"), actor=me)
        case "decommission":
            occupiers.start_decommission(db, occ, actor=me)
        case "operator_group":
            groups.create_group(db, actor=me, name="Doors", site_id=estate["lon"].id)
        case "occupier_group":
            groups.create_group(db, actor=me, name="Team", occupier_id=occ.id)
        case "edit_user":
            users.update_user(db, user, UserUpdate(job_title="Boss"), actor=me)
        case "change_email":
            users.change_email(db, user, "changed@example.com", actor=me)
        case "deactivate_user":
            users.deactivate_user(db, user, actor=me)
        case "delete_user":
            users.delete_user(db, user, actor=me)


@pytest.mark.parametrize("role", [Role.OPERATOR_ADMIN, Role.SITE_MANAGER, Role.OCCUPIER_USER])
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_role_matrix(db, estate, role, action):
    me = actor(estate, role)
    if role in ACTIONS[action]:
        run(action, db, estate, me)
    else:
        with pytest.raises(PermissionDenied):
            run(action, db, estate, me)
