"""Deleting, deactivating and reactivating many users at once (``users.bulk_lifecycle``), as the bulk engine
does it chunk by chunk, and matching a deactivation file's rows to users (seed 004).

Each user must end up exactly as the single action (``users.service``) leaves them — their rows, RADIUS's
rows, app sessions and links, mails, audit events — or fail alone with its error, with a number of
statements that does not grow with the number of users.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from occupant.accounts import service as accounts
from occupant.accounts.models import AccountStatus, AccountToken, App, AppAccount, AppSession
from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.groups import service as groups
from occupant.groups.models import AccessGroup, group_members
from occupant.kit.clock import utcnow
from occupant.kit.db import working_for
from occupant.kit.errors import NotAuthenticated, OccupantError, PermissionDenied
from occupant.kit.throttle import Throttle
from occupant.notify.models import OutboxMessage
from occupant.occupiers import service as occupiers
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.radius.models import RadAcct, RadCheck, RadPostAuth, RadReply, RadUserGroup
from occupant.sites.models import Site
from occupant.users import bulk_lifecycle as bulk
from occupant.users import queries
from occupant.users import service as users
from occupant.users.bulk_lifecycle import DeactivateRow, Outcome, UserResult
from occupant.users.models import OccupierUser, UserStatus
from occupant.wifi.bulk import confirm_provisioning_many
from occupant.wifi.models import WifiAccount, WifiStatus
from occupant.wifi.passwords import nt_hash
from tests.factories import (
    admin_actor,
    make_account,
    make_occupier,
    make_operator,
    make_site,
    make_user,
    site_manager_actor,
)
from tests.wifi.support import give_wifi, mailed_password, open_session, password_mails

PASSWORD = "correct horse battery staple"


@dataclass
class World:
    operator: Operator
    lon: Site
    par: Site
    studio: Occupier  # LON01 and PAR01
    bureau: Occupier  # PAR01 only
    door: AccessGroup
    floor: AccessGroup
    admin: Actor


@pytest.fixture
def world(db: Session) -> World:
    operator = make_operator(db, name="Atelier Workspaces")
    lon = make_site(db, operator, code="LON01", name="London Bridge", nas=["ap-lon01"])
    par = make_site(db, operator, code="PAR01", name="Paris Opéra", country="FR", nas=["ap-par01"])
    studio = make_occupier(db, operator, sites_=[lon, par], primary_site_id=lon.id, name="Studio")
    bureau = make_occupier(db, operator, sites_=[par], name="Bureau")
    admin = admin_actor(operator)
    door = groups.create_group(db, actor=admin, name="Door A", occupier_id=studio.id)
    floor = groups.create_group(db, actor=admin, name="Floor 3", site_id=lon.id)
    return World(operator, lon, par, studio, bureau, door, floor, admin)


def equipped(db: Session, w: World, occupier: Occupier | None = None, **fields: Any) -> OccupierUser:
    """A user with everything a delete or deactivation touches: groups, a live Wi-Fi account with a session
    and sign-in history in RADIUS, an app account with a password, a signed-in session and a pending
    password-reset link, and mails in the outbox."""
    occupier = occupier or w.studio
    group_ids = [w.door.id, w.floor.id] if occupier is w.studio else []
    user = make_user(db, occupier, language="fr", group_ids=group_ids, **fields)
    give_wifi(db, user)
    open_session(db, user.email_key, mac=f"aa-bb-cc-00-00-{user.id % 100:02d}", nas_identifier="ap-lon01")
    db.add(RadPostAuth(username=user.email_key, reply="Access-Accept", callingstationid="aa-bb"))
    make_account(db, user, portal=True, mobile_app=True, password=PASSWORD)
    sign_in(db, user.email)
    accounts.send_password_reset(db, user, actor=w.admin)
    db.flush()
    return user


def sign_in(db: Session, email: str, app: App = App.PORTAL) -> accounts.SignIn:
    return accounts.sign_in(db, email=email, password=PASSWORD, app=app, address="198.51.100.20")


def codes(results: Sequence[UserResult]) -> list[str | None]:
    return [None if r.error is None else r.error.code for r in results]


def events(db: Session, user_id: int, prefix: str = "") -> list[AuditEvent]:
    stmt = select(AuditEvent).where(
        AuditEvent.target_id == str(user_id), AuditEvent.action.startswith(prefix)
    )
    return list(db.scalars(stmt.order_by(AuditEvent.id)))


def event_view(e: AuditEvent) -> dict[str, Any]:
    return {
        "action": e.action,
        "operator": e.operator_id,
        "actor": (e.actor_type, e.actor_id),
        "target_type": e.target_type,
        "occupier": e.occupier_id,
        "fields": e.fields,
        "changes": e.changes,
        "outcome": e.outcome,
        "request_id": e.request_id,
    }


def radius_rows(db: Session, username: str) -> dict[str, list[tuple[Any, ...]]]:
    """What RADIUS has for ``username``, table by table (empty: refused, and no history)."""
    db.flush()
    found: dict[str, list[tuple[Any, ...]]] = {}
    for model, columns in (
        (RadCheck, (RadCheck.attribute, RadCheck.op)),
        (RadReply, (RadReply.attribute,)),
        (RadUserGroup, (RadUserGroup.groupname, RadUserGroup.priority)),
        (RadAcct, (RadAcct.nasidentifier,)),
        (RadPostAuth, (RadPostAuth.reply,)),
    ):
        rows = db.execute(select(*columns).where(model.username == username).order_by(*columns)).all()
        found[model.__tablename__] = [tuple(row) for row in rows]
    return found


def app_view(db: Session, user: OccupierUser) -> dict[str, Any]:
    db.flush()
    db.expire_all()
    account = db.scalar(select(AppAccount).where(AppAccount.user_id == user.id))
    if account is None:
        return {}
    return {
        "status": account.status,
        "suspended_with_user": account.suspended_with_user,
        "open_sessions": db.scalar(
            select(func.count())
            .select_from(AppSession)
            .where(AppSession.account_id == account.id, AppSession.revoked_at.is_(None))
        ),
        "sessions": db.scalar(
            select(func.count()).select_from(AppSession).where(AppSession.account_id == account.id)
        ),
        "pending_links": db.scalar(
            select(func.count())
            .select_from(AccountToken)
            .where(
                AccountToken.account_id == account.id,
                AccountToken.used_at.is_(None),
                AccountToken.revoked_at.is_(None),
            )
        ),
    }


def wifi_view(db: Session, user: OccupierUser) -> dict[str, Any]:
    db.flush()
    account = db.scalar(select(WifiAccount).where(WifiAccount.user_id == user.id))
    if account is None:
        return {}
    db.refresh(account)
    return {
        "status": account.status,
        "has_hash": account.nt_hash is not None,
        "suspended_with_user": account.suspended_with_user,
        "provisioned": account.provisioned_at is not None,
        "radius": {
            k: v for k, v in radius_rows(db, account.username).items() if k in ("radcheck", "radusergroup")
        },
    }


def user_view(db: Session, user: OccupierUser) -> dict[str, Any]:
    db.flush()
    db.refresh(user)
    owner = user.busy_owner
    account_id = db.scalar(select(WifiAccount.id).where(WifiAccount.user_id == user.id))
    return {
        "status": user.status,
        "busy": None if owner is None else owner.replace(str(account_id), "<own account>"),
        "groups": sorted(groups.user_group_ids(db, user.id)),
    }


def mail_view(db: Session, user_id: int) -> list[tuple[Any, ...]]:
    db.flush()
    rows = db.execute(
        select(OutboxMessage.template, OutboxMessage.status, OutboxMessage.language)
        .where(OutboxMessage.occupier_user_id == user_id)
        .order_by(OutboxMessage.id)
    ).all()
    return [tuple(row) for row in rows]


# --- delete -------------------------------------------------------------------------------------------


def traces(db: Session, user_id: int, username: str) -> dict[str, Any]:
    """Everything of the user's that a delete must remove."""
    db.flush()
    return {
        "user": db.get(OccupierUser, user_id) is not None,
        "wifi": db.scalar(select(WifiAccount.id).where(WifiAccount.user_id == user_id)),
        "radius": {k: v for k, v in radius_rows(db, username).items() if v},
        "app": db.scalar(select(AppAccount.id).where(AppAccount.user_id == user_id)),
        "groups": db.execute(select(group_members).where(group_members.c.user_id == user_id)).all(),
        "mails": mail_view(db, user_id),
        "throttles": db.scalars(select(Throttle.key).where(Throttle.key.contains(username))).all(),
    }


@pytest.mark.parametrize("index_purge", ["now", "deferred"])
def test_delete_many_leaves_what_delete_user_leaves(db, world, index_purge):
    w = world
    single, many, other = (equipped(db, w) for _ in range(3))
    one_from_bureau = equipped(db, w, w.bureau)
    keep = equipped(db, w)
    with pytest.raises(NotAuthenticated):
        accounts.sign_in(db, email=many.email, password="wrong", app=App.PORTAL, address="198.51.100.21")
    doomed = (single, many, other, one_from_bureau)
    before = {u.id: traces(db, u.id, u.email_key) for u in (*doomed, keep)}
    every_table_but_radreply = {"radcheck", "radusergroup", "radacct", "radpostauth"}
    assert all(set(before[u.id]["radius"]) == every_table_but_radreply for u in doomed)
    assert before[many.id]["throttles"] == [f"app:{many.email_key}"]
    mails_before = sum(len(before[u.id]["mails"]) for u in doomed)
    names = {u.id: u.email_key for u in doomed}

    users.delete_user(db, single, actor=w.admin)
    results = bulk.delete_users(db, [many, other, one_from_bureau], actor=w.admin, index_purge=index_purge)

    assert results == [UserResult(u, Outcome.DELETED) for u in (many.id, other.id, one_from_bureau.id)]
    empty = {
        "user": False,
        "wifi": None,
        "radius": {},
        "app": None,
        "groups": [],
        "mails": [],
        "throttles": [],
    }
    for user_id, username in names.items():
        assert traces(db, user_id, username) == empty, user_id
    assert traces(db, keep.id, keep.email_key) == before[keep.id]  # a bystander keeps everything
    # the mail: cancelled and wiped, the same way for both paths
    wiped = db.execute(
        select(OutboxMessage.template, OutboxMessage.status, OutboxMessage.to_address, OutboxMessage.context)
        .where(OutboxMessage.occupier_user_id.is_(None))
        .order_by(OutboxMessage.id)
    ).all()
    assert len(wiped) == mails_before
    assert {(status, to, str(context)) for _, status, to, context in wiped} == {("CANCELLED", "", "{}")}
    # the audit trail: one event per user, the same as the single action's, only the opaque id
    [single_event] = events(db, single.id)[-1:]
    for user in (many, other, one_from_bureau):
        deleted = events(db, user.id)[-1]
        assert event_view(deleted) == {**event_view(single_event), "occupier": user.occupier_id}
        assert deleted.action == "user.deleted" and deleted.fields == [] and deleted.changes == {}
    # sign-in and sessions: gone
    with pytest.raises(NotAuthenticated):
        sign_in(db, many.email)
    if db.get_bind().dialect.name == "sqlite" and index_purge == "deferred":
        bulk.purge_search_index(db)
    assert_search_index_exact(db, w, gone=[many, other], kept=[keep])


def assert_search_index_exact(
    db: Session, w: World, *, gone: list[OccupierUser], kept: list[OccupierUser]
) -> None:
    for user in gone:
        assert queries.list_users(db, w.admin, q=user.email_key).items == []
    for user in kept:
        assert [u.id for u in queries.list_users(db, w.admin, q=user.email_key).items] == [user.id]
    if db.get_bind().dialect.name == "sqlite":
        db.execute(text("INSERT INTO occupier_users_fts(occupier_users_fts) VALUES ('integrity-check')"))
        setting = db.scalar(text("SELECT v FROM occupier_users_fts_config WHERE k = 'secure-delete'"))
        assert setting == 1  # a deferred delete switches it off for its own statement only


def test_delete_refuses_each_user_alone_with_the_single_actions_error(db, world):
    w = world
    ok = make_user(db, w.studio)
    busy = make_user(db, w.studio)
    busy.busy_owner, busy.busy_until = "wifi:99", utcnow() + timedelta(minutes=5)
    held_by_this_job = make_user(db, w.studio)
    held_by_this_job.busy_owner, held_by_this_job.busy_until = "bulk:7", utcnow() + timedelta(minutes=5)
    stranger = make_user(db, make_occupier(db, make_operator(db)))
    closing = make_occupier(db, w.operator, sites_=[w.par])
    in_closing = make_user(db, closing)
    occupiers.start_decommission(db, closing, actor=w.admin)
    admin_user = make_user(db, w.studio)
    make_account(db, admin_user, role="admin", password=PASSWORD)
    colleague_admin = make_user(db, w.studio)
    make_account(db, colleague_admin, role="admin")
    me_account = accounts.account_of(db, admin_user)
    assert me_account is not None
    me = accounts.actor_for_account(me_account, admin_user)
    db.flush()

    with working_for(db, "bulk:7"):
        results = bulk.delete_users(
            db, [ok, busy, held_by_this_job, stranger, in_closing, admin_user, colleague_admin], actor=me
        )
    assert codes(results) == [
        None,
        "action_in_progress",
        None,
        "not_found",
        "not_found",  # another occupier's user is outside an occupier admin's scope
        "permission_denied",  # "You cannot delete yourself."
        "cannot_delete_admin",
    ]
    assert results[5].error is not None and results[5].error.message == "You cannot delete yourself."
    for user in (busy, stranger, in_closing, admin_user, colleague_admin):
        assert db.get(OccupierUser, user.id) is user  # untouched
    assert not events(db, busy.id, "user.deleted")
    # operator staff: the admin can go, the decommissioning occupier's user cannot
    results = bulk.delete_users(db, [colleague_admin, in_closing], actor=w.admin)
    assert codes(results) == [None, "occupier_decommissioned"]
    with pytest.raises(PermissionDenied):  # nothing written at all
        bulk.delete_users(db, [ok], actor=Actor(ActorKind.STAFF, 1, w.operator.id, Role.OCCUPIER_USER))


def test_a_site_manager_deletes_only_at_their_sites(db, world):
    w = world
    at_paris = make_user(db, w.bureau)
    at_london = make_user(db, w.studio)
    paris_only = make_occupier(db, w.operator, sites_=[make_site(db, w.operator, code="BER01")])
    elsewhere = make_user(db, paris_only)
    manager = site_manager_actor(w.operator, [w.par.id])
    results = bulk.delete_users(db, [at_paris, at_london, elsewhere], actor=manager)
    assert codes(results) == [None, None, "not_found"]  # Studio uses Paris too


# --- deactivate ---------------------------------------------------------------------------------------


def test_deactivate_many_gives_what_deactivate_user_gives(db, world):
    w = world
    single, many = equipped(db, w), equipped(db, w)
    awaiting = make_user(db, w.studio)
    make_account(db, awaiting)  # AWAITING_SIGN_IN, with a pending invitation link
    awaiting_single = make_user(db, w.studio)
    make_account(db, awaiting_single)
    plain, plain_single = make_user(db, w.bureau), make_user(db, w.bureau)
    phone = sign_in(db, many.email, App.MOBILE_APP)
    sign_in(db, single.email, App.MOBILE_APP)

    for user in (single, awaiting_single, plain_single):
        users.deactivate_user(db, user, actor=w.admin)
    results = bulk.deactivate_users(db, [many, awaiting, plain], actor=w.admin)

    assert results == [UserResult(u.id, Outcome.DEACTIVATED) for u in (many, awaiting, plain)]
    for bulk_user, single_user in ((many, single), (awaiting, awaiting_single), (plain, plain_single)):
        assert user_view(db, bulk_user) == user_view(db, single_user)
        assert wifi_view(db, bulk_user) == wifi_view(db, single_user)
        assert app_view(db, bulk_user) == app_view(db, single_user)
        assert mail_view(db, bulk_user.id) == mail_view(db, single_user.id)
        assert [event_view(e) for e in events(db, bulk_user.id, "user.")] == [
            {**event_view(e), "occupier": bulk_user.occupier_id} for e in events(db, single_user.id, "user.")
        ]
    assert user_view(db, many)["status"] == UserStatus.DEACTIVATED
    assert wifi_view(db, many) == {
        "status": WifiStatus.DEACTIVATED,
        "has_hash": False,
        "suspended_with_user": True,
        "provisioned": True,
        "radius": {"radcheck": [], "radusergroup": []},  # RADIUS refuses from the next request
    }
    assert app_view(db, many) == {
        "status": AccountStatus.DEACTIVATED,
        "suspended_with_user": True,
        "open_sessions": 0,
        "sessions": 2,
        "pending_links": 0,
    }
    assert app_view(db, awaiting)["status"] == AccountStatus.DEACTIVATED
    assert events(db, many.id, "user.deactivated")[-1].changes == {"status": ["ACTIVE", "DEACTIVATED"]}
    assert accounts.resolve_session(db, phone.token, App.MOBILE_APP) is None
    with pytest.raises(NotAuthenticated):
        sign_in(db, many.email)
    # the accounting history stays (the user is kept), and the groups too
    assert radius_rows(db, many.email_key)["radacct"] == [("ap-lon01",)]
    assert user_view(db, many)["groups"] == sorted([w.door.id, w.floor.id])


def test_deactivating_twice_is_the_single_actions_no_op(db, world):
    w = world
    user = equipped(db, w)
    [first] = bulk.deactivate_users(db, [user], actor=w.admin)
    version = user.version_id
    [again] = bulk.deactivate_users(db, [user], actor=w.admin)
    assert (first.outcome, again.outcome) == (Outcome.DEACTIVATED, Outcome.UNCHANGED)
    assert again.ok and user.version_id == version
    assert len(events(db, user.id, "user.deactivated")) == 1
    assert user_view(db, user)["groups"]  # nothing asked of the groups: kept


def test_remove_from_groups_takes_the_users_out_as_set_user_groups_does(db, world):
    w = world
    single, many = make_user(db, w.studio, group_ids=[w.door.id, w.floor.id]), None
    many = make_user(db, w.studio, group_ids=[w.door.id, w.floor.id])
    already = make_user(db, w.studio, group_ids=[w.door.id])
    users.deactivate_user(db, already, actor=w.admin)
    already_without = make_user(db, w.studio)
    users.deactivate_user(db, already_without, actor=w.admin)
    without_groups = make_user(db, w.bureau)

    users.deactivate_user(db, single, actor=w.admin)
    groups.set_user_groups(db, single, [], actor=w.admin)
    results = bulk.deactivate_users(
        db, [many, already, already_without, without_groups], remove_from_groups=True, actor=w.admin
    )

    assert [r.outcome for r in results] == [
        Outcome.DEACTIVATED,
        Outcome.GROUPS_REMOVED,
        Outcome.UNCHANGED,
        Outcome.DEACTIVATED,
    ]
    assert [event_view(e) for e in events(db, many.id, "user.")] == [
        event_view(e) for e in events(db, single.id, "user.")
    ]
    assert [e.action for e in events(db, many.id, "user.")] == [
        "user.created",
        "user.deactivated",
        "user.groups_changed",
    ]
    assert events(db, many.id)[-1].changes == {"added": [], "removed": sorted([w.door.id, w.floor.id])}
    assert events(db, already.id)[-1].changes == {"added": [], "removed": [w.door.id]}
    assert [e.action for e in events(db, already_without.id, "user.")] == ["user.created", "user.deactivated"]
    assert [e.action for e in events(db, without_groups.id, "user.")] == ["user.created", "user.deactivated"]
    for user in (many, already, without_groups):
        assert user_view(db, user)["groups"] == []
    assert db.execute(select(group_members)).all() == []


def test_deactivate_refuses_each_user_alone(db, world):
    w = world
    ok = equipped(db, w)
    busy = equipped(db, w)
    busy.busy_owner, busy.busy_until = "bulk:8", utcnow() + timedelta(minutes=5)
    stranger = make_user(db, make_occupier(db, make_operator(db)))
    closing = make_occupier(db, w.operator, sites_=[w.par])
    in_closing = make_user(db, closing)
    occupiers.start_decommission(db, closing, actor=w.admin)
    before = {u.id: (wifi_view(db, u), app_view(db, u)) for u in (busy,)}

    results = bulk.deactivate_users(
        db, [ok, busy, stranger, in_closing, ok], remove_from_groups=True, actor=w.admin
    )

    assert codes(results) == [None, "action_in_progress", "not_found", "occupier_decommissioned", None]
    assert results[0] == results[4]  # listed twice: handled once
    assert len(events(db, ok.id, "user.deactivated")) == 1
    for user in (busy, stranger, in_closing):
        assert user_view(db, user)["status"] == UserStatus.ACTIVE
    assert (wifi_view(db, busy), app_view(db, busy)) == before[busy.id]
    assert user_view(db, busy)["groups"]


def test_a_wifi_hold_that_ran_out_ends_with_the_deactivation(db, world):
    """As ``on_user_deactivated``: an account still PROVISIONING whose hold expired (a crashed worker)."""
    w = world
    single, many = make_user(db, w.studio), make_user(db, w.studio)
    for user in (single, many):
        give_wifi(db, user, live=False)
        user.busy_until = utcnow() - timedelta(seconds=1)
    db.flush()
    users.deactivate_user(db, single, actor=w.admin)
    bulk.deactivate_users(db, [many], actor=w.admin)
    assert (
        user_view(db, many) == user_view(db, single) == {"status": "DEACTIVATED", "busy": None, "groups": []}
    )
    assert many.busy_until is None


# --- reactivate ---------------------------------------------------------------------------------------


def test_reactivate_many_gives_what_reactivate_user_gives(db, world):
    w = world
    single, many = equipped(db, w), equipped(db, w)
    awaiting, awaiting_single = make_user(db, w.studio), make_user(db, w.studio)
    for user in (awaiting, awaiting_single):
        make_account(db, user)
    wifi_off_alone, wifi_off_alone_single = equipped(db, w, w.bureau), equipped(db, w, w.bureau)
    from occupant.wifi import service as wifi

    for user in (wifi_off_alone, wifi_off_alone_single):
        wifi.deactivate_wifi(db, user, actor=w.admin)  # off on its own: stays off when the user returns
    everyone = [single, many, awaiting, awaiting_single, wifi_off_alone, wifi_off_alone_single]
    bulk.deactivate_users(db, everyone, actor=w.admin)
    mails_before = {u.id: len(password_mails(db, u.id)) for u in everyone}

    for user in (single, awaiting_single, wifi_off_alone_single):
        users.reactivate_user(db, user, actor=w.admin)
    results = bulk.reactivate_users(db, [many, awaiting, wifi_off_alone], actor=w.admin)

    assert results == [UserResult(u.id, Outcome.REACTIVATED) for u in (many, awaiting, wifi_off_alone)]
    pairs = ((many, single), (awaiting, awaiting_single), (wifi_off_alone, wifi_off_alone_single))
    for bulk_user, single_user in pairs:
        assert user_view(db, bulk_user) == user_view(db, single_user)
        assert app_view(db, bulk_user) == app_view(db, single_user)
        assert mail_view(db, bulk_user.id) == mail_view(db, single_user.id)
        assert [event_view(e) for e in events(db, bulk_user.id, "user.")] == [
            {**event_view(e), "occupier": bulk_user.occupier_id} for e in events(db, single_user.id, "user.")
        ]
        single_wifi, bulk_wifi = wifi_view(db, single_user), wifi_view(db, bulk_user)
        assert {k: v for k, v in bulk_wifi.items() if k != "radius"} == {
            k: v for k, v in single_wifi.items() if k != "radius"
        }
    # Wi-Fi: a new password by email, PROVISIONING (the user busy) until RADIUS has it, the same rows
    assert user_view(db, many) == {
        "status": "ACTIVE",
        "busy": "wifi:<own account>",
        "groups": user_view(db, single)["groups"],
    }
    account = db.scalar(select(WifiAccount).where(WifiAccount.user_id == many.id))
    assert (
        account is not None and account.status == WifiStatus.PROVISIONING and not account.suspended_with_user
    )
    [*_, mail] = password_mails(db, many.id)
    [*_, single_mail] = password_mails(db, single.id)
    assert len(password_mails(db, many.id)) == mails_before[many.id] + 1
    assert mail.to_address == many.email and mail.language == "fr"
    assert mail.context == {**single_mail.context, "first_name": many.first_name, "username": many.email_key}
    assert mail.context["reason"] == "activated"
    assert nt_hash(mailed_password(mail)) == account.nt_hash
    assert radius_rows(db, many.email_key)["radcheck"] == radius_rows(db, single.email_key)["radcheck"]
    assert (
        radius_rows(db, many.email_key)["radusergroup"] == radius_rows(db, single.email_key)["radusergroup"]
    )
    rows = db.execute(select(RadCheck.attribute, RadCheck.value).where(RadCheck.username == many.email_key))
    checks = {attribute: value for attribute, value in rows}
    assert checks == {"NT-Password": account.nt_hash, "Simultaneous-Use": str(account.device_limit)}
    assert len(password_mails(db, wifi_off_alone.id)) == mails_before[wifi_off_alone.id]  # stays off
    assert wifi_view(db, wifi_off_alone)["status"] == WifiStatus.DEACTIVATED
    # the app account returns: ACTIVE with its password, AWAITING_SIGN_IN without
    assert app_view(db, many)["status"] == AccountStatus.ACTIVE
    assert app_view(db, awaiting)["status"] == AccountStatus.AWAITING_SIGN_IN
    assert sign_in(db, many.email).user.id == many.id
    # the worker confirms: ACTIVE, the user free again
    outcome = confirm_provisioning_many(db, [account.id])
    assert outcome.confirmed == [account.id]
    assert user_view(db, many)["busy"] is None


def test_reactivate_refuses_each_user_alone(db, world):
    w = world
    deactivated = make_user(db, w.studio)
    users.deactivate_user(db, deactivated, actor=w.admin)
    active = make_user(db, w.studio)
    busy = make_user(db, w.studio)
    users.deactivate_user(db, busy, actor=w.admin)
    busy.busy_owner, busy.busy_until = "bulk:9", utcnow() + timedelta(minutes=5)
    stranger = make_user(db, make_occupier(db, make_operator(db)))
    results = bulk.reactivate_users(db, [deactivated, active, busy, stranger], actor=w.admin)
    assert codes(results) == [None, "invalid_state", "action_in_progress", "not_found"]
    assert (
        results[1].error is not None
        and results[1].error.message == "Only a deactivated user can be reactivated."
    )
    assert user_view(db, busy)["status"] == UserStatus.DEACTIVATED
    assert bulk.reactivate_users(db, [], actor=w.admin) == []


# --- statements ---------------------------------------------------------------------------------------


def _statements(db: Session, run: Callable[[], list[UserResult]]) -> int:
    count = 0

    def counter(*_args: object) -> None:
        nonlocal count
        count += 1

    db.flush()
    connection = db.connection()
    event.listen(connection, "before_cursor_execute", counter)
    try:
        results = run()
        db.flush()
    finally:
        event.remove(connection, "before_cursor_execute", counter)
    assert all(r.ok for r in results), [r.error for r in results if r.error]
    return count


@pytest.mark.parametrize("action", ["delete", "deactivate", "reactivate"])
def test_the_statement_count_does_not_grow_with_the_number_of_users(db, world, action):
    w = world
    few = [equipped(db, w) for _ in range(2)]
    many = [equipped(db, w, w.studio if n % 2 else w.bureau) for n in range(10)]

    def run(people: list[OccupierUser]) -> Callable[[], list[UserResult]]:
        if action == "delete":
            return lambda: bulk.delete_users(db, people, actor=w.admin, index_purge="deferred")
        if action == "deactivate":
            return lambda: bulk.deactivate_users(db, people, remove_from_groups=True, actor=w.admin)
        return lambda: bulk.reactivate_users(db, people, actor=w.admin)

    if action == "reactivate":
        bulk.deactivate_users(db, few + many, actor=w.admin)
    with_few, with_many = _statements(db, run(few)), _statements(db, run(many))
    assert with_few == with_many <= 30


# --- nothing personal left after a set-based delete ---------------------------------------------------


@pytest.mark.parametrize("index_purge", ["now", "deferred"])
def test_deleted_users_leave_no_personal_data(committed, engine, index_purge):
    from occupant.notify.delivery import deliver_due
    from occupant.notify.service import secret_box
    from tests.test_personal_data import _network_traffic, dump_database

    people = [
        # "ǿ w": a search-index term of this user alone that the index stores whole (the first term that
        # starts with ǿ shares no leading bytes with the one before it): the scan sees it while the index
        # holds any entry of theirs
        ("Wilhelmina", "Zuiderzee-ǿ", "wilhelmina.zuiderzee@privacy.example", "EMP-778899", "ext-5566"),
        ("Bartholomew", "Quixotic", "b.quixotic@secret-domain.example", "EMP-112233", "ext-7788"),
    ]
    with committed() as s:
        operator = make_operator(s)
        admin = admin_actor(operator)
        site = make_site(s, operator, country="NL", nas=["ap-ams-1"])
        occupier = make_occupier(s, operator, sites_=[site])
        group = groups.create_group(s, actor=admin, name="Door A", occupier_id=occupier.id)
        doomed = [
            make_user(
                s,
                occupier,
                first_name=first,
                last_name=last,
                email=email,
                mobile="+31612345678",
                job_title="Quartermaster",
                employee_number=number,
                username=f"{first.lower()}-login",
                external_id=external,
                group_ids=[group.id],
            )
            for first, last, email, number, external in people
        ]
        bystander = make_user(s, occupier, first_name="Keep", last_name="Me", email="keep.me@example.com")
        for person in [*doomed, bystander]:
            give_wifi(s, person)
            make_account(s, person, portal=True, mobile_app=True, password=PASSWORD)
        s.commit()
        for n, person in enumerate([*doomed, bystander]):
            _network_traffic(s, person.email_key, n)
            sign_in(s, person.email)
        accounts.send_password_reset(s, doomed[0], actor=admin)
        with pytest.raises(NotAuthenticated):  # a failed sign-in: the throttle names the address
            accounts.sign_in(s, email=doomed[1].email, password="nope", app=App.PORTAL, address="203.0.113.1")
        accounts.request_password_reset(s, email=doomed[0].email, operator_id=None, address="203.0.113.2")
        s.commit()
        sealed = s.scalars(
            select(OutboxMessage.sealed_secrets).where(
                OutboxMessage.occupier_user_id == doomed[0].id, OutboxMessage.template == "wifi_password"
            )
        ).first()
        assert sealed is not None
        wifi_password = secret_box().open(sealed)["password"]
        hashes = [s.scalar(select(WifiAccount.nt_hash).where(WifiAccount.user_id == p.id)) for p in doomed]
    before = dump_database(engine)
    assert all(h and h in before for h in hashes)  # the scan sees what it must not see afterwards
    if engine.dialect.name == "sqlite":
        assert "ǿ w".encode().decode("latin-1").lower() in before  # in the search index's pages
    deliver_due(committed)  # to the mail folder: files to remove after the delete
    with committed() as s:
        users.change_email(s, s.get(OccupierUser, doomed[1].id), "b.q2@secret-domain.example", actor=admin)
        s.commit()  # two notices stay queued until the delete cancels them
        loaded = list(
            s.scalars(
                select(OccupierUser)
                .where(OccupierUser.id.in_([p.id for p in doomed]))
                .order_by(OccupierUser.id)
            )
        )
        results = bulk.delete_users(s, loaded, actor=admin, index_purge=index_purge)
        assert all(r.ok for r in results), results
        if index_purge == "deferred":
            bulk.purge_search_index(s)
        s.commit()
    dump = dump_database(engine)
    for first, last, email, number, external in people:
        for secret in (first, last, email, email.split("@")[1], number, external, f"{first.lower()}-login"):
            assert secret.lower() not in dump, f"{secret!r} survived the delete"
    unique_term = "ǿ w".encode().decode("latin-1").lower()  # as the scan reads the index's blobs
    for secret in ("+31612345678", "quartermaster", "b.q2@", unique_term, wifi_password.lower(), *hashes):
        assert secret.lower() not in dump, f"{secret!r} survived the delete"
    assert "keep.me@example.com" in dump
    from occupant.kit.settings import get_settings

    folder = get_settings().mail_dir / str(operator.id)
    leftovers = [p.name for p in folder.glob("*.eml")] if folder.exists() else []
    texts = " ".join((folder / name).read_text(errors="replace").lower() for name in leftovers)
    assert "zuiderzee" not in texts and "quixotic" not in texts
    assert "keep.me@example.com" in texts or not leftovers
    with committed() as s:
        for table in (RadCheck, RadUserGroup, RadAcct, RadPostAuth):
            assert set(s.scalars(select(table.username))) == {"keep.me@example.com"}, table.__tablename__
        assert (
            s.scalar(select(func.count()).select_from(Throttle).where(Throttle.key.contains("example"))) == 0
        )
        assert [
            e.target_id for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "user.deleted"))
        ] == [str(p.id) for p in doomed]


# --- matching a deactivation file's rows (seed 004) -------------------------------------------------


def test_rows_match_by_email_and_every_other_identifier_filled_in_must_agree(db, world):
    w = world
    ada = make_user(db, w.studio, email="Ada.Lovelace@Example.com", username="ada", external_id="SIS-1")
    ben = make_user(db, w.bureau, email="ben@example.com")
    rows = [
        DeactivateRow(email="ada.lovelace@example.com"),  # only the email: enough
        DeactivateRow(
            email="  ADA.LOVELACE@EXAMPLE.COM ",
            user_id=str(ada.id),
            username="ada",
            external_id="SIS-1",
            occupier=str(w.studio.id),
            remove_from_group="Y",
        ),
        DeactivateRow(email="ben@example.com", user_id=ben.id, occupier=w.bureau.id, remove_from_group="y"),
        DeactivateRow(email="ben@example.com", remove_from_group="n"),
        DeactivateRow(email="ada.lovelace@example.com", username="ADA"),  # exact, not case-insensitive
        DeactivateRow(email="ada.lovelace@example.com", user_id=str(ben.id), external_id="SIS-2"),
        DeactivateRow(email="ada.lovelace@example.com", occupier="Studio"),  # the id, not the name
        DeactivateRow(email="ben@example.com", occupier=str(w.studio.id)),
        DeactivateRow(email="ben@example.com", username="ben"),  # ben has no username
        DeactivateRow(email="", user_id=str(ada.id)),
        DeactivateRow(email=None),
        DeactivateRow(email="nobody@example.com"),
        DeactivateRow(email="not an email"),
        DeactivateRow(email="ben@example.com", remove_from_group="yes"),
        DeactivateRow(email="", remove_from_group="maybe"),
    ]
    results = bulk.match_deactivate_rows(db, w.admin, rows)

    assert [(r.user_id, r.remove_from_group) for r in results[:4]] == [
        (ada.id, False),
        (ada.id, True),
        (ben.id, True),
        (ben.id, False),
    ]
    assert all(r.ok for r in results[:4])

    def failure(r: Any) -> tuple[str, list[tuple[str, str]]]:
        assert r.user_id is None and isinstance(r.error, OccupantError)
        return r.error.code, [(e["field"], e["code"]) for e in r.error.errors]

    assert [failure(r) for r in results[4:]] == [
        ("identifier_mismatch", [("username", "identifier_mismatch")]),
        ("identifier_mismatch", [("user_id", "identifier_mismatch"), ("external_id", "identifier_mismatch")]),
        ("identifier_mismatch", [("occupier", "identifier_mismatch")]),
        ("identifier_mismatch", [("occupier", "identifier_mismatch")]),
        ("identifier_mismatch", [("username", "identifier_mismatch")]),
        ("required", [("email", "required")]),
        ("required", [("email", "required")]),
        ("not_found", [("email", "not_found")]),
        ("validation_error", [("email", "invalid_email")]),
        ("validation_error", [("remove_from_group", "invalid_choice")]),
        ("required", [("email", "required"), ("remove_from_group", "invalid_choice")]),
    ]
    assert results[5].error is not None
    assert results[5].error.message == "Does not match the user with this email: user_id, external_id."
    assert results[6].error is not None
    assert results[6].error.errors[0]["message"] == "The occupier must be given by its ID, not its name."


def test_rows_find_only_users_in_the_actors_scope(db, world):
    w = world
    mine = make_user(db, w.studio, email="mine@example.com")
    theirs = make_user(db, w.bureau, email="theirs@example.com")
    other_operator = make_user(db, make_occupier(db, make_operator(db)), email="far@example.com")
    admin_user = make_user(db, w.studio)
    account = make_account(db, admin_user, role="admin", password=PASSWORD)
    occupier_admin = accounts.actor_for_account(account, admin_user)
    rows = [DeactivateRow(email=u.email) for u in (mine, theirs, other_operator)]
    as_occupier_admin = bulk.match_deactivate_rows(db, occupier_admin, rows)
    assert [r.user_id for r in as_occupier_admin] == [mine.id, None, None]
    assert [r.error.code for r in as_occupier_admin[1:] if r.error] == ["not_found", "not_found"]
    as_staff = bulk.match_deactivate_rows(db, w.admin, rows)
    assert [r.user_id for r in as_staff] == [mine.id, theirs.id, None]
    with pytest.raises(PermissionDenied):
        bulk.match_deactivate_rows(db, Actor(ActorKind.STAFF, 1, w.operator.id, Role.OCCUPIER_USER), rows)


def test_matching_takes_one_query_per_5000_emails(db, world):
    w = world
    people = [make_user(db, w.studio) for _ in range(5)]
    db.flush()
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    connection = db.connection()
    event.listen(connection, "before_cursor_execute", count)
    try:
        results = bulk.match_deactivate_rows(db, w.admin, [DeactivateRow(email=u.email) for u in people])
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert [r.user_id for r in results] == [u.id for u in people]
    assert len(statements) == 1
