"""Wi-Fi Secure accounts through the service actions: what the user, the admin and RADIUS would see.

RADIUS sees only its tables (radcheck, radusergroup, ...): an account works when they hold the NT hash of
the emailed password, and is refused when they hold nothing for its username.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.kit.clock import utcnow
from occupant.kit.errors import (
    ActionInProgress,
    FieldErrors,
    InvalidState,
    NotFound,
    OccupantError,
    OccupierDecommissioned,
    PermissionDenied,
)
from occupant.notify.models import OutboxMessage
from occupant.notify.service import secret_box
from occupant.occupiers import service as occupiers
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.radius import sync
from occupant.radius.models import RadAcct, RadCheck, RadPostAuth, RadReply, RadUserGroup
from occupant.sites.models import Site
from occupant.users import service as users
from occupant.users.models import OccupierUser, UserStatus
from occupant.users.schemas import UserUpdate
from occupant.wifi import service as wifi
from occupant.wifi.models import WifiAccount, WifiStatus
from occupant.wifi.passwords import nt_hash
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_user


@dataclass
class World:
    operator: Operator
    lon: Site
    par: Site
    ber: Site  # a site of the operator that the occupier cannot access
    occupier: Occupier
    user: OccupierUser
    admin: Actor


@pytest.fixture
def world(db: Session) -> World:
    operator = make_operator(db, name="Atelier Workspaces")
    lon = make_site(db, operator, code="LON01", name="London Bridge", nas=["ap.lon01.1", "ctrl-lon01"])
    par = make_site(db, operator, code="PAR01", name="Paris Opéra", country="FR", nas=["ap-par01"])
    ber = make_site(db, operator, code="BER01", name="Berlin Mitte", country="DE", nas=["ap-ber01"])
    occupier = make_occupier(db, operator, sites_=[lon, par], primary_site_id=lon.id)
    user = make_user(db, occupier, first_name="Zoé", language="fr", email="Zoe.Martin@Tenant.example")
    return World(operator, lon, par, ber, occupier, user, admin_actor(operator))


# --- what RADIUS, the mailbox and the audit log hold ----------------------------------------------


def radcheck(db: Session, username: str) -> dict[str, tuple[str, str]]:
    rows = db.execute(
        select(RadCheck.attribute, RadCheck.op, RadCheck.value).where(RadCheck.username == username)
    ).all()
    found = {attribute: (op, value) for attribute, op, value in rows}
    assert len(found) == len(rows), f"duplicate radcheck attributes for {username}: {rows}"
    return found


def groups(db: Session, username: str) -> list[tuple[str, int]]:
    rows = db.execute(
        select(RadUserGroup.groupname, RadUserGroup.priority)
        .where(RadUserGroup.username == username)
        .order_by(RadUserGroup.priority, RadUserGroup.groupname)
    ).all()
    return [(name, priority) for name, priority in rows]


def radius_rows(db: Session, username: str) -> int:
    return sum(
        db.scalar(select(func.count()).select_from(table).where(table.username == username)) or 0
        for table in (RadCheck, RadReply, RadUserGroup, RadAcct, RadPostAuth)
    )


def wifi_mails(db: Session, user_id: int) -> list[OutboxMessage]:
    return list(
        db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.occupier_user_id == user_id, OutboxMessage.template == "wifi_password")
            .order_by(OutboxMessage.id)
        )
    )


def password_of(message: OutboxMessage) -> str:
    """The password the user reads in the email (sealed in the outbox until delivery)."""
    assert message.sealed_secrets
    password = secret_box().open(message.sealed_secrets)["password"]
    assert isinstance(password, str)
    return password


def events(db: Session, action: str) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def fresh_user(db: Session, user: OccupierUser) -> OccupierUser:
    db.flush()
    db.expire(user)
    return user


def state(db: Session) -> dict[str, Any]:
    """Everything a Wi-Fi action could change, to compare before and after a refused one."""
    return {
        "accounts": db.execute(
            select(
                WifiAccount.id,
                WifiAccount.username,
                WifiAccount.status,
                WifiAccount.nt_hash,
                WifiAccount.homesite_id,
                WifiAccount.device_limit,
            ).order_by(WifiAccount.id)
        ).all(),
        "radcheck": db.execute(
            select(RadCheck.username, RadCheck.attribute, RadCheck.value).order_by(RadCheck.id)
        ).all(),
        "radusergroup": db.execute(
            select(RadUserGroup.username, RadUserGroup.groupname).order_by(RadUserGroup.id)
        ).all(),
        "radacct": db.execute(
            select(RadAcct.radacctid, RadAcct.acctstoptime).order_by(RadAcct.radacctid)
        ).all(),
        "mail": db.scalar(select(func.count()).select_from(OutboxMessage)),
        "audit": db.scalar(select(func.count()).select_from(AuditEvent)),
        "busy": db.execute(select(OccupierUser.id, OccupierUser.busy_owner).order_by(OccupierUser.id)).all(),
    }


def create(db: Session, w: World, user: OccupierUser | None = None, **kwargs: Any) -> WifiAccount:
    kwargs.setdefault("homesite_id", w.par.id)
    return wifi.create_wifi_account(db, user or w.user, actor=w.admin, **kwargs)


def live(db: Session, w: World, user: OccupierUser | None = None, **kwargs: Any) -> WifiAccount:
    """An ACTIVE account: created, then confirmed as the worker would."""
    account = create(db, w, user, **kwargs)
    assert wifi.confirm_provisioning(db, account.id)
    fresh_user(db, user or w.user)
    return account


def open_session(
    db: Session, username: str, *, minutes_ago: int = 5, mac: str = "AA-BB-CC-00-00-01"
) -> RadAcct:
    """An accounting session as FreeRADIUS writes it on Accounting-Start."""
    started = utcnow() - timedelta(minutes=minutes_ago)
    row = RadAcct(
        acctsessionid=f"sess-{mac}-{minutes_ago}",
        acctuniqueid=f"uniq-{username}-{mac}-{minutes_ago}",
        username=username,
        nasipaddress="10.1.0.2",
        nasidentifier="ap.lon01.1",
        acctstarttime=started,
        acctupdatetime=started,
        callingstationid=mac,
        framedipaddress="10.20.0.15",
    )
    db.add(row)
    db.flush()
    return row


# --- create ---------------------------------------------------------------------------------------


def test_create_emails_a_password_that_radius_checks_and_is_active_once_confirmed(db, world):
    w = world
    account = create(db, w, homesite_id=w.par.id, device_limit=3)

    assert account.status == WifiStatus.PROVISIONING
    assert account.username == "zoe.martin@tenant.example"  # the email, lower-cased
    assert fresh_user(db, w.user).is_busy
    with pytest.raises(ActionInProgress):
        users.update_user(db, w.user, UserUpdate(job_title="Architect"), actor=w.admin)
    with pytest.raises(ActionInProgress):
        wifi.reset_wifi_password(db, w.user, actor=w.admin)

    [mail] = wifi_mails(db, w.user.id)
    password = password_of(mail)
    assert mail.to_address == w.user.email == "Zoe.Martin@tenant.example"
    assert mail.language == "fr"
    assert mail.context["reason"] == "created"
    assert mail.context["homesite"] == "Paris Opéra"
    assert mail.context["username"] == account.username
    assert mail.context["device_limit"] == 3
    assert password not in json.dumps(mail.context)

    assert radcheck(db, account.username) == {
        "NT-Password": (":=", nt_hash(password)),
        "Simultaneous-Use": (":=", "3"),
    }
    assert groups(db, account.username) == [(sync.home_group(w.par), 1), (sync.guest_group(w.lon), 2)]
    assert "PAR01" in sync.home_group(w.par) and "LON01" in sync.guest_group(w.lon)

    assert wifi.confirm_provisioning(db, account.id) is True
    db.refresh(account)
    assert account.status == WifiStatus.ACTIVE and account.provisioned_at is not None
    assert not fresh_user(db, w.user).is_busy
    users.update_user(db, w.user, UserUpdate(job_title="Architect"), actor=w.admin)  # free again
    assert wifi.confirm_provisioning(db, account.id) is False  # a second confirmation changes nothing


def test_a_confirmation_before_radius_has_the_credential_asks_to_be_retried(db, world):
    w = world
    account = wifi.create_wifi_account(db, w.user, homesite_id=w.par.id, actor=w.admin)
    db.execute(delete(RadCheck).where(RadCheck.username == account.username))
    with pytest.raises(wifi.ProvisioningNotLive):
        wifi.confirm_provisioning(db, account.id)
    db.refresh(account)
    assert account.status == WifiStatus.PROVISIONING and fresh_user(db, w.user).is_busy


def test_the_cleartext_password_is_stored_nowhere(committed, engine):
    from occupant.kit.db import transaction
    from occupant.notify.delivery import deliver_due
    from tests.test_personal_data import dump_database

    with transaction(committed) as s:
        operator = make_operator(s)
        site = make_site(s, operator, nas=["ap-1"])
        user = make_user(s, make_occupier(s, operator, sites_=[site]))
        account = wifi.create_wifi_account(s, user, homesite_id=site.id, actor=admin_actor(operator))
        s.flush()
        account_id, user_id = account.id, user.id
    with transaction(committed) as s:
        wifi.confirm_provisioning(s, account_id)
        wifi.reset_wifi_password(s, s.get_one(OccupierUser, user_id), actor=admin_actor(operator))
    with committed() as s:
        passwords = [password_of(m) for m in wifi_mails(s, user_id)]
        stored_hash = s.scalar(select(WifiAccount.nt_hash))
    assert len(passwords) == 2 and stored_hash == nt_hash(passwords[-1])

    def exposed(dump: str) -> list[str]:
        forms = [p.lower() for p in passwords] + [p.replace("-", "").lower() for p in passwords]
        return [f for f in forms if f in dump]

    dump = dump_database(engine)
    assert stored_hash in dump  # the dump does see what RADIUS needs
    assert exposed(dump) == []
    deliver_due(committed)  # delivered: the sealed copy leaves the outbox too
    with committed() as s:
        assert wifi_mails(s, user_id) and all(m.sealed_secrets is None for m in wifi_mails(s, user_id))
    assert exposed(dump_database(engine)) == []


def test_create_without_a_limit_uses_the_occupiers_default(db, world):
    account = create(db, world, device_limit=None)
    assert account.device_limit == world.occupier.default_wifi_device_limit == 2
    assert radcheck(db, account.username)["Simultaneous-Use"] == (":=", "2")


def test_the_device_limit_may_reach_the_operators_maximum(db, world):
    world.operator.wifi_max_devices = 7
    account = create(db, world, device_limit=7)
    assert radcheck(db, account.username)["Simultaneous-Use"] == (":=", "7")


def test_each_new_password_is_random_and_readable(db, world):
    others = [make_user(db, world.occupier) for _ in range(5)]
    passwords = []
    for user in [world.user, *others]:
        create(db, world, user)
        passwords.append(password_of(wifi_mails(db, user.id)[-1]))
    assert len(set(passwords)) == len(passwords)
    for password in passwords:
        assert len(password) == 14 and password.count("-") == 2


def test_occupier_admins_may_create_but_occupier_users_may_not(db, world):
    w = world
    as_user = Actor(
        ActorKind.OCCUPIER_USER, w.user.id, w.operator.id, Role.OCCUPIER_USER, occupier_id=w.occupier.id
    )
    before = state(db)
    with pytest.raises(PermissionDenied):
        wifi.create_wifi_account(db, w.user, homesite_id=w.par.id, actor=as_user)
    assert state(db) == before
    as_admin = Actor(ActorKind.STAFF, 99, w.operator.id, Role.OCCUPIER_ADMIN, occupier_id=w.occupier.id)
    assert wifi.create_wifi_account(db, w.user, homesite_id=w.par.id, actor=as_admin).id


# --- refused input: an error the caller can show, and nothing changed ----------------------------


def _field_codes(exc: FieldErrors) -> dict[str, str]:
    return {e["field"]: e["code"] for e in exc.errors}


@pytest.mark.parametrize(
    ("homesite", "limit", "expected"),
    [
        ("ber", 2, {"homesite_id": "invalid_homesite"}),  # the operator's, but not the occupier's
        ("foreign", 2, {"homesite_id": "invalid_homesite"}),  # another operator's site
        ("none", 2, {"homesite_id": "invalid_homesite"}),
        ("par", 0, {"device_limit": "invalid_device_limit"}),
        ("par", -1, {"device_limit": "invalid_device_limit"}),
        ("par", 6, {"device_limit": "invalid_device_limit"}),  # above the operator's maximum of 5
        ("ber", 0, {"homesite_id": "invalid_homesite", "device_limit": "invalid_device_limit"}),
    ],
)
def test_create_refuses_invalid_fields_all_at_once(db, world, homesite, limit, expected):
    w = world
    site_ids = {"ber": w.ber.id, "par": w.par.id, "none": None}
    if homesite == "foreign":
        other = make_operator(db)
        site_ids["foreign"] = make_site(db, other, code="LON01").id
    before = state(db)
    with pytest.raises(FieldErrors) as err:
        create(db, w, homesite_id=site_ids[homesite], device_limit=limit)
    assert _field_codes(err.value) == expected
    assert err.value.status == 422
    assert state(db) == before


def test_a_lower_operator_maximum_is_enforced(db, world):
    world.operator.wifi_max_devices = 3
    before = state(db)
    with pytest.raises(FieldErrors) as err:
        create(db, world, device_limit=4)
    assert "between 1 and 3" in err.value.errors[0]["message"]
    assert state(db) == before


def test_an_occupier_default_above_the_operator_maximum_is_refused(db, world):
    world.occupier.default_wifi_device_limit = 9
    before = state(db)
    with pytest.raises(FieldErrors) as err:
        create(db, world, device_limit=None)
    assert _field_codes(err.value) == {"device_limit": "invalid_device_limit"}
    assert state(db) == before


def test_a_second_account_is_refused(db, world):
    live(db, world)
    before = state(db)
    with pytest.raises(wifi.WifiAccountExists) as err:
        create(db, world, homesite_id=world.lon.id)
    assert (err.value.code, err.value.status) == ("wifi_account_exists", 409)
    assert state(db) == before


ACTIONS = {
    "deactivate": lambda db, w: wifi.deactivate_wifi(db, w.user, actor=w.admin),
    "activate": lambda db, w: wifi.activate_wifi(db, w.user, actor=w.admin),
    "reset": lambda db, w: wifi.reset_wifi_password(db, w.user, actor=w.admin),
    "homesite": lambda db, w: wifi.change_homesite(db, w.user, w.lon.id, actor=w.admin),
    "limit": lambda db, w: wifi.change_device_limit(db, w.user, 4, actor=w.admin),
    "clear_session": lambda db, w: wifi.clear_session(db, w.user, 1, actor=w.admin),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_actions_without_an_account_say_so(db, world, action):
    before = state(db)
    with pytest.raises(wifi.NoWifiAccount) as err:
        ACTIONS[action](db, world)
    assert (err.value.code, err.value.status) == ("no_wifi_account", 409)
    assert state(db) == before
    assert wifi.connected_devices(db, world.user) == []


@pytest.mark.parametrize("action", ["create", *sorted(set(ACTIONS) - {"clear_session"})])
def test_a_busy_user_is_refused(db, world, action):
    w = world
    if action != "create":
        live(db, w)
        if action == "activate":
            wifi.deactivate_wifi(db, w.user, actor=w.admin)
    w.user.busy_owner, w.user.busy_until = "bulk:7", utcnow() + timedelta(minutes=5)  # a bulk job holds it
    db.flush()
    before = state(db)
    run = (lambda db, w: create(db, w)) if action == "create" else ACTIONS[action]
    with pytest.raises(ActionInProgress) as err:
        run(db, w)
    assert (err.value.code, err.value.status) == ("action_in_progress", 409)
    assert state(db) == before
    w.user.busy_until = utcnow() - timedelta(seconds=1)  # the hold expired: a crashed job leaves no trap
    db.flush()
    run(db, w)


@pytest.mark.parametrize("action", ["create", *sorted(ACTIONS)])
def test_a_decommissioning_occupier_is_refused(db, world, action):
    w = world
    if action != "create":
        live(db, w)
        if action == "activate":
            wifi.deactivate_wifi(db, w.user, actor=w.admin)
    occupiers.start_decommission(db, w.occupier, actor=w.admin)
    before = state(db)
    run = (lambda db, w: create(db, w)) if action == "create" else ACTIONS[action]
    with pytest.raises(OccupierDecommissioned) as err:
        run(db, w)
    assert (err.value.code, err.value.status) == ("occupier_decommissioned", 409)
    assert state(db) == before


def test_a_deactivated_user_gets_no_account(db, world):
    users.deactivate_user(db, world.user, actor=world.admin)
    before = state(db)
    with pytest.raises(InvalidState) as err:
        create(db, world)
    assert (err.value.code, err.value.status) == ("invalid_state", 409)
    assert "reactivate" in err.value.message
    assert state(db) == before


# --- deactivate, activate, reset --------------------------------------------------------------------


def test_deactivate_refuses_from_the_next_request_and_twice_is_a_no_op(db, world):
    w = world
    account = live(db, w)
    wifi.deactivate_wifi(db, w.user, actor=w.admin)
    assert account.status == WifiStatus.DEACTIVATED and account.nt_hash is None
    assert radcheck(db, account.username) == {} and groups(db, account.username) == []
    assert not fresh_user(db, w.user).is_busy
    assert len(events(db, "wifi.deactivated")) == 1

    before = state(db)
    assert wifi.deactivate_wifi(db, w.user, actor=w.admin).status == WifiStatus.DEACTIVATED
    assert state(db) == before  # no second event, nothing else
    assert wifi.confirm_provisioning(db, account.id) is False  # a late confirmation does not revive it
    assert account.status == WifiStatus.DEACTIVATED


def test_a_provisioning_account_cannot_be_deactivated_until_confirmed(db, world):
    create(db, world)
    with pytest.raises(ActionInProgress):
        wifi.deactivate_wifi(db, world.user, actor=world.admin)


def test_activate_issues_a_new_password_and_provisions_again(db, world):
    w = world
    account = live(db, w, device_limit=3)
    first = password_of(wifi_mails(db, w.user.id)[0])
    wifi.deactivate_wifi(db, w.user, actor=w.admin)

    wifi.activate_wifi(db, w.user, actor=w.admin)
    mails = wifi_mails(db, w.user.id)
    assert len(mails) == 2 and mails[-1].context["reason"] == "activated" and mails[-1].language == "fr"
    second = password_of(mails[-1])
    assert second != first
    assert radcheck(db, account.username) == {
        "NT-Password": (":=", nt_hash(second)),
        "Simultaneous-Use": (":=", "3"),
    }
    assert groups(db, account.username) == [(sync.home_group(w.par), 1), (sync.guest_group(w.lon), 2)]
    assert account.status == WifiStatus.PROVISIONING and fresh_user(db, w.user).is_busy
    [event] = events(db, "wifi.activated")
    assert event.changes == {"wifi_status": ["DEACTIVATED", "PROVISIONING"]}

    assert wifi.confirm_provisioning(db, account.id)
    db.refresh(account)
    assert account.status == WifiStatus.ACTIVE and not fresh_user(db, w.user).is_busy


def test_activating_a_live_account_changes_nothing(db, world):
    live(db, world)
    before = state(db)
    assert wifi.activate_wifi(db, world.user, actor=world.admin).status == WifiStatus.ACTIVE
    assert state(db) == before


def test_reset_replaces_the_password_at_once(db, world):
    w = world
    account = live(db, w)
    old = password_of(wifi_mails(db, w.user.id)[0])

    wifi.reset_wifi_password(db, w.user, actor=w.admin)
    mail = wifi_mails(db, w.user.id)[-1]
    new = password_of(mail)
    assert mail.context["reason"] == "reset" and new != old
    check = radcheck(db, account.username)
    assert check["NT-Password"] == (":=", nt_hash(new))
    assert nt_hash(old) not in {v for _, v in check.values()}  # the old password is refused
    assert account.nt_hash == nt_hash(new)
    assert account.status == WifiStatus.ACTIVE and not fresh_user(db, w.user).is_busy
    [event] = events(db, "wifi.password_reset")
    assert event.fields == ["wifi_password"] and event.changes == {}


def test_a_deactivated_account_is_activated_not_reset(db, world):
    live(db, world)
    wifi.deactivate_wifi(db, world.user, actor=world.admin)
    before = state(db)
    with pytest.raises(InvalidState):
        wifi.reset_wifi_password(db, world.user, actor=world.admin)
    assert state(db) == before


# --- homesite and device limit --------------------------------------------------------------------


def test_changing_the_homesite_moves_the_groups_and_issues_a_new_password(db, world):
    w = world
    account = live(db, w, homesite_id=w.par.id)
    old = password_of(wifi_mails(db, w.user.id)[0])

    wifi.change_homesite(db, w.user, w.lon.id, actor=w.admin)
    assert account.homesite_id == w.lon.id
    assert groups(db, account.username) == [(sync.home_group(w.lon), 1), (sync.guest_group(w.par), 2)]
    mail = wifi_mails(db, w.user.id)[-1]
    assert mail.context["reason"] == "homesite_changed" and mail.context["homesite"] == "London Bridge"
    new = password_of(mail)
    assert new != old and radcheck(db, account.username)["NT-Password"] == (":=", nt_hash(new))
    [event] = events(db, "wifi.homesite_changed")
    assert event.changes == {"wifi_homesite": ["PAR01", "LON01"]}

    before = state(db)
    wifi.change_homesite(db, w.user, w.lon.id, actor=w.admin)  # the same homesite: nothing happens
    assert state(db) == before
    with pytest.raises(FieldErrors) as err:
        wifi.change_homesite(db, w.user, w.ber.id, actor=w.admin)
    assert _field_codes(err.value) == {"homesite_id": "invalid_homesite"}
    assert state(db) == before


def test_the_homesite_of_a_deactivated_account_changes_quietly_and_applies_on_activation(db, world):
    w = world
    account = live(db, w, homesite_id=w.par.id)
    wifi.deactivate_wifi(db, w.user, actor=w.admin)
    wifi.change_homesite(db, w.user, w.lon.id, actor=w.admin)
    assert groups(db, account.username) == [] and radcheck(db, account.username) == {}
    assert len(wifi_mails(db, w.user.id)) == 1  # no password for an account that cannot sign in
    wifi.activate_wifi(db, w.user, actor=w.admin)
    assert groups(db, account.username) == [(sync.home_group(w.lon), 1), (sync.guest_group(w.par), 2)]
    assert wifi_mails(db, w.user.id)[-1].context["homesite"] == "London Bridge"


def test_changing_the_device_limit_updates_radius_without_mail(db, world):
    w = world
    account = live(db, w, device_limit=2)
    hash_before = radcheck(db, account.username)["NT-Password"]
    wifi.change_device_limit(db, w.user, 4, actor=w.admin)
    assert account.device_limit == 4
    assert radcheck(db, account.username) == {"NT-Password": hash_before, "Simultaneous-Use": (":=", "4")}
    assert len(wifi_mails(db, w.user.id)) == 1
    [event] = events(db, "wifi.device_limit_changed")
    assert event.changes == {"wifi_device_limit": [2, 4]}

    before = state(db)
    wifi.change_device_limit(db, w.user, 4, actor=w.admin)
    assert state(db) == before
    for bad in (0, 6):
        with pytest.raises(FieldErrors) as err:
            wifi.change_device_limit(db, w.user, bad, actor=w.admin)
        assert _field_codes(err.value) == {"device_limit": "invalid_device_limit"}
    assert state(db) == before


def test_a_limit_changed_while_deactivated_applies_on_activation(db, world):
    w = world
    account = live(db, w, device_limit=2)
    wifi.deactivate_wifi(db, w.user, actor=w.admin)
    wifi.change_device_limit(db, w.user, 5, actor=w.admin)
    assert radcheck(db, account.username) == {}  # still refused
    wifi.activate_wifi(db, w.user, actor=w.admin)
    assert radcheck(db, account.username)["Simultaneous-Use"] == (":=", "5")


# --- connected devices ------------------------------------------------------------------------------


def test_a_stale_session_can_be_cleared_while_the_user_is_busy(db, world):
    """A stale session may be what blocks the user: clearing it is not held up by a job on the user."""
    w = world
    account = live(db, w)
    stale = open_session(db, account.username, minutes_ago=600)
    w.user.busy_owner, w.user.busy_until = "bulk:7", utcnow() + timedelta(minutes=5)
    db.flush()
    wifi.clear_session(db, w.user, stale.radacctid, actor=w.admin)
    assert wifi.connected_devices(db, w.user) == []


def test_clearing_a_stale_session_frees_a_place(db, world):
    w = world
    account = live(db, w)
    other_user = make_user(db, w.occupier)
    other = live(db, w, other_user)
    old = open_session(db, account.username, minutes_ago=90, mac="AA-00-00-00-00-01")
    new = open_session(db, account.username, minutes_ago=3, mac="AA-00-00-00-00-02")
    closed = open_session(db, account.username, minutes_ago=300, mac="AA-00-00-00-00-03")
    closed.acctstoptime = utcnow() - timedelta(minutes=200)
    theirs = open_session(db, other.username, minutes_ago=10, mac="BB-00-00-00-00-01")
    db.flush()

    assert [r.radacctid for r in wifi.connected_devices(db, w.user)] == [new.radacctid, old.radacctid]

    wifi.clear_session(db, w.user, old.radacctid, actor=w.admin)
    assert [r.radacctid for r in wifi.connected_devices(db, w.user)] == [new.radacctid]
    db.refresh(old)
    assert old.acctstoptime is not None and old.acctterminatecause == "Admin-Reset"
    [event] = events(db, "wifi.session_cleared")
    assert event.target_id == str(w.user.id)

    before = state(db)
    for foreign in (theirs.radacctid, closed.radacctid, old.radacctid, 10**9):
        with pytest.raises(NotFound):
            wifi.clear_session(db, w.user, foreign, actor=w.admin)
    assert state(db) == before
    assert [r.radacctid for r in wifi.connected_devices(db, other_user)] == [theirs.radacctid]


# --- the user's own lifecycle ---------------------------------------------------------------------


def test_deactivating_the_user_suspends_wifi_and_reactivating_brings_it_back(db, world):
    w = world
    account = live(db, w, device_limit=3)
    first = password_of(wifi_mails(db, w.user.id)[0])

    users.deactivate_user(db, w.user, actor=w.admin)
    assert account.status == WifiStatus.DEACTIVATED
    assert radcheck(db, account.username) == {} and groups(db, account.username) == []

    users.reactivate_user(db, w.user, actor=w.admin)
    mail = wifi_mails(db, w.user.id)[-1]
    assert mail.context["reason"] == "activated"
    second = password_of(mail)
    assert second != first
    assert radcheck(db, account.username) == {
        "NT-Password": (":=", nt_hash(second)),
        "Simultaneous-Use": (":=", "3"),
    }
    assert groups(db, account.username) == [(sync.home_group(w.par), 1), (sync.guest_group(w.lon), 2)]
    assert account.status == WifiStatus.PROVISIONING and fresh_user(db, w.user).is_busy
    assert wifi.confirm_provisioning(db, account.id)
    db.refresh(account)
    assert account.status == WifiStatus.ACTIVE and not fresh_user(db, w.user).is_busy


def test_wifi_switched_off_before_the_user_was_deactivated_stays_off(db, world):
    w = world
    account = live(db, w)
    wifi.deactivate_wifi(db, w.user, actor=w.admin)
    users.deactivate_user(db, w.user, actor=w.admin)
    users.reactivate_user(db, w.user, actor=w.admin)
    assert account.status == WifiStatus.DEACTIVATED and radcheck(db, account.username) == {}
    assert len(wifi_mails(db, w.user.id)) == 1


def test_wifi_switched_off_while_the_user_was_deactivated_stays_off(db, world):
    w = world
    account = live(db, w)
    users.deactivate_user(db, w.user, actor=w.admin)
    wifi.deactivate_wifi(db, w.user, actor=w.admin)  # the admin also turns Wi-Fi off, explicitly
    users.reactivate_user(db, w.user, actor=w.admin)
    assert account.status == WifiStatus.DEACTIVATED and radcheck(db, account.username) == {}
    assert len(wifi_mails(db, w.user.id)) == 1  # no new password was sent


def test_activating_wifi_of_a_deactivated_user_is_refused(db, world):
    live(db, world)
    users.deactivate_user(db, world.user, actor=world.admin)
    before = state(db)
    with pytest.raises(InvalidState):
        wifi.activate_wifi(db, world.user, actor=world.admin)
    assert state(db) == before


def test_an_email_change_renames_the_wifi_username_everywhere(db, world):
    w = world
    account = live(db, w)
    old = account.username
    password = password_of(wifi_mails(db, w.user.id)[0])
    open_session(db, old)
    db.add(RadPostAuth(username=old, reply="Access-Accept", callingstationid="AA-BB-CC-00-00-01"))
    db.add(RadReply(username=old, attribute="Session-Timeout", op=":=", value="3600"))
    db.flush()
    before = radius_rows(db, old)

    users.change_email(db, w.user, "Zoe.Dupont@Tenant.example", actor=w.admin)
    assert account.username == "zoe.dupont@tenant.example"
    assert radius_rows(db, old) == 0
    assert radius_rows(db, account.username) == before
    for table in (RadCheck, RadReply, RadUserGroup, RadAcct, RadPostAuth):
        assert db.scalar(select(func.count()).select_from(table).where(table.username == account.username))
    # the same password keeps working under the new username: no new mail needed
    assert radcheck(db, account.username)["NT-Password"] == (":=", nt_hash(password))
    assert len(wifi_mails(db, w.user.id)) == 1


def test_an_email_change_in_letter_case_only_keeps_the_username(db, world):
    account = live(db, world)
    users.change_email(db, world.user, "ZOE.MARTIN@tenant.example", actor=world.admin)
    assert account.username == "zoe.martin@tenant.example"
    assert radcheck(db, account.username)


def test_deleting_the_user_removes_the_account_and_every_radius_row(db, world):
    w = world
    account = live(db, w)
    username, account_id = account.username, account.id
    bystander = make_user(db, w.occupier)
    theirs = live(db, w, bystander)
    for name in (username, theirs.username):
        open_session(db, name)
        db.add(RadPostAuth(username=name, reply="Access-Accept"))
        db.add(RadReply(username=name, attribute="Session-Timeout", op=":=", value="3600"))
    db.flush()
    kept = radius_rows(db, theirs.username)

    users.delete_user(db, w.user, actor=w.admin)
    db.flush()
    assert db.get(WifiAccount, account_id) is None
    assert radius_rows(db, username) == 0
    assert radius_rows(db, theirs.username) == kept


def test_the_same_email_at_another_operator_gets_a_clear_error(db, world):
    """RADIUS has one namespace of usernames for every operator of this instance."""
    live(db, world)
    other = make_operator(db)
    site = make_site(db, other, code="AMS01", nas=["ap-ams01"])
    namesake = make_user(db, make_occupier(db, other, sites_=[site]), email="zoe.martin@tenant.example")
    before = state(db)
    with pytest.raises(OccupantError) as err:
        wifi.create_wifi_account(db, namesake, homesite_id=site.id, actor=admin_actor(other))
    assert (err.value.code, err.value.status) == ("wifi_username_taken", 409)
    assert state(db) == before


def test_an_email_change_onto_another_operators_wifi_username_is_refused(db, world):
    live(db, world)
    other = make_operator(db)
    site = make_site(db, other, code="AMS01", nas=["ap-ams01"])
    elsewhere = make_user(db, make_occupier(db, other, sites_=[site]), email="zoe.b@else.example")
    account = wifi.create_wifi_account(db, elsewhere, homesite_id=site.id, actor=admin_actor(other))
    wifi.confirm_provisioning(db, account.id)
    db.expire(elsewhere)
    with pytest.raises(OccupantError) as err:
        users.change_email(db, elsewhere, "Zoe.Martin@tenant.example", actor=admin_actor(other))
    assert err.value.code == "wifi_username_taken"


# --- audit ----------------------------------------------------------------------------------------


def test_every_wifi_action_is_audited_without_secrets_or_personal_values(db, world):
    w = world
    account = live(db, w, device_limit=2)
    wifi.reset_wifi_password(db, w.user, actor=w.admin)
    wifi.change_homesite(db, w.user, w.lon.id, actor=w.admin)
    wifi.change_device_limit(db, w.user, 3, actor=w.admin)
    wifi.clear_session(db, w.user, open_session(db, account.username).radacctid, actor=w.admin)
    wifi.deactivate_wifi(db, w.user, actor=w.admin)
    wifi.activate_wifi(db, w.user, actor=w.admin)
    db.flush()

    recorded = list(
        db.scalars(select(AuditEvent).where(AuditEvent.action.like("wifi.%")).order_by(AuditEvent.id))
    )
    assert [e.action for e in recorded] == [
        "wifi.created",
        "wifi.password_reset",
        "wifi.homesite_changed",
        "wifi.device_limit_changed",
        "wifi.session_cleared",
        "wifi.deactivated",
        "wifi.activated",
    ]
    hashes = {nt_hash(password_of(m)) for m in wifi_mails(db, w.user.id)}
    passwords = {password_of(m) for m in wifi_mails(db, w.user.id)}
    assert len(passwords) == 4
    for event in recorded:
        assert event.target_type == "occupier_user" and event.target_id == str(w.user.id)
        assert event.occupier_id == w.occupier.id and event.actor_type == "staff"
        text = json.dumps([event.fields, event.changes]).lower()
        for secret in (*passwords, *hashes, "zoe", "tenant.example"):
            assert secret.lower() not in text
    assert recorded[0].changes == {
        "wifi_status": [None, "PROVISIONING"],
        "wifi_homesite": [None, "PAR01"],
        "wifi_device_limit": [None, 2],
    }


# --- the worker ---------------------------------------------------------------------------------


def test_the_confirmation_is_queued_after_commit_and_the_sweep_recovers_a_lost_one(committed):
    from occupant.kit.db import transaction
    from occupant.worker import tasks
    from occupant.worker.queue import huey

    huey.flush()
    with transaction(committed) as s:
        operator = make_operator(s)
        site = make_site(s, operator, nas=["ap-1"])
        occupier = make_occupier(s, operator, sites_=[site])
        people = [make_user(s, occupier) for _ in range(3)]
        accounts = [
            wifi.create_wifi_account(s, p, homesite_id=site.id, actor=admin_actor(operator)) for p in people
        ]
        s.flush()
        ids = sorted(a.id for a in accounts)
        user_ids = [p.id for p in people]
        assert huey.pending_count() == 0  # nothing is queued before the commit
    queued = sorted(t.args[0] for t in huey.pending() if t.name.endswith("confirm_wifi"))
    assert queued == ids

    # the worker runs one message; the other two are lost (a Redis flush, a killed consumer)
    tasks.confirm_wifi.call_local(ids[0])
    huey.flush()
    with committed() as s:
        status = {i: st for i, st in s.execute(select(WifiAccount.id, WifiAccount.status))}
        assert status == {ids[0]: "ACTIVE", ids[1]: "PROVISIONING", ids[2]: "PROVISIONING"}

    tasks.sweep.call_local()
    with committed() as s:
        assert set(s.scalars(select(WifiAccount.status))) == {"ACTIVE"}
        assert all(not s.get_one(OccupierUser, uid).is_busy for uid in user_ids)
        assert s.scalars(select(OccupierUser.status)).all() == [UserStatus.ACTIVE] * 3


def test_the_confirmation_waits_for_the_commit_when_more_users_follow_in_the_transaction(committed):
    """A bulk create: Wi-Fi for one user, then the next user is created (a savepoint flush) before commit.

    A confirmation that runs before the commit finds no account, succeeds without a retry, and leaves the
    user busy until the next sweep.
    """
    from occupant.kit.db import transaction
    from occupant.worker.queue import huey

    huey.flush()
    with transaction(committed) as s:
        operator = make_operator(s)
        site = make_site(s, operator, nas=["ap-1"])
        occupier = make_occupier(s, operator, sites_=[site])
        first = make_user(s, occupier)
        wifi.create_wifi_account(s, first, homesite_id=site.id, actor=admin_actor(operator))
        make_user(s, occupier)  # the next row of the bulk job
        assert huey.pending_count() == 0


def test_a_rolled_back_create_queues_nothing(db, world):
    from occupant.worker.queue import huey

    huey.flush()
    create(db, world)
    db.rollback()
    assert huey.pending_count() == 0
