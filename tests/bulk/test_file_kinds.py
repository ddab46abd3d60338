"""The kinds that read files, through the engine with real commits: create (users.bulk under it) and
deactivate / reactivate keyed by email (seed 004); and delete's set-based chunks with the search index
tidied when the job ends."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from occupant.accounts.models import AppAccount
from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor
from occupant.bulk import engine
from occupant.bulk.kinds.base import Item
from occupant.bulk.models import BulkItem, BulkJob, JobState
from occupant.groups import service as groups
from occupant.kit.db import transaction
from occupant.kit.errors import FieldErrors
from occupant.notify.models import OutboxMessage
from occupant.occupiers.models import Occupier
from occupant.sites.models import Site
from occupant.users.filters import UserFilter, matching_ids
from occupant.users.models import OccupierUser, UserStatus
from occupant.wifi.models import WifiAccount
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_user


@dataclass
class World:
    factory: sessionmaker[Session]
    admin: Actor
    occupier_id: int
    other_occupier_id: int
    group_id: int


@pytest.fixture
def world(committed: sessionmaker[Session]) -> World:
    with transaction(committed) as s:
        operator = make_operator(s, name="Atelier Workspaces")
        lon = make_site(s, operator, code="LON01", nas=["ap-lon01"])
        par = make_site(s, operator, code="PAR01", country="FR", nas=["ap-par01"])
        admin = admin_actor(operator, staff_id=7)
        studio = make_occupier(s, operator, sites_=[lon, par], primary_site_id=lon.id, name="Studio Nord")
        bureau = make_occupier(s, operator, sites_=[par], name="Bureau Ost")
        group = groups.create_group(s, name="Floor 3", occupier_id=studio.id, actor=admin)
        return World(committed, admin, studio.id, bureau.id, group.id)


def upload(world: World, kind: str, text: str, **params: object) -> BulkJob:
    with transaction(world.factory) as s:
        job = engine.submit_file(
            s,
            kind=kind,
            data=text.encode(),
            filename=f"{kind}.csv",
            actor=world.admin,
            occupier=s.get(Occupier, world.occupier_id),
            params=params or None,
        )
        s.expunge(job)
        return job


def run(world: World, job_id: int) -> JobState | None:
    with transaction(world.factory) as s:
        engine.confirm(s, s.get(BulkJob, job_id), actor=world.admin)
    return engine.run_job(world.factory, job_id)


def items(world: World, job_id: int) -> list[tuple[int, str, str | None, str | None]]:
    with world.factory() as s:
        rows = s.execute(
            select(BulkItem.position, BulkItem.status, BulkItem.outcome, BulkItem.code)
            .where(BulkItem.job_id == job_id)
            .order_by(BulkItem.position)
        ).all()
    return [(p, st, o, c) for p, st, o, c in rows]


def user_by_email(s: Session, email: str) -> OccupierUser | None:
    return s.scalar(select(OccupierUser).where(OccupierUser.email_key == email.lower()))


CREATE = """first_name,last_name,email,wifi,wifi_homesite,role,invite_portal,groups,username
Ada,Lovelace,ada@studio.example,y,PAR01,admin,y,Floor 3,ada
Bo,,not-an-email,,,,,,
Cy,Cee,cy@studio.example,,,,,,ada
Di,Dee,di@studio.example,,NOPE1,,,,
Ed,Eff,ed@studio.example,n,,,,,
"""


def test_create_previews_every_rows_problems_then_makes_users_with_their_services(world: World) -> None:
    job = upload(world, "create", CREATE)
    assert job.state == JobState.PREVIEW and (job.total, job.failed) == (5, 3)
    preview = {p: (st, o, c) for p, st, o, c in items(world, job.id)}
    assert preview[2] == ("PENDING", "created", None)  # the plan is shown
    assert preview[3][2] == "validation_error"  # blank last name and a bad email, both reported
    assert preview[4][2] == "duplicate_in_file"  # username of line 2
    assert preview[5][2] == "invalid_homesite"
    with world.factory() as s:
        assert user_by_email(s, "ada@studio.example") is None  # the preview wrote no user
        message = s.scalar(select(BulkItem.message).where(BulkItem.job_id == job.id, BulkItem.position == 3))
        assert message is not None and "last_name" in message and "email" in message

    assert run(world, job.id) == JobState.PARTIALLY_DONE
    assert [(p, st, o) for p, st, o, _ in items(world, job.id)] == [
        (2, "SUCCEEDED", "created"),
        (3, "FAILED", None),
        (4, "FAILED", None),
        (5, "FAILED", None),
        (6, "SUCCEEDED", "created"),
    ]
    with world.factory() as s:
        ada = user_by_email(s, "ada@studio.example")
        ed = user_by_email(s, "ed@studio.example")
        assert ada is not None and ed is not None
        wifi = s.scalar(select(WifiAccount).where(WifiAccount.user_id == ada.id))
        par = s.scalar(select(Site.id).where(Site.code == "PAR01"))
        assert wifi is not None and wifi.homesite_id == par
        assert (
            s.scalar(select(func.count()).select_from(WifiAccount).where(WifiAccount.user_id == ed.id)) == 0
        )
        account = s.scalar(select(AppAccount).where(AppAccount.user_id == ada.id))
        assert account is not None and account.role == "admin"
        kinds = set(s.scalars(select(OutboxMessage.template).where(OutboxMessage.occupier_user_id == ada.id)))
        assert kinds == {"wifi_password", "app_invitation"}
        assert groups.user_group_ids(s, ada.id) == [world.group_id]
        made = s.scalars(
            select(BulkItem.user_id).where(BulkItem.job_id == job.id, BulkItem.status == "SUCCEEDED")
        ).all()
        assert sorted(made) == sorted([ada.id, ed.id])  # the items point at the users they made
        payloads = s.scalars(
            select(BulkItem.payload).where(BulkItem.job_id == job.id, BulkItem.status == "SUCCEEDED")
        ).all()
        assert payloads == [None, None]  # applied rows keep no copy of the data


def test_create_on_existing_skip_and_update_and_fail(world: World) -> None:
    with transaction(world.factory) as s:
        make_user(s, s.get(Occupier, world.occupier_id), email="old@studio.example", job_title="Intern")
    text = "first_name,last_name,email,job_title\nOld,Timer,old@studio.example,Director\nNew,One,new@s.ex,\n"
    failing = upload(world, "create", text)
    assert [c for *_, c in items(world, failing.id)] == ["email_taken", None]
    skipping = upload(world, "create", text, on_existing="skip")
    assert [o for _, _, o, _ in items(world, skipping.id)] == ["skipped", "created"]
    updating = upload(world, "create", text.replace("new@s.ex", "newer@s.ex"), on_existing="update")
    assert run(world, updating.id) == JobState.DONE
    assert [o for _, _, o, _ in items(world, updating.id)] == ["updated", "created"]
    with world.factory() as s:
        old = user_by_email(s, "old@studio.example")
        assert old is not None and old.job_title == "Director"
    with pytest.raises(FieldErrors) as refused:
        upload(world, "create", text, on_existing="merge")
    assert [e["field"] for e in refused.value.errors] == ["on_existing"]


def test_create_template_lists_the_design_columns() -> None:
    header = engine.template("create").decode("utf-8-sig").splitlines()[0]
    assert header.split(",")[:3] == ["first_name", "last_name", "email"]
    assert {"wifi_homesite", "invite_mobile_app", "groups", "remove_from_group"} & set(header.split(",")) == {
        "wifi_homesite",
        "invite_mobile_app",
        "groups",
    }


def _people(world: World) -> list[OccupierUser]:
    with transaction(world.factory) as s:
        studio = s.get(Occupier, world.occupier_id)
        bureau = s.get(Occupier, world.other_occupier_id)
        assert studio is not None and bureau is not None
        people = [
            make_user(s, studio, email="ann@studio.example", username="ann", external_id="HR-1"),
            make_user(s, studio, email="bea@studio.example", username="bea"),
            make_user(s, studio, email="cal@studio.example"),
            make_user(s, bureau, email="dan@bureau.example"),
        ]
        groups.add_memberships_many(s, [(world.group_id, people[0].id), (world.group_id, people[1].id)])
        for person in people:
            s.expunge(person)
        return people


def test_deactivate_from_a_file_matches_by_email_and_checks_the_other_identifiers(world: World) -> None:
    ann, bea, cal, dan = _people(world)
    text = (
        "Email,User ID,Username,External ID,Occupier,Remove from group\n"
        f"ANN@studio.example,{ann.id},ann,HR-1,{world.occupier_id},y\n"
        f"bea@studio.example,,wrong,,,\n"
        ",,bea,,,\n"
        "nobody@studio.example,,,,,\n"
        f"cal@studio.example,,,,,\n"
        f"dan@bureau.example,,,,,\n"
        f"cal@studio.example,,,,,\n"
    )
    job = upload(world, "deactivate", text)
    codes = {p: c for p, _, _, c in items(world, job.id)}
    assert codes == {
        2: None,
        3: "identifier_mismatch",
        4: "required",
        5: "not_found",
        6: None,
        7: "not_found",  # another occupier's user: this job is Studio Nord's
        8: "duplicate_in_file",
    }
    assert run(world, job.id) == JobState.PARTIALLY_DONE
    with world.factory() as s:
        status = {u: s.get(OccupierUser, u.id).status for u in (ann, bea, cal, dan)}  # type: ignore[union-attr]
        assert status == {
            ann: UserStatus.DEACTIVATED,
            bea: UserStatus.ACTIVE,
            cal: UserStatus.DEACTIVATED,
            dan: UserStatus.ACTIVE,
        }
        assert groups.user_group_ids(s, ann.id) == []  # remove_from_group y
        assert groups.user_group_ids(s, bea.id) == [world.group_id]

    again = upload(world, "reactivate", "email\nann@studio.example\nbea@studio.example\n")
    assert [c for *_, c in items(world, again.id)] == [None, "invalid_state"]
    assert run(world, again.id) == JobState.PARTIALLY_DONE
    with world.factory() as s:
        assert s.get(OccupierUser, ann.id).status == UserStatus.ACTIVE  # type: ignore[union-attr]


def test_a_deleted_selection_is_gone_from_search_and_each_has_one_audit_event(world: World) -> None:
    people = _people(world)
    ids = [p.id for p in people[:3]]
    with world.factory() as s:
        assert matching_ids(s, world.admin, UserFilter(q="studio.example")) == ids
    with transaction(world.factory) as s:
        job = engine.submit(
            s,
            kind="delete",
            items=[Item(position=n, user_id=uid) for n, uid in enumerate(ids, 1)],
            actor=world.admin,
            occupier=s.get(Occupier, world.occupier_id),
        )
        job_id = job.id
    assert run(world, job_id) == JobState.DONE
    with world.factory() as s:
        assert s.scalar(select(func.count()).select_from(OccupierUser).where(OccupierUser.id.in_(ids))) == 0
        assert matching_ids(s, world.admin, UserFilter(q="studio.example")) == []
        events = s.scalars(
            select(AuditEvent.target_id).where(
                AuditEvent.action == "user.deleted", AuditEvent.target_id.in_([str(i) for i in ids])
            )
        ).all()
        assert sorted(events) == sorted(str(i) for i in ids)
        identifiers = s.scalars(select(BulkItem.identifier).where(BulkItem.job_id == job_id)).all()
        assert identifiers == [None, None, None]  # the job keeps no name of a deleted user
