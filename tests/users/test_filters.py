"""The user filter behind lists, exports and bulk selections: each criterion, their combinations, the
actor's scope, and the values the bulk dialog's filters offer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, get_args

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from occupant.accounts.models import AccountRole, AccountStatus, AppAccount, InviteState
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.groups import service as groups
from occupant.kit.clock import utcnow
from occupant.kit.errors import NotFound, PermissionDenied
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.sites.models import Site
from occupant.users import filters
from occupant.users.filters import UserFilter, count_filtered, filter_options, filtered_users, list_filtered
from occupant.users.models import OccupierUser, UserStatus
from occupant.wifi import service as wifi_service
from occupant.wifi.models import WifiStatus
from tests.factories import (
    admin_actor,
    make_account,
    make_occupier,
    make_operator,
    make_site,
    make_user,
    site_manager_actor,
)
from tests.wifi.support import give_wifi


@dataclass
class World:
    operator: Operator
    lon: Site
    par: Site
    acme: Occupier
    globex: Occupier
    people: dict[str, OccupierUser]
    admin: Actor


def _signed_in(db: Session, account: AppAccount, *, mobile: bool = False) -> None:
    """As if the user had set a password and signed in (to the portal, or the mobile app too)."""
    account.status = AccountStatus.ACTIVE
    account.portal = InviteState.SIGNED_IN
    if mobile:
        account.mobile_app = InviteState.SIGNED_IN
    db.flush()


@pytest.fixture
def world(db: Session) -> World:
    """Acme (LON01 and PAR01) with one user in each interesting state, Globex (PAR01) with one user."""
    operator = make_operator(db)
    admin = admin_actor(operator)
    lon = make_site(db, operator, code="LON01")
    par = make_site(db, operator, code="PAR01", country="FR")
    acme = make_occupier(db, operator, sites_=[lon, par], name="Acme")
    globex = make_occupier(db, operator, sites_=[par], name="Globex")
    people = {
        # no Wi-Fi, no app account
        "nobody": make_user(db, acme, first_name="Nora", last_name="Nobody"),
        # Wi-Fi ACTIVE at LON01 (2 devices); invited to the portal, not signed in yet
        "invited": make_user(db, acme, first_name="Ivan", last_name="Invited"),
        # Wi-Fi DEACTIVATED at PAR01 (3 devices); an admin signed in to the portal and the app
        "admin": make_user(db, acme, first_name="Ada", last_name="Admin"),
        # Wi-Fi still PROVISIONING (busy meanwhile); an account invited to no app (NOT_INVITED)
        "pending": make_user(db, acme, first_name="Pat", last_name="Pending", job_title="Finance"),
        # deactivated user, no Wi-Fi; invited to the mobile app only
        "gone": make_user(db, acme, first_name="Gus", last_name="Gone"),
        "globex": make_user(db, globex, first_name="Gloria", last_name="Globex"),
    }
    give_wifi(db, people["invited"], homesite=lon, limit=2)
    make_account(db, people["invited"], portal=True)
    give_wifi(db, people["admin"], homesite=par, limit=3)
    wifi_service.deactivate_wifi(db, people["admin"], actor=admin)
    _signed_in(db, make_account(db, people["admin"], role="admin", portal=True, mobile_app=True), mobile=True)
    make_account(db, people["pending"], portal=False)
    give_wifi(db, people["pending"], homesite=lon, limit=2, live=False)
    make_account(db, people["gone"], portal=False, mobile_app=True)
    from occupant.users import service as users

    users.deactivate_user(db, people["gone"], actor=admin)
    give_wifi(db, people["globex"], homesite=par, limit=2)
    db.flush()
    return World(operator, lon, par, acme, globex, people, admin)


def names(db: Session, actor: Actor, f: UserFilter) -> set[str]:
    """Who matches, by first name — and the same through the statement that joins both accounts always."""
    found = {u.first_name for u in db.scalars(filtered_users(db, actor, f))}
    joined = {u.first_name for u in db.scalars(filtered_users(db, actor, f, join_accounts=True))}
    assert found == joined, f
    assert count_filtered(db, actor, f) == len(found)
    return found


EVERYONE_AT_ACME = {"Nora", "Ivan", "Ada", "Pat", "Gus"}
CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({}, EVERYONE_AT_ACME),
    ({"wifi": "none"}, {"Nora", "Gus"}),
    ({"wifi": "ACTIVE"}, {"Ivan"}),
    ({"wifi": "DEACTIVATED"}, {"Ada"}),
    ({"wifi": "PROVISIONING"}, {"Pat"}),
    ({"wifi_device_limit": 2}, {"Ivan", "Pat"}),
    ({"wifi_device_limit": 3}, {"Ada"}),
    ({"wifi": "none", "wifi_device_limit": 2}, set()),
    ({"portal": "INVITED"}, {"Ivan"}),
    ({"portal": "SIGNED_IN"}, {"Ada"}),
    ({"portal": "NOT_INVITED"}, {"Nora", "Pat", "Gus"}),  # no account counts as not invited
    ({"portal": "no_account"}, {"Nora"}),
    ({"mobile_app": "INVITED"}, {"Gus"}),
    ({"mobile_app": "SIGNED_IN"}, {"Ada"}),
    ({"mobile_app": "NOT_INVITED"}, {"Nora", "Ivan", "Pat"}),
    ({"account_status": "AWAITING_SIGN_IN"}, {"Ivan"}),
    ({"account_status": "NOT_INVITED"}, {"Nora", "Pat"}),
    ({"account_status": "DEACTIVATED"}, {"Gus"}),  # deactivated with the user
    ({"role": "admin"}, {"Ada"}),
    ({"role": "user"}, {"Ivan", "Pat", "Gus"}),
    ({"role": "admin", "portal": "NOT_INVITED"}, set()),
    ({"status": "DEACTIVATED"}, {"Gus"}),
    ({"status": "ACTIVE", "wifi": "none"}, {"Nora"}),
    ({"q": "admin"}, {"Ada"}),
    ({"q": "in", "wifi": "ACTIVE"}, {"Ivan"}),
    ({"busy": True}, {"Pat"}),
    ({"busy": False}, {"Nora", "Ivan", "Ada", "Gus"}),
]


@pytest.mark.parametrize(("criteria", "expected"), CASES, ids=[str(c) for c, _ in CASES])
def test_each_criterion_narrows_the_occupiers_users(db, world, criteria, expected):
    f = UserFilter(occupier_id=world.acme.id, **criteria)
    assert names(db, world.admin, f) == expected


def test_homesite_criterion_and_the_whole_operator(db, world):
    assert names(db, world.admin, UserFilter(wifi_homesite_id=world.lon.id)) == {"Ivan", "Pat"}
    assert names(db, world.admin, UserFilter(wifi_homesite_id=world.par.id)) == {"Ada", "Gloria"}
    assert names(db, world.admin, UserFilter(wifi_homesite_id=world.par.id, wifi="ACTIVE")) == {"Gloria"}
    assert names(db, world.admin, UserFilter()) == EVERYONE_AT_ACME | {"Gloria"}


def test_the_actors_scope_comes_first(db, world):
    lon_manager = site_manager_actor(world.operator, [world.lon.id])
    assert names(db, lon_manager, UserFilter()) == EVERYONE_AT_ACME  # Globex is at PAR01 only
    assert names(db, lon_manager, UserFilter(occupier_id=world.globex.id)) == set()
    assert names(db, lon_manager, UserFilter(wifi_homesite_id=world.par.id)) == {"Ada"}
    acme_admin = Actor(
        kind=ActorKind.OCCUPIER_USER,
        id=world.people["admin"].id,
        operator_id=world.operator.id,
        role=Role.OCCUPIER_ADMIN,
        occupier_id=world.acme.id,
    )
    assert names(db, acme_admin, UserFilter(wifi="ACTIVE")) == {"Ivan"}
    assert names(db, acme_admin, UserFilter(occupier_id=world.globex.id)) == set()
    # Another operator's admin sees none of these users, whatever the filter.
    stranger = admin_actor(make_operator(db))
    assert names(db, stranger, UserFilter()) == set()
    assert names(db, stranger, UserFilter(occupier_id=world.acme.id, wifi="none")) == set()


def test_an_expired_hold_is_not_busy(db, world):
    pending = world.people["pending"]
    pending.busy_until = utcnow() - timedelta(seconds=1)
    db.flush()
    assert names(db, world.admin, UserFilter(occupier_id=world.acme.id, busy=True)) == set()


def test_bulk_selection_ids_are_the_matching_users(db, world):
    f = UserFilter(occupier_id=world.acme.id, wifi="none")
    assert filters.matching_ids(db, world.admin, f) == sorted(
        [world.people["nobody"].id, world.people["gone"].id]
    )


def test_pages_of_filtered_users_in_name_order(db, world):
    for n in range(7):
        make_user(db, world.acme, first_name=f"Extra{n}", last_name=f"Zed{n}")
    f = UserFilter(occupier_id=world.acme.id, portal="NOT_INVITED")
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = list_filtered(db, world.admin, f, cursor=cursor, limit=3)
        seen += [u.last_name for u in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["Gone", "Nobody", "Pending", *(f"Zed{n}" for n in range(7))]
    # Only the users tab's criteria: the users tab's own query answers, in the same order.
    plain = list_filtered(db, world.admin, UserFilter(occupier_id=world.acme.id, q="zed"), limit=50)
    assert [u.last_name for u in plain.items] == [f"Zed{n}" for n in range(7)]


def test_values_are_taken_in_any_case_and_blank_means_all():
    f = UserFilter.model_validate(
        {"wifi": "active", "portal": "No_Account", "role": "ADMIN", "status": "deactivated", "q": "  "}
    )
    assert (f.wifi, f.portal, f.role, f.status, f.q) == ("ACTIVE", "no_account", "admin", "DEACTIVATED", None)
    assert UserFilter.model_validate({"wifi": "", "wifi_device_limit": "", "busy": ""}) == UserFilter()
    assert UserFilter(wifi="NONE").wifi == "none"


def test_bad_values_name_their_field():
    with pytest.raises(ValidationError) as caught:
        UserFilter.model_validate(
            {"wifi": "sometimes", "wifi_device_limit": 0, "portal": "maybe", "colour": "red", "q": "a\x00b"}
        )
    assert {(e["loc"][0], e["type"]) for e in caught.value.errors()} == {
        ("wifi", "literal_error"),
        ("wifi_device_limit", "greater_than_equal"),
        ("portal", "literal_error"),
        ("colour", "extra_forbidden"),
        ("q", "value_error"),
    }


def test_the_choices_are_the_models_states():
    assert set(get_args(filters.WifiChoice)) == {"none", *WifiStatus}
    assert set(get_args(filters.AppChoice)) == {"no_account", *InviteState}
    assert set(get_args(filters.AccountStatusChoice)) == set(AccountStatus)
    assert set(get_args(filters.RoleChoice)) == set(AccountRole)
    assert set(get_args(filters.StatusChoice)) == set(UserStatus)


def test_the_audit_log_gets_the_criteria_but_the_search():
    f = UserFilter(occupier_id=5, q="ada lovelace", wifi="ACTIVE")
    assert f.non_personal == {"occupier_id": 5, "wifi": "ACTIVE"}
    assert set(f.criteria) == {"occupier_id", "q", "wifi"}


def _values(options: list[filters.Option]) -> dict[str, int]:
    return {o.value: o.count for o in options}


def test_filter_options_offer_the_values_the_occupiers_users_have(db, world):
    groups.create_group(db, actor=world.admin, name="Doors", site_id=world.lon.id)
    options = filter_options(db, world.admin, world.acme)
    assert options.total == 5
    assert _values(options.wifi) == {"none": 2, "PROVISIONING": 1, "ACTIVE": 1, "DEACTIVATED": 1}
    assert [(o.value, o.label, o.count) for o in options.wifi_homesite] == [
        (str(world.lon.id), f"LON01 · {world.lon.name}", 2),
        (str(world.par.id), f"PAR01 · {world.par.name}", 1),
    ]
    assert _values(options.wifi_device_limit) == {"2": 2, "3": 1}
    assert _values(options.portal) == {"NOT_INVITED": 3, "INVITED": 1, "SIGNED_IN": 1, "no_account": 1}
    assert _values(options.mobile_app) == {"NOT_INVITED": 3, "INVITED": 1, "SIGNED_IN": 1, "no_account": 1}
    assert _values(options.account_status) == {
        "NOT_INVITED": 2,
        "AWAITING_SIGN_IN": 1,
        "ACTIVE": 1,
        "DEACTIVATED": 1,
    }
    assert _values(options.role) == {"admin": 1, "user": 3}
    # Every value offered selects exactly the users it counts.
    for field in (
        "wifi",
        "wifi_homesite",
        "wifi_device_limit",
        "portal",
        "mobile_app",
        "account_status",
        "role",
    ):
        name = "wifi_homesite_id" if field == "wifi_homesite" else field
        for option in getattr(options, field):
            f = UserFilter.model_validate({"occupier_id": world.acme.id, name: option.value})
            assert count_filtered(db, world.admin, f) == option.count, (field, option)


def test_filter_options_of_an_occupier_without_users(db, world):
    empty = make_occupier(db, world.operator, sites_=[world.lon], name="Empty Ltd")
    options = filter_options(db, world.admin, empty)
    assert options.total == 0
    assert options.wifi == options.wifi_homesite == options.portal == options.role == []


def test_filter_options_follow_the_scope(db, world):
    with pytest.raises(NotFound):
        filter_options(db, site_manager_actor(world.operator, [world.lon.id]), world.globex)
    with pytest.raises(NotFound):
        filter_options(db, admin_actor(make_operator(db)), world.acme)
    someone = Actor(
        kind=ActorKind.OCCUPIER_USER,
        id=world.people["invited"].id,
        operator_id=world.operator.id,
        role=Role.OCCUPIER_USER,
        occupier_id=world.acme.id,
    )
    with pytest.raises(PermissionDenied):
        filter_options(db, someone, world.acme)
