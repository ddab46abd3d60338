"""FreeRADIUS's policy rows follow sites and occupiers: which access points a site group matches, which VLAN
it gives, and which site groups each Wi-Fi user belongs to.

FreeRADIUS reads ``radgroupcheck`` (``NAS-Identifier =~ <regex>``) to decide whether a user's group applies
to the access point asking, and then replies with that group's ``radgroupreply`` VLAN. The regex is
checked here with Python's ``re``, which agrees with POSIX extended regexes on the escaped literals and
alternations the sync writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.occupiers import service as occupiers
from occupant.occupiers.models import Occupier
from occupant.occupiers.schemas import OccupierUpdate
from occupant.operators.models import Operator
from occupant.radius import sync
from occupant.radius.models import RadAcct, RadCheck, RadGroupCheck, RadGroupReply, RadPostAuth, RadUserGroup
from occupant.sites import service as sites
from occupant.sites.models import Site
from occupant.sites.schemas import SiteUpdate
from occupant.users import service as users
from occupant.users.models import OccupierUser
from occupant.wifi import service as wifi
from occupant.wifi.models import WifiAccount, WifiStatus
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_user


@dataclass
class World:
    operator: Operator
    admin: Actor
    lon: Site
    par: Site
    ber: Site
    occupier: Occupier


@pytest.fixture
def world(db: Session) -> World:
    operator = make_operator(db)
    admin = admin_actor(operator)
    lon = make_site(db, operator, code="LON01", nas=["ap.lon01.1", "ctrl-lon01"])
    par = make_site(db, operator, code="PAR01", country="FR", nas=["ap-par01"])
    ber = make_site(db, operator, code="BER01", country="DE", nas=["ap-ber01"])
    occupier = make_occupier(db, operator, sites_=[lon, par], primary_site_id=lon.id)
    return World(operator, admin, lon, par, ber, occupier)


def group_check(db: Session, group: str) -> tuple[str, str, str]:
    [(attribute, op, value)] = db.execute(
        select(RadGroupCheck.attribute, RadGroupCheck.op, RadGroupCheck.value).where(
            RadGroupCheck.groupname == group
        )
    ).all()
    return attribute, op, value


def group_reply(db: Session, group: str) -> dict[str, tuple[str, str]]:
    rows = db.execute(
        select(RadGroupReply.attribute, RadGroupReply.op, RadGroupReply.value).where(
            RadGroupReply.groupname == group
        )
    ).all()
    return {a: (op, v) for a, op, v in rows}


def admits(db: Session, group: str, nas_identifier: str) -> bool:
    """Whether FreeRADIUS would apply ``group`` to a request from this NAS-Identifier."""
    attribute, op, value = group_check(db, group)
    assert attribute == "NAS-Identifier"
    if op == "=~":
        return re.search(value, nas_identifier) is not None
    assert op == "=="
    return value == nas_identifier


def groups(db: Session, username: str) -> list[tuple[str, int]]:
    rows = db.execute(
        select(RadUserGroup.groupname, RadUserGroup.priority)
        .where(RadUserGroup.username == username)
        .order_by(RadUserGroup.priority, RadUserGroup.groupname)
    ).all()
    return [(name, priority) for name, priority in rows]


def vlan_at(db: Session, username: str, nas_identifier: str) -> str | None:
    """The VLAN a user lands on at this access point: their first group (by priority) that applies."""
    for name, _ in groups(db, username):
        if admits(db, name, nas_identifier):
            return group_reply(db, name)["Tunnel-Private-Group-Id"][1]
    return None


def live(db: Session, w: World, user: OccupierUser, homesite: Site) -> WifiAccount:
    account = wifi.create_wifi_account(db, user, homesite_id=homesite.id, actor=w.admin)
    assert wifi.confirm_provisioning(db, account.id)
    db.flush()
    db.expire(user)
    return account


# --- sites --------------------------------------------------------------------------------------


def test_a_site_group_matches_exactly_its_access_points(db, world):
    for group in (sync.home_group(world.lon), sync.guest_group(world.lon)):
        assert group_check(db, group)[:2] == ("NAS-Identifier", "=~")
        assert admits(db, group, "ap.lon01.1") and admits(db, group, "ctrl-lon01")
        # the dots are literal, and the whole identifier must match
        for stranger in ("apXlon01Y1", "ap.lon01.10", "xap.lon01.1", "ctrl-lon01-b", "ap-par01", ""):
            assert not admits(db, group, stranger), stranger


def test_the_site_groups_give_the_secure_and_the_guest_vlan(db, world):
    assert group_reply(db, sync.home_group(world.lon)) == {
        "Tunnel-Type": (":=", "VLAN"),
        "Tunnel-Medium-Type": (":=", "IEEE-802"),
        "Tunnel-Private-Group-Id": (":=", str(world.lon.wifi_vlan)),
    }
    assert group_reply(db, sync.guest_group(world.lon)) == {
        "Tunnel-Type": (":=", "VLAN"),
        "Tunnel-Medium-Type": (":=", "IEEE-802"),
        "Tunnel-Private-Group-Id": (":=", str(world.lon.guest_vlan)),
    }
    assert world.lon.wifi_vlan != world.lon.guest_vlan


def test_regex_characters_in_nas_identifiers_are_literal(db, world):
    odd = ["ap(1)", "a+b", "x|y", "c[2]", "^caret$", "back\\slash", "q?", "star*", "brace{3}"]
    site = make_site(db, world.operator, code="ODD01", nas=odd)
    group = sync.home_group(site)
    for identifier in odd:
        assert admits(db, group, identifier), identifier
    for stranger in ("ap1", "aab", "x", "y", "c2", "caret", "backslash", "q", "sta", "braceee", "ap(1)x"):
        assert not admits(db, group, stranger), stranger


def test_a_site_without_access_points_admits_nobody(db, world):
    site = make_site(db, world.operator, code="NEW01", nas=[])
    every_nas = ["ap.lon01.1", "ctrl-lon01", "ap-par01", "ap-ber01", "", "NEW01", "new01"]
    for group in (sync.home_group(site), sync.guest_group(site)):
        assert not any(admits(db, group, nas) for nas in every_nas)
    # and losing its last access point has the same effect
    sites.update_site(db, world.par, SiteUpdate(nas_identifiers=[]), actor=world.admin)
    assert not any(admits(db, sync.home_group(world.par), nas) for nas in every_nas)


def test_updating_a_sites_access_points_rewrites_its_groups(db, world):
    sites.update_site(
        db, world.lon, SiteUpdate(nas_identifiers=["ctrl-lon01", "ap.lon01.3"]), actor=world.admin
    )
    for group in (sync.home_group(world.lon), sync.guest_group(world.lon)):
        assert admits(db, group, "ap.lon01.3") and admits(db, group, "ctrl-lon01")
        assert not admits(db, group, "ap.lon01.1")  # the removed access point no longer matches
        assert len(group_reply(db, group)) == 3  # rewritten, not appended


def test_a_renamed_site_keeps_its_groups(db, world):
    before = group_check(db, sync.home_group(world.lon))
    sites.update_site(db, world.lon, SiteUpdate(name="London Bridge Tower"), actor=world.admin)
    assert group_check(db, sync.home_group(world.lon)) == before


def test_deleting_a_site_removes_its_groups(db, world):
    site = make_site(db, world.operator, code="TMP01", nas=["ap-tmp"])
    names = [sync.home_group(site), sync.guest_group(site)]
    sites.delete_site(db, site, actor=world.admin)
    db.flush()
    for table in (RadGroupCheck, RadGroupReply):
        assert not db.scalar(select(func.count()).select_from(table).where(table.groupname.in_(names)))


def test_sites_with_the_same_code_at_two_operators_keep_their_own_policy(db, world):
    """Site codes are unique per operator only; one operator's sites must never change another's Wi-Fi."""
    other = make_operator(db)
    their_lon = make_site(db, other, code="LON01", nas=["their-ap"])
    their_occupier = make_occupier(db, other, sites_=[their_lon])
    mine = live(db, world, make_user(db, world.occupier), world.lon)
    theirs = wifi.create_wifi_account(
        db, make_user(db, their_occupier), homesite_id=their_lon.id, actor=admin_actor(other)
    )
    sites.update_site(
        db, their_lon, SiteUpdate(nas_identifiers=["their-ap", "their-ap-2"]), actor=admin_actor(other)
    )

    assert vlan_at(db, mine.username, "ap.lon01.1") == str(world.lon.wifi_vlan)
    assert vlan_at(db, mine.username, "their-ap") is None
    assert vlan_at(db, theirs.username, "their-ap-2") == str(their_lon.wifi_vlan)
    assert vlan_at(db, theirs.username, "ap.lon01.1") is None
    sites.delete_site(db, make_site(db, other, code="PAR01", nas=["x"]), actor=admin_actor(other))
    assert vlan_at(db, mine.username, "ap-par01") == str(world.par.guest_vlan)


# --- occupiers: guest groups follow the occupier's sites ------------------------------------------


def test_users_land_on_the_secure_vlan_at_home_and_the_guest_vlan_elsewhere(db, world):
    account = live(db, world, make_user(db, world.occupier), world.par)
    assert vlan_at(db, account.username, "ap-par01") == str(world.par.wifi_vlan)
    assert vlan_at(db, account.username, "ap.lon01.1") == str(world.lon.guest_vlan)
    assert vlan_at(db, account.username, "ap-ber01") is None  # a site the occupier cannot use


def test_an_occupier_gaining_a_site_gives_its_users_guest_access_there(db, world):
    w = world
    active = live(db, w, make_user(db, w.occupier), w.par)
    provisioning = wifi.create_wifi_account(
        db, make_user(db, w.occupier), homesite_id=w.lon.id, actor=w.admin
    )
    off_user = make_user(db, w.occupier)
    off = live(db, w, off_user, w.lon)
    wifi.deactivate_wifi(db, off_user, actor=w.admin)

    occupiers.update_occupier(
        db, w.occupier, OccupierUpdate(site_ids=[w.lon.id, w.par.id, w.ber.id]), actor=w.admin
    )
    assert groups(db, active.username) == [
        (sync.home_group(w.par), 1),
        (sync.guest_group(w.ber), 2),
        (sync.guest_group(w.lon), 2),
    ]
    assert groups(db, provisioning.username) == [
        (sync.home_group(w.lon), 1),
        (sync.guest_group(w.ber), 2),
        (sync.guest_group(w.par), 2),
    ]
    assert groups(db, off.username) == []  # a deactivated account stays refused
    assert vlan_at(db, active.username, "ap-ber01") == str(w.ber.guest_vlan)


def test_an_occupier_losing_a_site_takes_its_users_guest_access_away(db, world):
    w = world
    account = live(db, w, make_user(db, w.occupier), w.lon)
    occupiers.update_occupier(db, w.occupier, OccupierUpdate(site_ids=[w.lon.id]), actor=w.admin)
    assert groups(db, account.username) == [(sync.home_group(w.lon), 1)]
    assert vlan_at(db, account.username, "ap-par01") is None


def test_a_lost_homesite_falls_back_to_the_primary_site(db, world):
    w = world
    user = make_user(db, w.occupier)
    account = live(db, w, user, w.par)
    off_user = make_user(db, w.occupier)
    off = live(db, w, off_user, w.par)
    wifi.deactivate_wifi(db, off_user, actor=w.admin)

    occupiers.update_occupier(db, w.occupier, OccupierUpdate(site_ids=[w.lon.id, w.ber.id]), actor=w.admin)
    assert w.occupier.primary_site_id == w.lon.id
    assert account.homesite_id == w.lon.id and off.homesite_id == w.lon.id
    assert groups(db, account.username) == [(sync.home_group(w.lon), 1), (sync.guest_group(w.ber), 2)]
    assert vlan_at(db, account.username, "ap.lon01.1") == str(w.lon.wifi_vlan)
    assert groups(db, off.username) == []
    # the lost site can now be deleted: no account points at it any more
    occupiers.update_occupier(db, w.occupier, OccupierUpdate(site_ids=[w.lon.id]), actor=w.admin)
    sites.delete_site(db, w.par, actor=w.admin)
    wifi.activate_wifi(db, off_user, actor=w.admin)
    assert groups(db, off.username) == [(sync.home_group(w.lon), 1)]


def test_losing_the_primary_and_the_homesite_together_falls_back_to_the_new_primary(db, world):
    w = world
    account = live(db, w, make_user(db, w.occupier), w.lon)
    occupiers.update_occupier(db, w.occupier, OccupierUpdate(site_ids=[w.par.id, w.ber.id]), actor=w.admin)
    primary = w.occupier.primary_site_id
    assert primary in (w.par.id, w.ber.id)
    assert account.homesite_id == primary
    home = w.par if primary == w.par.id else w.ber
    assert groups(db, account.username)[0] == (sync.home_group(home), 1)
    assert len(groups(db, account.username)) == 2


def test_changing_only_the_primary_site_leaves_homesites_alone(db, world):
    w = world
    account = live(db, w, make_user(db, w.occupier), w.lon)
    before = groups(db, account.username)
    occupiers.update_occupier(db, w.occupier, OccupierUpdate(primary_site_id=w.par.id), actor=w.admin)
    assert account.homesite_id == w.lon.id and groups(db, account.username) == before


# --- usernames: renamed and purged with every row -------------------------------------------------


def test_a_deleted_users_sessions_and_sign_in_history_go_with_them(db, world):
    w = world
    user = make_user(db, w.occupier)
    account = live(db, w, user, w.lon)
    name = account.username
    db.add(
        RadAcct(
            acctsessionid="s1",
            acctuniqueid="u1",
            username=name,
            nasipaddress="10.0.0.1",
            callingstationid="AA-BB-CC-DD-EE-FF",
        )
    )
    db.add(RadPostAuth(username=name, reply="Access-Reject", callingstationid="AA-BB-CC-DD-EE-FF"))
    db.flush()
    users.delete_user(db, user, actor=w.admin)
    db.flush()
    for table in (RadCheck, RadUserGroup, RadAcct, RadPostAuth):
        assert not db.scalar(select(func.count()).select_from(table).where(table.username == name))
    assert not db.scalar(select(func.count()).select_from(WifiAccount).where(WifiAccount.username == name))


def test_decommissioning_removes_every_users_wifi(committed):
    from occupant.kit.db import transaction
    from occupant.occupiers.decommission import run_decommission

    with transaction(committed) as s:
        operator = make_operator(s)
        site = make_site(s, operator, nas=["ap-1"])
        occupier = make_occupier(s, operator, sites_=[site])
        people = [make_user(s, occupier) for _ in range(3)]
        accounts = [
            wifi.create_wifi_account(s, p, homesite_id=site.id, actor=admin_actor(operator)) for p in people
        ]
        s.flush()
        names = [a.username for a in accounts]
        for account in accounts:
            wifi.confirm_provisioning(s, account.id)
        s.add(RadPostAuth(username=names[0], reply="Access-Accept"))
        occupier_id, operator_id = occupier.id, operator.id
    with transaction(committed) as s:
        occupiers.start_decommission(
            s, s.get_one(Occupier, occupier_id), actor=admin_actor(s.get_one(Operator, operator_id))
        )
    assert run_decommission(committed, occupier_id) == "DECOMMISSIONED"
    with committed() as s:
        assert s.scalar(select(func.count()).select_from(WifiAccount)) == 0
        for table in (RadCheck, RadUserGroup, RadPostAuth):
            assert not s.scalar(select(func.count()).select_from(table).where(table.username.in_(names)))
        assert s.scalar(select(func.count()).select_from(RadGroupCheck))  # the site's policy stays


def test_a_provisioning_account_is_live_in_radius_before_it_is_confirmed(db, world):
    """PROVISIONING means "not yet confirmed", not "not yet written": the rows are there at once."""
    user = make_user(db, world.occupier)
    account = wifi.create_wifi_account(db, user, homesite_id=world.lon.id, actor=world.admin)
    assert account.status == WifiStatus.PROVISIONING
    assert vlan_at(db, account.username, "ap.lon01.1") == str(world.lon.wifi_vlan)
    assert db.scalar(
        select(func.count())
        .select_from(RadCheck)
        .where(RadCheck.username == account.username, RadCheck.attribute == "NT-Password")
    )
