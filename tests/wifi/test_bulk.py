"""Wi-Fi Secure accounts for many users in one call (``wifi.bulk``), as a bulk job creates them.

What each user, the admin and RADIUS see must be what ``create_wifi_account`` gives one user: the same
RADIUS rows, the same email, the same audit event, the same busy hold, the same errors for refused
users — with a fixed number of statements however many users there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.kit.clock import utcnow
from occupant.kit.errors import OccupantError, PermissionDenied
from occupant.kit.settings import get_settings
from occupant.occupiers import service as occupiers
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.radius import sync
from occupant.radius.models import RadCheck, RadUserGroup
from occupant.sites.models import Site
from occupant.users import service as users
from occupant.users.models import OccupierUser
from occupant.wifi import service as wifi
from occupant.wifi.bulk import WifiCreateRequest, confirm_provisioning_many, create_wifi_accounts
from occupant.wifi.models import WifiAccount, WifiStatus
from occupant.wifi.passwords import nt_hash
from tests.factories import (
    admin_actor,
    make_occupier,
    make_operator,
    make_site,
    make_user,
    site_manager_actor,
)
from tests.wifi.support import mailed_password, password_mails


@dataclass
class World:
    operator: Operator
    lon: Site
    par: Site
    ber: Site
    studio: Occupier  # LON01 and PAR01
    bureau: Occupier  # BER01 and LON01: another occupier of the same operator
    admin: Actor


@pytest.fixture
def world(db: Session) -> World:
    operator = make_operator(db, name="Atelier Workspaces")
    lon = make_site(db, operator, code="LON01", name="London Bridge", nas=["ap-lon01"])
    par = make_site(db, operator, code="PAR01", name="Paris Opéra", country="FR", nas=["ap-par01"])
    ber = make_site(db, operator, code="BER01", name="Berlin Mitte", country="DE", nas=["ap-ber01"])
    studio = make_occupier(db, operator, sites_=[lon, par], primary_site_id=lon.id)
    bureau = make_occupier(db, operator, sites_=[ber, lon], primary_site_id=ber.id)
    return World(operator, lon, par, ber, studio, bureau, admin_actor(operator))


def radcheck(db: Session, username: str) -> dict[str, tuple[str, str]]:
    rows = db.execute(
        select(RadCheck.attribute, RadCheck.op, RadCheck.value).where(RadCheck.username == username)
    ).all()
    assert len({attribute for attribute, _, _ in rows}) == len(rows), f"duplicate rows for {username}"
    return {attribute: (op, value) for attribute, op, value in rows}


def groups(db: Session, username: str) -> list[tuple[str, int]]:
    rows = db.execute(
        select(RadUserGroup.groupname, RadUserGroup.priority)
        .where(RadUserGroup.username == username)
        .order_by(RadUserGroup.priority, RadUserGroup.groupname)
    ).all()
    return [(name, priority) for name, priority in rows]


def created_events(db: Session, user: OccupierUser) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == "wifi.created", AuditEvent.target_id == str(user.id))
    return list(db.scalars(stmt.order_by(AuditEvent.id)))


def traces(db: Session, user: OccupierUser) -> dict[str, Any]:
    """Everything a Wi-Fi create could write for this user."""
    db.flush()
    return {
        "account": db.scalar(select(WifiAccount.id).where(WifiAccount.user_id == user.id)),
        "radcheck": radcheck(db, user.email_key),
        "groups": groups(db, user.email_key),
        "mails": len(password_mails(db, user.id)),
        "events": len(created_events(db, user)),
        "busy": db.execute(
            select(OccupierUser.busy_owner, OccupierUser.busy_until).where(OccupierUser.id == user.id)
        ).one(),
    }


def refresh(db: Session, *objects: object) -> None:
    db.flush()
    for obj in objects:
        db.refresh(obj)


# --- created: what the single action writes -------------------------------------------------------


def test_accounts_get_the_rows_mail_audit_and_hold_the_single_action_gives(db, world):
    w = world
    single_user = make_user(db, w.studio, language="fr")
    bulk_user = make_user(db, w.studio, language="fr")
    single = wifi.create_wifi_account(db, single_user, homesite_id=w.par.id, device_limit=3, actor=w.admin)
    [result] = create_wifi_accounts(db, [(bulk_user, w.par.id, 3)], actor=w.admin)
    assert result.ok and result.error is None and result.user is bulk_user
    bulk = result.account
    assert bulk is not None
    refresh(db, single, bulk, single_user, bulk_user)

    def account_view(account: WifiAccount, user: OccupierUser) -> dict[str, Any]:
        assert account.username == user.email_key and account.user_id == user.id
        assert account.nt_hash and account.password_changed_at is not None
        return {
            "status": account.status,
            "homesite": account.homesite_id,
            "limit": account.device_limit,
            "occupier": account.occupier_id,
            "operator": account.operator_id,
            "provisioned_at": account.provisioned_at,
            "suspended_with_user": account.suspended_with_user,
        }

    assert account_view(bulk, bulk_user) == account_view(single, single_user)
    assert bulk.status == WifiStatus.PROVISIONING

    # RADIUS: the same attributes and groups, row for row; only the password differs
    for account in (single, bulk):
        assert radcheck(db, account.username)["NT-Password"] == (":=", account.nt_hash)
    without_hash = {
        name: {k: v for k, v in radcheck(db, a.username).items() if k != "NT-Password"}
        for name, a in (("single", single), ("bulk", bulk))
    }
    assert without_hash["bulk"] == without_hash["single"] == {"Simultaneous-Use": (":=", "3")}
    assert groups(db, bulk.username) == groups(db, single.username)
    assert groups(db, bulk.username) == [(sync.home_group(w.par), 1), (sync.guest_group(w.lon), 2)]

    # the email: same template, language, reason and facts; each with its own password
    [single_mail] = password_mails(db, single_user.id)
    [bulk_mail] = password_mails(db, bulk_user.id)
    for mail, user, account in ((single_mail, single_user, single), (bulk_mail, bulk_user, bulk)):
        assert mail.to_address == user.email and mail.language == "fr"
        assert mail.context == {
            "first_name": user.first_name,
            "username": account.username,
            "homesite": "Paris Opéra",
            "reason": "created",
            "device_limit": 3,
        }
        assert nt_hash(mailed_password(mail)) == account.nt_hash
    assert mailed_password(single_mail) != mailed_password(bulk_mail)

    # the audit event: same action, fields and changes
    [single_event] = created_events(db, single_user)
    [bulk_event] = created_events(db, bulk_user)

    def event_view(e: AuditEvent) -> dict[str, Any]:
        return {
            "operator": e.operator_id,
            "actor": (e.actor_type, e.actor_id),
            "target_type": e.target_type,
            "occupier": e.occupier_id,
            "fields": e.fields,
            "changes": e.changes,
            "outcome": e.outcome,
            "request_id": e.request_id,
        }

    assert event_view(bulk_event) == event_view(single_event)
    assert bulk_event.changes == {
        "wifi_status": [None, "PROVISIONING"],
        "wifi_homesite": [None, "PAR01"],
        "wifi_device_limit": [None, 3],
    }

    # busy until confirmed, owned by the account's provisioning, with the same expiry
    ttl = timedelta(seconds=get_settings().busy_ttl_seconds)
    for user, account in ((single_user, single), (bulk_user, bulk)):
        assert user.busy_owner == f"wifi:{account.id}" and user.is_busy
        assert user.busy_until is not None and abs(user.busy_until - (utcnow() + ttl)) < timedelta(minutes=1)
    assert single_user.version_id == bulk_user.version_id  # both rows changed once since created


def test_users_of_several_occupiers_each_get_their_own_sites_and_default_limit(db, world):
    w = world
    w.bureau.default_wifi_device_limit = 4
    studio_user = make_user(db, w.studio, language="de")
    bureau_user = make_user(db, w.bureau, language="nl")
    results = create_wifi_accounts(
        db,
        [WifiCreateRequest(studio_user, w.lon.id), WifiCreateRequest(bureau_user, w.ber.id, None)],
        actor=w.admin,
    )
    assert [r.ok for r in results] == [True, True]
    assert [r.account.device_limit for r in results if r.account] == [2, 4]
    assert groups(db, studio_user.email_key) == [(sync.home_group(w.lon), 1), (sync.guest_group(w.par), 2)]
    assert groups(db, bureau_user.email_key) == [(sync.home_group(w.ber), 1), (sync.guest_group(w.lon), 2)]
    assert radcheck(db, bureau_user.email_key)["Simultaneous-Use"] == (":=", "4")
    assert [m.language for m in password_mails(db, studio_user.id)] == ["de"]
    assert [m.language for m in password_mails(db, bureau_user.id)] == ["nl"]
    assert [m.context["homesite"] for m in password_mails(db, bureau_user.id)] == ["Berlin Mitte"]


def test_every_user_gets_one_email_in_their_language_with_the_password_radius_checks(db, world):
    w = world
    people = [make_user(db, w.studio, language=lang) for lang in ("en", "fr", "de", "es", "nl")]
    results = create_wifi_accounts(db, [(p, w.lon.id, None) for p in people], actor=w.admin)
    passwords = []
    for person, result in zip(people, results, strict=True):
        assert result.account is not None
        [mail] = password_mails(db, person.id)
        assert (mail.to_address, mail.language) == (person.email, person.language)
        password = mailed_password(mail)
        assert password not in str(mail.context)
        assert radcheck(db, person.email_key) == {
            "NT-Password": (":=", nt_hash(password)),
            "Simultaneous-Use": (":=", "2"),
        }
        assert result.account.nt_hash == nt_hash(password)
        passwords.append(password)
    assert len(set(passwords)) == len(passwords)
    assert all(len(p) == 14 and p[4] == p[9] == "-" for p in passwords)
    assert not set("".join(passwords)) & set("0O1lI")  # nothing to misread on a phone


# --- refused users: the single action's error, nothing written, the others created -----------------


def test_each_refused_user_gets_the_single_actions_error_and_the_others_are_created(db, world):
    w = world
    good = [make_user(db, w.studio), make_user(db, w.bureau), make_user(db, w.studio)]
    busy = make_user(db, w.studio)
    busy.busy_owner, busy.busy_until = "bulk:7", utcnow() + timedelta(minutes=5)
    leaving_occupier = make_occupier(db, w.operator, sites_=[w.lon])
    leaving = make_user(db, leaving_occupier)
    occupiers.start_decommission(db, leaving_occupier, actor=w.admin)
    deactivated = make_user(db, w.studio)
    users.deactivate_user(db, deactivated, actor=w.admin)
    has_account = make_user(db, w.studio)
    wifi.create_wifi_account(db, has_account, homesite_id=w.lon.id, actor=w.admin)
    wifi.confirm_provisioning(db, wifi.account_of(db, has_account).id)  # type: ignore[union-attr]
    bad_homesite, bad_limit, bad_both, too_many = (make_user(db, w.studio) for _ in range(4))
    other = make_operator(db)
    other_site = make_site(db, other, code="AMS01", nas=["ap-ams01"])
    elsewhere = make_user(db, make_occupier(db, other, sites_=[other_site]), email="shared@tenant.example")
    wifi.create_wifi_account(db, elsewhere, homesite_id=other_site.id, actor=admin_actor(other))
    namesake = make_user(db, w.studio, email="Shared@Tenant.example")  # the other operator's username
    db.flush()

    requests: list[tuple[OccupierUser, int | None, int | None]] = [
        (good[0], w.par.id, 3),
        (busy, w.lon.id, None),
        (good[1], w.ber.id, None),
        (leaving, w.lon.id, None),
        (deactivated, w.lon.id, None),
        (has_account, w.par.id, None),
        (bad_homesite, w.ber.id, 2),  # the operator's site, not the occupier's
        (bad_limit, w.lon.id, 0),
        (bad_both, None, 9),
        (too_many, w.lon.id, 6),  # above the operator's maximum of 5
        (namesake, w.lon.id, None),
        (good[0], w.lon.id, None),  # asked for twice: the first create leaves the user busy
        (good[2], w.lon.id, 5),
    ]
    refused_users = [busy, leaving, deactivated, has_account, bad_homesite, bad_limit, bad_both, too_many]
    refused_users.append(namesake)
    before = {user.id: traces(db, user) for user in refused_users}

    results = create_wifi_accounts(db, requests, actor=w.admin)

    assert [r.user for r in results] == [user for user, _, _ in requests]
    codes = [r.error.code if r.error else "created" for r in results]
    assert codes == [
        "created",
        "action_in_progress",
        "created",
        "occupier_decommissioned",
        "invalid_state",
        "wifi_account_exists",
        "validation_error",
        "validation_error",
        "validation_error",
        "validation_error",
        "wifi_username_taken",
        "action_in_progress",
        "created",
    ]
    field_codes = [
        {e["field"]: e["code"] for e in r.error.details} for r in results[6:10] if r.error is not None
    ]
    assert field_codes == [
        {"homesite_id": "invalid_homesite"},
        {"device_limit": "invalid_device_limit"},
        {"homesite_id": "invalid_homesite", "device_limit": "invalid_device_limit"},
        {"device_limit": "invalid_device_limit"},
    ]
    for user in refused_users:
        assert traces(db, user) == before[user.id], user.email
    for user in good:
        trace = traces(db, user)
        assert trace["account"] and trace["mails"] == 1 and trace["events"] == 1
        assert trace["busy"][0] == f"wifi:{trace['account']}"
        assert set(trace["radcheck"]) == {"NT-Password", "Simultaneous-Use"}

    # one after the other, the single action refuses each of them the same way (and writes nothing)
    for (user, homesite_id, device_limit), result in zip(requests, results, strict=True):
        if result.ok:
            continue
        savepoint = db.begin_nested()
        try:
            with pytest.raises(OccupantError) as err:
                wifi.create_wifi_account(
                    db, user, homesite_id=homesite_id, device_limit=device_limit, actor=w.admin
                )
        finally:
            savepoint.rollback()
        assert result.error is not None
        assert type(err.value) is type(result.error)
        assert err.value.as_dict() == result.error.as_dict()
        assert err.value.status == result.error.status


def test_a_user_of_another_operator_is_not_found_and_untouched(db, world):
    w = world
    other = make_operator(db)
    stranger = make_user(db, make_occupier(db, other))
    mine = make_user(db, w.studio)
    before = traces(db, stranger)
    results = create_wifi_accounts(
        db, [(stranger, stranger.occupier.sites[0].id, None), (mine, w.lon.id, None)], actor=w.admin
    )
    assert [r.error.code if r.error else "created" for r in results] == ["not_found", "created"]
    assert results[0].error is not None and results[0].error.status == 404
    assert traces(db, stranger) == before


def test_a_site_manager_reaches_only_the_occupiers_at_their_sites(db, world):
    w = world
    berlin_manager = site_manager_actor(w.operator, [w.ber.id])
    at_berlin, elsewhere = make_user(db, w.bureau), make_user(db, w.studio)  # studio: London and Paris
    before = traces(db, elsewhere)
    results = create_wifi_accounts(
        db, [(elsewhere, w.lon.id, None), (at_berlin, w.ber.id, None)], actor=berlin_manager
    )
    assert [r.error.code if r.error else "created" for r in results] == ["not_found", "created"]
    assert traces(db, elsewhere) == before


def test_a_user_who_cannot_manage_users_is_refused_and_nothing_is_written(db, world):
    w = world
    person = make_user(db, w.studio)
    as_user = Actor(
        ActorKind.OCCUPIER_USER, person.id, w.operator.id, Role.OCCUPIER_USER, occupier_id=w.studio.id
    )
    before = traces(db, person)
    with pytest.raises(PermissionDenied) as err:
        create_wifi_accounts(db, [(person, w.lon.id, None)], actor=as_user)
    assert (err.value.code, err.value.status) == ("permission_denied", 403)
    assert traces(db, person) == before


def test_an_occupier_admin_may_create_for_their_users(db, world):
    w = world
    person = make_user(db, w.studio)
    as_admin = Actor(ActorKind.STAFF, 99, w.operator.id, Role.OCCUPIER_ADMIN, occupier_id=w.studio.id)
    [result] = create_wifi_accounts(db, [(person, w.lon.id, None)], actor=as_admin)
    assert result.ok
    [event] = created_events(db, person)
    assert (event.actor_type, event.actor_id) == ("staff", "99")


def test_no_requests_write_nothing(db, world):
    count = db.scalar(select(func.count()).select_from(AuditEvent))
    assert create_wifi_accounts(db, [], actor=world.admin) == []
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == count


def test_the_number_of_statements_does_not_grow_with_the_number_of_users(db, world):
    w = world
    few = [make_user(db, w.studio) for _ in range(2)]
    many = [make_user(db, w.studio if n % 2 else w.bureau) for n in range(12)]
    bad = make_user(db, w.studio)
    db.flush()
    connection = db.connection()
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0])

    event.listen(connection, "before_cursor_execute", count)
    try:
        create_wifi_accounts(db, [(u, w.lon.id, None) for u in few], actor=w.admin)
        db.flush()
        with_few = list(statements)
        statements.clear()
        requests = [(u, u.occupier.sites[0].id, None) for u in many] + [(bad, w.ber.id, None)]
        results = create_wifi_accounts(db, requests, actor=w.admin)
        db.flush()
        with_many = list(statements)
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert sum(r.ok for r in results) == 12
    assert len(with_many) == len(with_few) <= 10, with_many


# --- after the commit: one confirmation for all, set-based ----------------------------------------


def test_one_message_after_commit_confirms_them_all_and_frees_the_users(committed):
    from occupant.kit.db import transaction
    from occupant.worker import tasks
    from occupant.worker.queue import huey

    huey.flush()
    with transaction(committed) as s:
        operator = make_operator(s)
        site = make_site(s, operator, nas=["ap-1"])
        occupier = make_occupier(s, operator, sites_=[site])
        people = [make_user(s, occupier) for _ in range(3)]
        results = create_wifi_accounts(s, [(p, site.id, None) for p in people], actor=admin_actor(operator))
        ids = sorted(r.account.id for r in results if r.account)
        user_ids = [p.id for p in people]
        assert huey.pending_count() == 0  # nothing is queued before the commit
    [message] = [t for t in huey.pending() if t.name.endswith("confirm_wifi_many")]
    assert sorted(message.args[0]) == ids
    assert not [t for t in huey.pending() if t.name.endswith("confirm_wifi")]
    huey.flush()

    tasks.confirm_wifi_many.call_local(ids)
    with committed() as s:
        assert set(s.scalars(select(WifiAccount.status))) == {"ACTIVE"}
        assert all(a.provisioned_at is not None for a in s.scalars(select(WifiAccount)))
        assert all(not s.get_one(OccupierUser, uid).is_busy for uid in user_ids)
        assert all(s.get_one(OccupierUser, uid).busy_owner is None for uid in user_ids)


def test_a_confirmation_retries_the_accounts_radius_cannot_see_yet_and_confirms_the_others(committed):
    from occupant.kit.db import transaction
    from occupant.worker import tasks
    from occupant.worker.queue import huey

    huey.flush()
    with transaction(committed) as s:
        operator = make_operator(s)
        site = make_site(s, operator, nas=["ap-1"])
        occupier = make_occupier(s, operator, sites_=[site])
        people = [make_user(s, occupier) for _ in range(3)]
        results = create_wifi_accounts(s, [(p, site.id, None) for p in people], actor=admin_actor(operator))
        accounts = {r.account.id: r.account.username for r in results if r.account}
        lagging_id, lagging_name = next(iter(accounts.items()))
        s.execute(delete(RadCheck).where(RadCheck.username == lagging_name))
    huey.flush()

    with pytest.raises(wifi.ProvisioningNotLive):
        tasks.confirm_wifi_many.call_local(sorted(accounts))
    with committed() as s:
        status = {i: st for i, st in s.execute(select(WifiAccount.id, WifiAccount.status))}
        assert status == {i: ("PROVISIONING" if i == lagging_id else "ACTIVE") for i in accounts}
        busy = [u.busy_owner for u in s.scalars(select(OccupierUser).order_by(OccupierUser.id))]
        assert busy.count(None) == 2 and f"wifi:{lagging_id}" in busy


def test_confirmations_are_sent_in_batches(committed, monkeypatch):
    from occupant.kit.db import transaction
    from occupant.worker import tasks
    from occupant.worker.queue import huey

    monkeypatch.setattr(tasks, "WIFI_CONFIRMATION_BATCH", 2)
    huey.flush()
    with transaction(committed) as s:
        operator = make_operator(s)
        site = make_site(s, operator, nas=["ap-1"])
        occupier = make_occupier(s, operator, sites_=[site])
        people = [make_user(s, occupier) for _ in range(5)]
        results = create_wifi_accounts(s, [(p, site.id, None) for p in people], actor=admin_actor(operator))
        ids = sorted(r.account.id for r in results if r.account)
    batches = [t.args[0] for t in huey.pending() if t.name.endswith("confirm_wifi_many")]
    huey.flush()
    assert [len(b) for b in batches] == [2, 2, 1]
    assert sorted(i for b in batches for i in b) == ids


def test_a_rolled_back_bulk_create_queues_nothing(db, world):
    from occupant.worker.queue import huey

    huey.flush()
    create_wifi_accounts(db, [(make_user(db, world.studio), world.lon.id, None)], actor=world.admin)
    db.rollback()
    assert huey.pending_count() == 0


def test_set_based_confirmation_does_what_the_single_confirmation_does(db, world):
    w = world
    people = [make_user(db, w.studio) for _ in range(4)]
    results = create_wifi_accounts(db, [(p, w.lon.id, None) for p in people], actor=w.admin)
    accounts = [r.account for r in results if r.account]
    already = accounts[0]
    assert wifi.confirm_provisioning(db, already.id)  # confirmed one by one before
    people[1].busy_owner = "bulk:9"  # another action took the user over: its hold stays
    db.flush()

    outcome = confirm_provisioning_many(db, [a.id for a in accounts] + [999_999_999])
    assert outcome.confirmed == sorted(a.id for a in accounts[1:]) and outcome.not_live == []
    refresh(db, *accounts, *people)
    assert {a.status for a in accounts} == {WifiStatus.ACTIVE}
    assert all(a.provisioned_at is not None for a in accounts)
    assert [p.busy_owner for p in people] == [None, "bulk:9", None, None]
    assert confirm_provisioning_many(db, [a.id for a in accounts]).confirmed == []  # a second time: no-op
    wifi.deactivate_wifi(db, people[2], actor=w.admin)  # the users and their accounts are usable again
