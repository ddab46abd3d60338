"""Creating many users at once (``users.bulk``), as a bulk create job previews and runs a CSV file's rows.

A bulk-created user must be what the add-user wizard makes of the same row — ``create_user``, then
``create_wifi_account`` and ``set_up_account`` — column for column, with the same RADIUS rows, mails and
audit events; every row refused gets all its errors at once with the single actions' codes, and is left
untouched while the others are written; the preview writes nothing; the number of statements does not
grow with the number of rows.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from occupant.accounts import service as accounts
from occupant.accounts.models import AccountStatus, AccountToken, AppAccount, TokenPurpose
from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.groups import service as groups
from occupant.groups.models import group_members
from occupant.kit.clock import utcnow
from occupant.kit.errors import NotFound, OccupierDecommissioned, PermissionDenied
from occupant.kit.security import SecretBox
from occupant.notify.models import OutboxMessage
from occupant.notify.service import secret_box
from occupant.occupiers import service as occupiers
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.radius.models import RadCheck, RadUserGroup
from occupant.sites.models import Site
from occupant.users import bulk, queries
from occupant.users import service as users
from occupant.users.bulk import NewUserRow, RowAction, RowOutcome, check_new_users, create_users, row_from_csv
from occupant.users.models import OccupierUser, UserStatus
from occupant.users.schemas import UserCreate
from occupant.wifi import service as wifi
from occupant.wifi.models import WifiAccount, WifiStatus
from occupant.wifi.passwords import nt_hash
from tests.factories import admin_actor, make_account, make_occupier, make_operator, make_site, make_user
from tests.wifi.support import mailed_password

PASSWORD = "correct horse battery staple"


@dataclass
class World:
    operator: Operator
    lon: Site
    par: Site
    ber: Site
    studio: Occupier  # LON01 (primary) and PAR01, portal and mobile app offered
    bureau: Occupier  # BER01: another occupier of the operator, no mobile app
    admin: Actor


@pytest.fixture
def world(db: Session) -> World:
    operator = make_operator(db, name="Atelier Workspaces")
    lon = make_site(db, operator, code="LON01", name="London Bridge", nas=["ap-lon01"])
    par = make_site(db, operator, code="PAR01", name="Paris Opéra", country="FR", nas=["ap-par01"])
    ber = make_site(db, operator, code="BER01", name="Berlin Mitte", country="DE", nas=["ap-ber01"])
    studio = make_occupier(db, operator, sites_=[lon, par], primary_site_id=lon.id, name="Studio Nord")
    bureau = make_occupier(db, operator, sites_=[ber], name="Bureau Ost", mobile_app_offered=False)
    return World(operator, lon, par, ber, studio, bureau, admin_actor(operator, staff_id=7))


def csv_row(line: int = 2, **values: str) -> NewUserRow:
    base = {"first_name": "Ada", "last_name": "Lovelace", "email": f"ada{line}@studio.example"}
    return row_from_csv({**base, **values}, line=line)


def checks(found: list[bulk.RowCheck]) -> list[Any]:
    """Each row's planned action, or its (field, code) errors."""
    return [
        r.action.value if r.ok and r.action else [(e["field"], e["code"]) for e in r.errors] for r in found
    ]


def table_counts(db: Session) -> dict[str, int]:
    db.flush()
    models: list[Any] = [OccupierUser, WifiAccount, RadCheck, RadUserGroup, AppAccount, AccountToken]
    models += [OutboxMessage, AuditEvent]
    counts = {m.__tablename__: db.scalar(select(func.count()).select_from(m)) or 0 for m in models}
    counts["members"] = db.scalar(select(func.count()).select_from(group_members)) or 0
    return counts


def user_columns(db: Session, user_id: int) -> dict[str, Any]:
    db.expire_all()
    user = db.get_one(OccupierUser, user_id)
    return {c.key: getattr(user, c.key) for c in OccupierUser.__table__.columns}


def events_of(db: Session, user_id: int) -> list[tuple[str, Any, list[str], dict[str, Any]]]:
    rows = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.target_type == "occupier_user", AuditEvent.target_id == str(user_id))
        .order_by(AuditEvent.id)
    ).all()
    return [
        (e.action, (e.actor_type, e.actor_id, e.occupier_id, e.outcome), e.fields, e.changes) for e in rows
    ]


def mails_of(db: Session, user_id: int) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.occupier_user_id == user_id).order_by(OutboxMessage.id)
    return list(db.scalars(stmt))


# --- what a row makes ------------------------------------------------------------------------------


def test_a_bulk_created_user_is_what_the_add_user_wizard_makes(db, world):
    w = world
    details = {
        "job_title": "Engineer",
        "mobile": "+33612345678",
        "direct_line": "020 7946 0958",  # national: read in the occupier's region (GB)
        "language": "fr",
        "employee_number": "E-1",
        "username": "ada",
        "external_id": "hr-1",
    }
    group = groups.create_group(db, actor=w.admin, name="Door A", site_id=w.lon.id)
    single = users.create_user(
        db,
        w.studio,
        UserCreate(
            first_name="Ada",
            last_name="Lovelace",
            email="Ada@Single.example",
            group_ids=[group.id],
            **details,
        ),
        actor=w.admin,
    )
    # the wizard's order: the app account, then Wi-Fi (which leaves the user busy)
    accounts.set_up_account(
        db, single, role="admin", invite_portal=True, invite_mobile_app=True, actor=w.admin
    )
    wifi.create_wifi_account(db, single, homesite_id=w.par.id, device_limit=3, actor=w.admin)

    row = csv_row(
        email="Ada@Bulk.example",
        **{**details, "employee_number": "E-2", "username": "ada2", "external_id": "hr-2"},
        wifi_homesite="par01",
        wifi_device_limit="3",
        role="Admin",
        invite_portal="y",
        invite_mobile_app="YES",
        groups="door a",
    )
    [result] = create_users(db, w.studio, [row], actor=w.admin)
    assert result.ok and result.outcome is RowOutcome.CREATED and result.user_id
    bulk_id = result.user_id

    # the user: the same columns, derived keys computed the same way; busy for its new Wi-Fi account
    differs = {"id", "email", "email_key", "employee_number", "username", "external_id", "search_text"}
    differs |= {"sort_key", "busy_owner", "busy_until", "created_at", "updated_at"}
    one, other = user_columns(db, single.id), user_columns(db, bulk_id)
    assert {k: v for k, v in one.items() if k not in differs} == {
        k: v for k, v in other.items() if k not in differs
    }
    assert (other["email"], other["email_key"], other["mobile"], other["direct_line"]) == (
        "Ada@bulk.example",
        "ada@bulk.example",
        "+33612345678",
        "+442079460958",
    )
    assert (other["sort_key"], other["search_text"]) == ("lovelace ada", "ada lovelace ada@bulk.example")
    assert other["status"] == UserStatus.ACTIVE and other["version_id"] == one["version_id"] == 2
    bulk_wifi = db.scalars(select(WifiAccount).where(WifiAccount.user_id == bulk_id)).one()
    single_wifi = wifi.account_of(db, single)
    assert single_wifi is not None
    assert other["busy_owner"] == wifi.provisioning_owner(bulk_wifi.id)
    assert abs(other["busy_until"] - one["busy_until"]) < timedelta(minutes=1)
    assert [g for g, _ in db.execute(select(group_members).where(group_members.c.user_id == bulk_id))] == [
        group.id
    ]

    # Wi-Fi: the account and RADIUS's rows as the single action writes them
    def wifi_view(a: WifiAccount) -> dict[str, Any]:
        return {
            k: getattr(a, k)
            for k in ("status", "homesite_id", "device_limit", "occupier_id", "operator_id", "version_id")
        } | {"provisioned_at": a.provisioned_at, "suspended": a.suspended_with_user}

    assert wifi_view(bulk_wifi) == wifi_view(single_wifi)
    assert bulk_wifi.status == WifiStatus.PROVISIONING and bulk_wifi.username == "ada@bulk.example"

    def radius(username: str) -> tuple[list[tuple[str, str]], list[tuple[str, int]]]:
        checks = db.execute(
            select(RadCheck.attribute, RadCheck.op, RadCheck.value).where(RadCheck.username == username)
        ).all()
        attrs = sorted((a, op if a == "NT-Password" else f"{op}{v}") for a, op, v in checks)
        rows = db.execute(
            select(RadUserGroup.groupname, RadUserGroup.priority)
            .where(RadUserGroup.username == username)
            .order_by(RadUserGroup.priority, RadUserGroup.groupname)
        ).all()
        return attrs, [(g, p) for g, p in rows]

    assert radius(bulk_wifi.username) == radius(single_wifi.username)

    # the app account: admin, invited to both apps, one link
    def account_view(user_id: int) -> dict[str, Any]:
        a = db.scalars(select(AppAccount).where(AppAccount.user_id == user_id)).one()
        keys = (
            "role",
            "status",
            "portal",
            "mobile_app",
            "password_hash",
            "must_change_password",
            "version_id",
        )
        return {k: getattr(a, k) for k in keys} | {"invited": a.invited_at is not None}

    assert account_view(bulk_id) == account_view(single.id)
    assert account_view(bulk_id)["role"] == "admin"

    # the mails: same templates, languages and words, each with its own secret
    def mail_view(m: OutboxMessage) -> tuple[Any, ...]:
        context = {k: v for k, v in m.context.items() if k not in ("first_name", "username")}
        return (m.template, m.language, m.status, context)

    single_mails, bulk_mails = mails_of(db, single.id), mails_of(db, bulk_id)
    assert [mail_view(m) for m in bulk_mails] == [mail_view(m) for m in single_mails]
    assert [m.template for m in bulk_mails] == ["app_invitation", "wifi_password"]
    invitation, password = bulk_mails
    assert password.to_address == "Ada@bulk.example" and password.context["username"] == bulk_wifi.username
    assert nt_hash(mailed_password(password)) == bulk_wifi.nt_hash
    assert invitation.context["apps"] == ["portal", "mobile_app"]

    # the mailed link sets the password and signs in
    link = secret_box().open(invitation.sealed_secrets or "")["link"]
    token = link.rsplit("/", 1)[1]
    assert accounts.check_link(db, token, TokenPurpose.INVITATION).purpose == TokenPurpose.INVITATION
    account, _ = accounts.set_password_with_link(db, token, PASSWORD, address=None)
    assert account.status == AccountStatus.ACTIVE

    # the audit trail: the same events with the same fields and changes
    def trail(user_id: int) -> list[tuple[Any, ...]]:
        return [(a, who, fields, changes) for a, who, fields, changes in events_of(db, user_id)]

    assert trail(bulk_id)[:3] == trail(single.id)[:3]
    assert [e[0] for e in trail(bulk_id)[:3]] == ["user.created", "app_account.invited", "wifi.created"]


def test_rows_without_wifi_or_invitations_make_plain_users_and_an_admin_role_alone(db, world):
    w = world
    rows = [
        csv_row(2, wifi="n", wifi_homesite="LON01"),  # asked not to: the homesite is not used
        csv_row(3, role="admin"),  # the role alone, not invited (as set_up_account with no app ticked)
        csv_row(4, role="user"),  # nothing to set up: no account (as the add-user forms)
        csv_row(5, wifi="y"),  # no homesite: the occupier's primary site, as the forms propose
    ]
    results = create_users(db, w.studio, rows, actor=w.admin)
    assert [r.outcome for r in results] == [RowOutcome.CREATED] * 4
    ids = [r.user_id for r in results]
    db.flush()
    with_wifi = {u: h for u, h in db.execute(select(WifiAccount.user_id, WifiAccount.homesite_id))}
    assert with_wifi == {ids[3]: w.lon.id}
    plain = db.get_one(OccupierUser, ids[0])
    assert (plain.busy_owner, plain.busy_until, plain.version_id, plain.is_busy) == (None, None, 1, False)
    assert db.get_one(OccupierUser, ids[3]).is_busy  # PROVISIONING until RADIUS has it
    account = db.scalars(select(AppAccount).where(AppAccount.user_id == ids[1])).one()
    assert (account.role, account.status, account.portal) == (
        "admin",
        AccountStatus.NOT_INVITED,
        "NOT_INVITED",
    )
    assert db.scalars(select(AppAccount.user_id)).all() == [ids[1]]
    assert [e[0] for e in events_of(db, ids[1])] == ["user.created", "app_account.role_changed"]
    assert events_of(db, ids[1])[1][2:] == (["role"], {"role": [None, "admin"]})
    assert mails_of(db, ids[0]) == [] and mails_of(db, ids[1]) == []


def test_each_language_gets_its_mails_in_that_language(db, world):
    rows = [
        csv_row(n, language=lang, wifi_homesite="LON01", invite_portal="y")
        for n, lang in enumerate(["en", "fr", "de", "es", "nl"], 2)
    ]
    results = create_users(db, world.studio, rows, actor=world.admin)
    for lang, result in zip(["en", "fr", "de", "es", "nl"], results, strict=True):
        assert result.user_id
        assert [(m.template, m.language) for m in mails_of(db, result.user_id)] == [
            ("app_invitation", lang),
            ("wifi_password", lang),
        ]


# --- errors: every one of a row at once, the single actions' codes -----------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"first_name": ""}, [("first_name", "required")]),
        ({"last_name": "x" * 101}, [("last_name", "too_long")]),
        ({"email": ""}, [("email", "required")]),
        ({"email": "ada@@studio"}, [("email", "invalid_email")]),
        ({"mobile": "12"}, [("mobile", "invalid_phone")]),
        ({"direct_line": "+4420"}, [("direct_line", "invalid_phone")]),
        ({"language": "it"}, [("language", "invalid_language")]),
        ({"wifi_homesite": "BER01"}, [("wifi_homesite", "invalid_homesite")]),  # the operator's, not theirs
        ({"wifi_homesite": "NOPE1"}, [("wifi_homesite", "invalid_homesite")]),
        (
            {"wifi_homesite": "LON01", "wifi_device_limit": "9"},
            [("wifi_device_limit", "invalid_device_limit")],
        ),
        (
            {"wifi_homesite": "LON01", "wifi_device_limit": "0"},
            [("wifi_device_limit", "invalid_device_limit")],
        ),
        (
            {"wifi_device_limit": "two", "wifi_homesite": "LON01"},
            [("wifi_device_limit", "invalid_device_limit")],
        ),
        ({"wifi": "maybe"}, [("wifi", "invalid_boolean")]),
        ({"invite_portal": "si"}, [("invite_portal", "invalid_boolean")]),
        ({"role": "owner"}, [("role", "invalid_role")]),
        ({"groups": "Door A;Nowhere"}, [("groups", "unknown_group")]),
    ],
)
def test_each_problem_of_a_row_has_the_single_actions_code(db, world, values, expected):
    groups.create_group(db, actor=world.admin, name="Door A", site_id=world.lon.id)
    [check] = check_new_users(db, world.studio, [csv_row(**values)], actor=world.admin)
    assert check.action is None and not check.ok
    assert [(e["field"], e["code"]) for e in check.errors] == expected
    assert check.code == expected[0][1] and check.message == check.errors[0]["message"]


def test_taken_values_are_refused_with_the_single_actions_codes_and_messages(db, world):
    w = world
    make_user(db, w.studio, email="taken@studio.example", username="taken", external_id="hr-taken")
    elsewhere = make_operator(db)
    site = make_site(db, elsewhere, code="AMS01", nas=["ap-ams01"])
    stranger = make_user(db, make_occupier(db, elsewhere, sites_=[site]), email="wifi@shared.example")
    wifi.create_wifi_account(db, stranger, homesite_id=site.id, actor=admin_actor(elsewhere))
    rows = [
        csv_row(2, email="Taken@Studio.example"),
        csv_row(3, username="taken", external_id="hr-taken"),
        csv_row(4, email="wifi@shared.example", wifi_homesite="LON01"),  # another operator's Wi-Fi username
        csv_row(5, email="wifi@shared.example", wifi="n"),  # without Wi-Fi the email is free here
    ]
    found = check_new_users(db, w.studio, rows, actor=w.admin)
    assert checks(found) == [
        [("email", "email_taken")],
        [("external_id", "external_id_taken"), ("username", "username_taken")],
        [("email", "wifi_username_taken")],
        [("email", "duplicate_in_file")],
    ]
    assert found[0].message == "Email must be unique within the operator."
    assert found[1].errors[1]["message"] == "Username is already in use."
    assert found[2].message == wifi.WifiUsernameTaken.default_message


def test_every_error_of_a_row_comes_at_once(db, world):
    row = csv_row(
        first_name="",
        email="not an email",
        mobile="abc",
        language="xx",
        wifi_homesite="BER01",
        wifi_device_limit="12",
        invite_mobile_app="y",
        invite_portal="perhaps",
        role="boss",
        groups="Ghosts",
    )
    [check] = check_new_users(db, world.bureau, [row], actor=world.admin)  # no mobile app at the bureau
    assert sorted((e["field"], e["code"]) for e in check.errors) == sorted(
        [
            ("invite_portal", "invalid_boolean"),
            ("first_name", "required"),
            ("email", "invalid_email"),
            ("mobile", "invalid_phone"),
            ("language", "invalid_language"),
            ("groups", "unknown_group"),
            ("wifi_device_limit", "invalid_device_limit"),
            ("role", "invalid_role"),
            ("invite_mobile_app", "app_not_offered"),
        ]
    )
    assert check.code == "validation_error" and "first_name: This field is required." in (check.message or "")


def test_duplicates_in_the_list_fail_every_later_row_naming_the_first(db, world):
    rows = [
        csv_row(2, email="same@studio.example", username="u1"),
        csv_row(3, email="SAME@studio.example"),
        csv_row(4, email="other@studio.example", username="u1", external_id="x"),
        csv_row(5, email="same@studio.example"),
        csv_row(6, email="third@studio.example", external_id="x"),
    ]
    found = check_new_users(db, world.studio, rows, actor=world.admin)
    assert checks(found) == [
        "create",
        [("email", "duplicate_in_file")],
        [("username", "duplicate_in_file")],
        [("email", "duplicate_in_file")],
        [("external_id", "duplicate_in_file")],
    ]
    assert [found[n].message for n in (1, 2, 3)] == [
        "Same email as line 2.",
        "Same username as line 2.",
        "Same email as line 2.",
    ]


def test_a_row_that_fails_is_untouched_and_the_others_are_created(db, world):
    before = table_counts(db)
    rows = [
        csv_row(2, wifi_homesite="LON01", invite_portal="y"),
        csv_row(3, mobile="nope", wifi_homesite="LON01"),
    ]
    rows.append(csv_row(4, wifi_homesite="PAR01", invite_mobile_app="y"))
    results = create_users(db, world.studio, rows, actor=world.admin)
    assert [r.outcome for r in results] == [RowOutcome.CREATED, None, RowOutcome.CREATED]
    assert [r.line for r in results] == [2, 3, 4] and results[1].code == "invalid_phone"
    after = table_counts(db)
    assert after["occupier_users"] - before["occupier_users"] == 2
    assert after["wifi_accounts"] - before["wifi_accounts"] == 2
    assert after["app_accounts"] - before["app_accounts"] == 2
    assert after["outbox_messages"] - before["outbox_messages"] == 4
    assert db.scalar(select(OccupierUser.id).where(OccupierUser.email_key == "ada3@studio.example")) is None


def test_the_preview_writes_nothing_and_plans_each_row(db, world):
    make_user(db, world.studio, email="here@studio.example")
    rows = [
        csv_row(2, wifi_homesite="LON01", invite_portal="y", role="admin"),
        csv_row(3, email="here@studio.example"),
    ]
    before = table_counts(db)
    for policy, planned in (("fail", "create"), ("skip", "skip"), ("update", "update")):
        found = check_new_users(db, world.studio, rows, on_existing=policy, actor=world.admin)
        assert found[0].action is RowAction.CREATE
        assert (found[1].action.value if found[1].action else found[1].code) == (
            "email_taken" if policy == "fail" else planned
        )
    assert table_counts(db) == before


# --- an email that exists: fail, skip, update ------------------------------------------------------


def test_skip_leaves_the_existing_user_alone_and_creates_the_rest(db, world):
    existing = make_user(db, world.studio, email="here@studio.example", first_name="Old")
    before = user_columns(db, existing.id)
    rows = [csv_row(2, email="Here@studio.example", first_name="New", mobile="bad"), csv_row(3)]
    results = create_users(db, world.studio, rows, on_existing="skip", actor=world.admin)
    assert (results[0].outcome, results[0].user_id) == (RowOutcome.SKIPPED, existing.id)
    assert results[1].outcome is RowOutcome.CREATED
    assert user_columns(db, existing.id) == before


def test_update_changes_the_filled_details_and_adds_what_the_user_has_not_got(db, world):
    w = world
    group = groups.create_group(db, actor=w.admin, name="Door A", site_id=w.lon.id)
    plain = make_user(db, w.studio, email="plain@studio.example", job_title="Intern", mobile="+447911123456")
    equipped = make_user(db, w.studio, email="equipped@studio.example")
    make_account(db, equipped, role="user", portal=True)
    wifi.create_wifi_account(db, equipped, homesite_id=w.lon.id, actor=w.admin)
    wifi.confirm_provisioning(db, wifi.account_of(db, equipped).id)  # type: ignore[union-attr]
    equipped_wifi = wifi.account_of(db, equipped)
    db.flush()
    rows = [
        csv_row(
            2,
            email="plain@studio.example",
            first_name="Ada",
            job_title="Engineer",
            wifi_homesite="PAR01",
            invite_portal="y",
            groups="Door A",
        ),
        csv_row(
            3,
            email="equipped@studio.example",
            first_name="Grace",
            wifi_homesite="PAR01",
            role="admin",
            invite_mobile_app="y",
        ),
    ]
    assert [c.action for c in check_new_users(db, w.studio, rows, on_existing="update", actor=w.admin)] == [
        RowAction.UPDATE,
        RowAction.UPDATE,
    ]
    results = create_users(db, w.studio, rows, on_existing="update", actor=w.admin)
    assert [(r.outcome, r.user_id) for r in results] == [
        (RowOutcome.UPDATED, plain.id),
        (RowOutcome.UPDATED, equipped.id),
    ]
    db.expire_all()
    plain = db.get_one(OccupierUser, plain.id)
    assert (plain.first_name, plain.last_name, plain.job_title, plain.mobile) == (
        "Ada",
        "Lovelace",
        "Engineer",
        "+447911123456",  # blank in the row: kept
    )
    assert (wifi.account_of(db, plain) or WifiAccount()).homesite_id == w.par.id
    assert (accounts.account_of(db, plain) or AppAccount()).portal == "INVITED"
    assert groups.user_group_ids(db, plain.id) == [group.id]
    assert [e[0] for e in events_of(db, plain.id)][-4:] == [
        "user.updated",
        "user.groups_changed",
        "app_account.invited",
        "wifi.created",
    ]
    # what the user had is left as it was: the Wi-Fi homesite, the role and the invitations
    equipped = db.get_one(OccupierUser, equipped.id)
    assert equipped.first_name == "Grace"
    assert (
        (wifi.account_of(db, equipped) or WifiAccount()).homesite_id == equipped_wifi.homesite_id == w.lon.id
    )  # type: ignore[union-attr]
    account = accounts.account_of(db, equipped)
    assert account is not None and (account.role, account.mobile_app) == ("user", "NOT_INVITED")


def test_update_refuses_a_busy_user_and_an_email_of_another_occupier(db, world):
    w = world
    busy = make_user(db, w.studio, email="busy@studio.example")
    busy.busy_owner, busy.busy_until = "bulk:99", utcnow() + timedelta(minutes=5)
    make_user(db, w.bureau, email="theirs@bureau.example")
    db.flush()
    rows = [csv_row(2, email="busy@studio.example", job_title="X"), csv_row(3, email="theirs@bureau.example")]
    for policy in ("skip", "update"):
        found = check_new_users(db, w.studio, rows, on_existing=policy, actor=w.admin)
        assert found[1].code == "email_taken"  # another tenant's user: neither skipped nor touched
    found = check_new_users(db, w.studio, rows, on_existing="update", actor=w.admin)
    assert found[0].code == "action_in_progress"
    results = create_users(db, w.studio, rows, on_existing="update", actor=w.admin)
    assert [r.code for r in results] == ["action_in_progress", "email_taken"]
    assert db.get_one(OccupierUser, busy.id).job_title is None


# --- search, statements, races ---------------------------------------------------------------------


def test_search_finds_bulk_created_users_and_the_index_keeps_following_single_creates(db, world, backend):
    rows = [
        csv_row(n, first_name=f"Zephyrine{n}", last_name="Quarterstaff", email=f"zq{n}@studio.example")
        for n in range(2, 6)
    ]
    results = create_users(db, world.studio, rows, actor=world.admin)
    db.flush()
    found = queries.list_users(db, world.admin, q="quarterst", limit=50).items
    assert sorted(u.id for u in found) == sorted(r.user_id for r in results if r.user_id)
    assert [u.id for u in queries.list_users(db, world.admin, q="zq3@studio", limit=50).items] == [
        results[1].user_id
    ]
    later = make_user(db, world.studio, first_name="Quentin", last_name="Quarterstaff")
    db.flush()
    assert later.id in {u.id for u in queries.list_users(db, world.admin, q="quarterst", limit=50).items}
    if backend == "sqlite":
        trigger = db.connection().exec_driver_sql(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'occupier_users_fts_ai'"
        )
        assert trigger.scalar() == 1


def test_the_number_of_statements_does_not_grow_with_the_number_of_rows(db, world):
    groups.create_group(db, actor=world.admin, name="Door A", site_id=world.lon.id)

    def statements(first: int, count: int) -> tuple[int, int]:
        rows = [
            csv_row(
                n,
                wifi_homesite=("LON01", "PAR01")[n % 2],
                invite_portal="y",
                invite_mobile_app="yn"[n % 2],
                role="admin" if n % 5 == 0 else "",
                groups="Door A" if n % 3 else "",
            )
            for n in range(first, first + count)
        ]
        rows.append(csv_row(first + count, mobile="bad"))
        db.flush()
        seen: list[str] = []

        def count_statement(*_args: Any) -> None:
            seen.append("x")

        connection = db.connection()
        event.listen(connection, "before_cursor_execute", count_statement)
        try:
            check_new_users(db, world.studio, rows, actor=world.admin)
            preview = len(seen)
            results = create_users(db, world.studio, rows, actor=world.admin)
            db.flush()
        finally:
            event.remove(connection, "before_cursor_execute", count_statement)
        assert sum(r.ok for r in results) == count
        return preview, len(seen) - preview

    few, many = statements(100, 3), statements(200, 40)
    assert few == many
    assert many[0] <= 8 and many[1] <= 30, many


def test_a_row_that_lost_a_race_for_its_email_fails_and_the_others_are_written(db, world, monkeypatch):
    """Another transaction takes an email between the check and the insert: the insert fails, the rows
    are checked again and written without the one that lost."""
    make_user(db, world.studio, email="raced@studio.example")
    real = bulk._read_facts
    calls = []

    def blind_first(*args: Any, **kwargs: Any) -> bulk._Facts:
        facts = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # create_users' first check: as if the user did not exist yet
            facts.emails.clear()
        return facts

    monkeypatch.setattr(bulk, "_read_facts", blind_first)
    rows = [
        csv_row(2),
        csv_row(3, email="raced@studio.example", wifi_homesite="LON01"),
        csv_row(4, wifi_homesite="LON01"),
    ]
    check_new_users(db, world.studio, rows, actor=world.admin)
    results = create_users(db, world.studio, rows, actor=world.admin)
    assert [r.outcome for r in results] == [RowOutcome.CREATED, None, RowOutcome.CREATED]
    assert results[1].code == "email_taken" and len(calls) == 3
    db.flush()
    assert db.scalar(select(func.count()).select_from(WifiAccount)) == 1


# --- scope and permission --------------------------------------------------------------------------


def test_only_those_who_manage_the_occupiers_users_may_create_them(db, world):
    w = world
    row = [csv_row()]
    own_admin = Actor(ActorKind.OCCUPIER_USER, 1, w.operator.id, Role.OCCUPIER_ADMIN, occupier_id=w.studio.id)
    assert create_users(db, w.studio, row, actor=own_admin)[0].ok
    neighbour = Actor(ActorKind.OCCUPIER_USER, 2, w.operator.id, Role.OCCUPIER_ADMIN, occupier_id=w.bureau.id)
    member = Actor(ActorKind.OCCUPIER_USER, 3, w.operator.id, Role.OCCUPIER_USER, occupier_id=w.studio.id)
    far_manager = Actor(ActorKind.STAFF, 4, w.operator.id, Role.SITE_MANAGER, site_ids=frozenset({w.ber.id}))
    near_manager = Actor(ActorKind.STAFF, 5, w.operator.id, Role.SITE_MANAGER, site_ids=frozenset({w.par.id}))
    stranger = admin_actor(make_operator(db))
    before = table_counts(db)
    for actor, error in (
        (neighbour, NotFound),
        (far_manager, NotFound),
        (stranger, NotFound),
        (member, PermissionDenied),
    ):
        for action in (check_new_users, create_users):
            with pytest.raises(error):
                action(db, w.studio, [csv_row(3)], actor=actor)
    assert table_counts(db) == before
    assert create_users(db, w.studio, [csv_row(4)], actor=near_manager)[0].ok


def test_a_decommissioning_occupier_refuses_the_whole_call(db, world):
    occupiers.start_decommission(db, world.studio, actor=world.admin)
    for action in (check_new_users, create_users):
        with pytest.raises(OccupierDecommissioned):
            action(db, world.studio, [csv_row()], actor=world.admin)


# --- reading rows ------------------------------------------------------------------------------------


def test_a_csv_row_is_read_as_typed():
    row = row_from_csv(
        {
            "first_name": "  Ada ",
            "last_name": "Lovelace",
            "email": "ada@x.example",
            "job_title": "",
            "wifi": "",
            "wifi_homesite": "LON01",
            "wifi_device_limit": " 3 ",
            "role": "ADMIN",
            "invite_portal": "Yes",
            "invite_mobile_app": "0",
            "groups": " Door A ; ;Lift ",
        },
        line=7,
    )
    assert (row.line, row.first_name, row.job_title, row.wifi, row.wifi_device_limit) == (
        7,
        "Ada",
        None,
        None,
        3,
    )
    assert (row.role, row.invite_portal, row.invite_mobile_app, row.groups) == (
        "admin",
        True,
        False,
        ["Door A", "Lift"],
    )
    assert row.problems == []
    for text, value in (
        ("y", True),
        ("N", False),
        ("true", True),
        ("FALSE", False),
        ("1", True),
        ("no", False),
    ):
        assert row_from_csv({"wifi": text}, line=2).wifi is value
    assert NewUserRow.from_payload(7, row.payload()) == row


def test_the_shortcut_for_the_input_model_gives_the_models_answer():
    rng = random.Random(5)
    pieces = [
        "",
        " ",
        "a",
        "Ab",
        "x" * 99,
        "x" * 100,
        "x" * 101,
        "é",
        "İ",
        "\u00a0b",
        "b\x1f",
        "EN",
        "fr",
        "nl ",
    ]
    names = ["first_name", "last_name", "email", "job_title", "mobile", "language", "username"]
    for _ in range(3000):
        data: dict[str, Any] = {}
        for name in names:
            choice = rng.random()
            if choice < 0.1:
                continue
            if choice < 0.2 and name not in ("first_name", "last_name", "email"):
                data[name] = None
            elif choice < 0.25:
                data[name] = rng.choice([1, 2.5])
            else:
                data[name] = "".join(
                    rng.choice(pieces + list(string.ascii_letters)) for _ in range(rng.randint(1, 3))
                )
        fast = bulk._NEW_USER_SHAPE.values(data)
        try:
            model = UserCreate.model_validate(data).model_dump(exclude={"group_ids"})
        except ValidationError:
            model = None
        if fast is not None:
            assert fast == model, data


def test_sealed_batches_open_as_fernet_tokens_each_with_its_own_iv():
    box = SecretBox("test-secret-key-not-for-production")
    items = [{"password": f"pw-{n}"} for n in range(50)] + [
        {"link": "https://x.example/" + "k" * n} for n in range(40)
    ]
    tokens = box.seal_many(items)
    assert [box.open(t) for t in tokens] == items
    fernet = Fernet(base64.urlsafe_b64encode(box._signing_key + box._encryption_key))
    assert [json.loads(fernet.decrypt(t.encode())) for t in tokens] == items
    ivs = {base64.urlsafe_b64decode(t)[9:25] for t in tokens}  # version, timestamp, then the IV
    assert len(ivs) == len(tokens)
    assert box.seal_many([]) == []
