"""Download users, the action and the stream: the file's rows and cells, who may download what, the audit
event, and a bounded number of queries however many users there are."""

from __future__ import annotations

import csv
import io
import math

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.groups import service as groups
from occupant.kit.errors import NotFound, PermissionDenied
from occupant.users import export
from occupant.users.export import HEADER, start_export, stream_export
from occupant.users.filters import UserFilter
from tests.factories import (
    admin_actor,
    make_account,
    make_occupier,
    make_operator,
    make_site,
    make_user,
    site_manager_actor,
)
from tests.users.support import StatementLog, bulk_users
from tests.wifi.support import give_wifi


def rows_of(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")  # the BOM: Excel reads UTF-8 right
    return list(csv.DictReader(io.StringIO(text[1:])))


def download(actor: Actor, f: UserFilter, db: Session) -> list[dict[str, str]]:
    started = start_export(db, f, actor=actor)
    return rows_of("".join(stream_export(started)))


def occupier_admin(
    user_id: int, operator_id: int, occupier_id: int, role: Role = Role.OCCUPIER_ADMIN
) -> Actor:
    return Actor(
        kind=ActorKind.OCCUPIER_USER, id=user_id, operator_id=operator_id, role=role, occupier_id=occupier_id
    )


def test_every_column_of_a_user_with_wifi_account_and_groups(db):
    operator = make_operator(db, name="Workspace Europe")
    admin = admin_actor(operator)
    lon = make_site(db, operator, code="LON01")
    acme = make_occupier(db, operator, sites_=[lon], name="Acme Ltd")
    ada = make_user(
        db,
        acme,
        first_name="Ada",
        last_name="Lovelace",
        email="Ada@Acme.example",
        job_title="Engineer",
        mobile="+447911123456",
        direct_line="020 7946 0958",
        language="fr",
        employee_number="E-17",
        username="ada",
        external_id="okta-1",
    )
    give_wifi(db, ada, homesite=lon, limit=3)
    make_account(db, ada, role="admin", portal=True)
    doors = groups.create_group(db, actor=admin, name="Doors", site_id=lon.id)
    lift = groups.create_group(db, actor=admin, name="Lift", occupier_id=acme.id)
    groups.set_user_groups(db, ada, [lift.id, doors.id], actor=admin)
    bob = make_user(db, acme, first_name="Bob", last_name="Babbage")
    db.flush()

    rows = download(admin, UserFilter(occupier_id=acme.id), db)
    assert list(rows[0]) == HEADER
    assert [r["last_name"] for r in rows] == ["Babbage", "Lovelace"]  # name order
    assert rows[1] == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "Ada@acme.example",
        "job_title": "Engineer",
        "mobile": "'+447911123456",  # E.164 starts with +: neutralised like every such cell
        "direct_line": "'+442079460958",
        "language": "fr",
        "employee_number": "E-17",
        "username": "ada",
        "external_id": "okta-1",
        "status": "ACTIVE",
        "wifi_status": "ACTIVE",
        "wifi_homesite": "LON01",
        "wifi_device_limit": "3",
        "account_status": "AWAITING_SIGN_IN",
        "role": "admin",
        "portal": "INVITED",
        "mobile_app": "NOT_INVITED",
        "groups": "Doors;Lift",
        "created_at": ada.created_at.isoformat(sep=" ", timespec="seconds"),
        "occupier": "Acme Ltd",
        "user_id": str(ada.id),
    }
    assert {k: rows[0][k] for k in ("wifi_status", "wifi_homesite", "account_status", "role", "groups")} == {
        "wifi_status": "",
        "wifi_homesite": "",
        "account_status": "NOT_INVITED",
        "role": "",
        "groups": "",
    }
    assert rows[0]["user_id"] == str(bob.id)


@pytest.mark.parametrize("value", ["=cmd()", "+SUM(1)", "-2+3", "@A1"])  # tab, CR: names are stripped
def test_formulas_are_neutralised(db, value):
    operator = make_operator(db)
    acme = make_occupier(db, operator)
    make_user(db, acme, first_name=value, job_title=value)
    db.flush()
    (row,) = download(admin_actor(operator), UserFilter(occupier_id=acme.id), db)
    assert row["first_name"] == row["job_title"] == "'" + value


def test_the_download_is_logged_without_the_search(db):
    operator = make_operator(db)
    acme = make_occupier(db, operator, name="Acme Ltd")
    make_user(db, acme, first_name="Ada", last_name="Lovelace")
    make_user(db, acme)
    db.flush()
    admin = admin_actor(operator, staff_id=7)
    started = start_export(db, UserFilter(occupier_id=acme.id, q="lovelace", wifi="none"), actor=admin)
    assert started.total == 1
    assert started.filename.startswith("users-acme-ltd-") and started.filename.endswith(".csv")
    (event,) = db.scalars(select(AuditEvent).where(AuditEvent.action == "users.exported"))
    assert (event.actor_type, event.actor_id, event.target_type, event.target_id, event.occupier_id) == (
        "staff",
        "7",
        "occupier",
        str(acme.id),
        acme.id,
    )
    assert event.fields == ["occupier_id", "q", "wifi"]
    assert event.changes == {"filter": {"occupier_id": acme.id, "wifi": "none"}, "rows": 1}
    assert "lovelace" not in str(event.changes).lower()


def test_the_operator_wide_file_is_named_after_the_operator(db):
    operator = make_operator(db, name="Workspace Europe")
    started = start_export(db, UserFilter(), actor=admin_actor(operator))
    assert started.filename.startswith("users-workspace-europe-")
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "users.exported")).one()
    assert (event.target_type, event.target_id, event.occupier_id) == ("operator", str(operator.id), None)


def test_who_may_download_what(db):
    operator = make_operator(db)
    lon, par = make_site(db, operator, code="LON01"), make_site(db, operator, code="PAR01")
    acme = make_occupier(db, operator, sites_=[lon], name="Acme")
    globex = make_occupier(db, operator, sites_=[par], name="Globex")
    ada = make_user(db, acme, first_name="Ada")
    make_user(db, globex, first_name="Gloria")
    db.flush()
    manager = site_manager_actor(operator, [lon.id])
    assert [r["first_name"] for r in download(manager, UserFilter(), db)] == ["Ada"]
    with pytest.raises(NotFound):
        start_export(db, UserFilter(occupier_id=globex.id), actor=manager)
    acme_admin = occupier_admin(ada.id, operator.id, acme.id)
    started = start_export(db, UserFilter(), actor=acme_admin)
    assert started.filter.occupier_id == acme.id and started.filename.startswith("users-acme-")
    assert [r["first_name"] for r in rows_of("".join(stream_export(started)))] == ["Ada"]
    with pytest.raises(NotFound):
        start_export(db, UserFilter(occupier_id=globex.id), actor=acme_admin)
    with pytest.raises(PermissionDenied):
        start_export(db, UserFilter(), actor=occupier_admin(ada.id, operator.id, acme.id, Role.OCCUPIER_USER))
    stranger = admin_actor(make_operator(db))
    with pytest.raises(NotFound):
        start_export(db, UserFilter(occupier_id=acme.id), actor=stranger)
    assert download(stranger, UserFilter(), db) == []


def test_filters_select_the_rows(db):
    operator = make_operator(db)
    lon = make_site(db, operator, code="LON01")
    acme = make_occupier(db, operator, sites_=[lon])
    with_wifi = make_user(db, acme, first_name="Wendy")
    give_wifi(db, with_wifi, homesite=lon)
    make_user(db, acme, first_name="Nemo")
    db.flush()
    admin = admin_actor(operator)
    assert [r["first_name"] for r in download(admin, UserFilter(occupier_id=acme.id, wifi="none"), db)] == [
        "Nemo"
    ]
    assert [r["first_name"] for r in download(admin, UserFilter(wifi_homesite_id=lon.id), db)] == ["Wendy"]


def test_3000_users_stream_in_a_few_bounded_queries(db, engine):
    operator = make_operator(db)
    lon = make_site(db, operator, code="LON01")
    acme = make_occupier(db, operator, sites_=[lon], name="Acme")
    group = groups.create_group(db, actor=admin_actor(operator), name="Doors", site_id=lon.id)
    bulk_users(db, acme, 3000, homesite_id=lon.id, group_id=group.id)
    started = start_export(db, UserFilter(occupier_id=acme.id), actor=admin_actor(operator))
    with StatementLog(engine) as log:
        chunks = stream_export(started)
        first = next(chunks)
        read_before_first_chunk = len(log.selects)
        rest = "".join(chunks)
    rows = rows_of(first + rest)
    assert len(rows) == started.total == 3000
    assert rows[0]["groups"] == "Doors" and rows[0]["wifi_homesite"] == "LON01"
    assert rows[-1]["portal"] == "INVITED"
    batches = math.ceil(3000 / export.BATCH)
    assert len(log.selects) == 2 * batches  # users, then their groups, per batch: no query per user
    assert read_before_first_chunk == 2  # the first chunk leaves after one batch, not after all of them
    users_queries = [s for s in log.selects if "FROM occupier_users" in s]
    assert len(users_queries) == batches and all("LIMIT" in s for s in users_queries)


def test_a_smaller_batch_means_more_queries_of_the_same_kind(db, engine):
    operator = make_operator(db)
    lon = make_site(db, operator, code="LON01")
    acme = make_occupier(db, operator, sites_=[lon])
    group = groups.create_group(db, actor=admin_actor(operator), name="Doors", site_id=lon.id)
    ids = bulk_users(db, acme, 250, homesite_id=lon.id, group_id=group.id)
    with StatementLog(engine) as log:
        rows = list(export.export_rows(db, admin_actor(operator), UserFilter(occupier_id=acme.id), batch=100))
    assert [int(r[-1]) for r in rows] == ids  # every user once, in name order (= insertion order here)
    assert len(log.selects) == 6
