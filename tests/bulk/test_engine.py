"""The bulk engine with real commits: preview, confirm, run chunk by chunk, outcomes, cancel, retry, faults.

Jobs here are deletes and deactivations of a selection (their actions are the single-user ones); the
kinds' own rules are tested with each kind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from occupant.accounts.models import AccountRole
from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.bulk import engine
from occupant.bulk.kinds import KINDS
from occupant.bulk.kinds.base import Item
from occupant.bulk.models import BulkItem, BulkJob, JobState
from occupant.kit.clock import utcnow
from occupant.kit.db import transaction
from occupant.kit.errors import ActionInProgress, OccupierDecommissioned
from occupant.occupiers import service as occupiers
from occupant.occupiers.models import Occupier
from occupant.users import bulk_lifecycle
from occupant.users import service as users
from occupant.users.models import OccupierUser, UserStatus
from occupant.users.schemas import UserUpdate
from tests.factories import admin_actor, make_account, make_occupier, make_operator, make_user


@dataclass
class World:
    factory: sessionmaker[Session]
    admin: Actor
    occupier_id: int
    user_ids: list[int]


@pytest.fixture
def world(committed: sessionmaker[Session]) -> World:
    with transaction(committed) as s:
        operator = make_operator(s)
        occupier = make_occupier(s, operator)
        ids = [make_user(s, occupier, first_name=f"P{n:02d}").id for n in range(12)]
        return World(committed, admin_actor(operator, staff_id=7), occupier.id, ids)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for kind in KINDS.values():
        monkeypatch.setattr(type(kind), "chunk_size", 5)
    yield


def submit(world: World, kind: str, ids: list[int], *, actor: Actor | None = None, **params: object) -> int:
    with transaction(world.factory) as s:
        occupier = s.get(Occupier, world.occupier_id)
        items = [Item(position=n, user_id=uid) for n, uid in enumerate(ids, 1)]
        job = engine.submit(
            s, kind=kind, items=items, actor=actor or world.admin, occupier=occupier, params=params or None
        )
        return job.id


def confirm(world: World, job_id: int) -> None:
    with transaction(world.factory) as s:
        engine.confirm(s, s.get(BulkJob, job_id), actor=world.admin)


def job_of(world: World, job_id: int) -> BulkJob:
    with world.factory() as s:
        job = s.get(BulkJob, job_id)
        assert job is not None
        return job


def items_of(world: World, job_id: int) -> list[tuple[int, str, str | None]]:
    with world.factory() as s:
        rows = s.execute(
            select(BulkItem.position, BulkItem.status, BulkItem.code)
            .where(BulkItem.job_id == job_id)
            .order_by(BulkItem.position)
        ).all()
    return [(p, st, c) for p, st, c in rows]


def remaining_users(world: World) -> set[int]:
    with world.factory() as s:
        return set(s.scalars(select(OccupierUser.id).where(OccupierUser.id.in_(world.user_ids))))


def deleted_events(world: World) -> list[str]:
    with world.factory() as s:
        return list(
            s.scalars(
                select(AuditEvent.target_id)
                .where(AuditEvent.action == "user.deleted")
                .order_by(AuditEvent.id)
            )
        )


def test_a_preview_checks_every_item_and_writes_nothing_else(world: World) -> None:
    with transaction(world.factory) as s:  # one user busy with something else, one gone
        busy = s.get(OccupierUser, world.user_ids[1])
        busy.busy_owner, busy.busy_until = "wifi:1", utcnow().replace(year=utcnow().year + 1)
    job_id = submit(world, "delete", [*world.user_ids[:3], 999_999])
    job = job_of(world, job_id)
    assert (job.state, job.total, job.processed, job.failed, job.excluded) == (JobState.PREVIEW, 4, 2, 1, 1)
    assert items_of(world, job_id) == [
        (1, "PENDING", None),
        (2, "EXCLUDED", "action_in_progress"),
        (3, "PENDING", None),
        (4, "FAILED", "not_found"),
    ]
    assert remaining_users(world) == set(world.user_ids)  # nobody deleted by a preview


def test_a_confirmed_job_holds_its_users_then_runs_to_done(world: World, small_chunks: None) -> None:
    ids = world.user_ids[:7]
    job_id = submit(world, "delete", ids)
    confirm(world, job_id)
    assert job_of(world, job_id).state == JobState.QUEUED
    # Held: anyone else's change to those users answers action_in_progress.
    with transaction(world.factory) as s, pytest.raises(ActionInProgress):
        users.update_user(s, s.get(OccupierUser, ids[0]), UserUpdate(job_title="x"), actor=world.admin)
    assert engine.run_job(world.factory, job_id) == JobState.DONE
    job = job_of(world, job_id)
    assert (job.total, job.processed, job.succeeded, job.failed) == (7, 7, 7, 0)
    assert job.started_at and job.finished_at
    assert remaining_users(world) == set(world.user_ids[7:])
    assert sorted(deleted_events(world)) == sorted(str(i) for i in ids)  # each exactly once
    assert {status for _, status, _ in items_of(world, job_id)} == {"SUCCEEDED"}


def test_some_failing_make_it_partially_done_and_retry_offers_them_again(world: World) -> None:
    ids = world.user_ids[:4]
    job_id = submit(world, "deactivate", ids)
    confirm(world, job_id)
    with transaction(world.factory) as s:  # decommission-free failure: the user is made busy by someone
        s.execute(
            OccupierUser.__table__.update()
            .where(OccupierUser.id == ids[2])
            .values(busy_owner="other", busy_until=utcnow().replace(year=utcnow().year + 1))
        )
    assert engine.run_job(world.factory, job_id) == JobState.PARTIALLY_DONE
    assert items_of(world, job_id)[2] == (3, "FAILED", "action_in_progress")
    with transaction(world.factory) as s:
        s.execute(
            OccupierUser.__table__.update()
            .where(OccupierUser.id == ids[2])
            .values(busy_owner=None, busy_until=None)
        )
        retry = engine.retry_failed(s, s.get(BulkJob, job_id), actor=world.admin)
        retry_id = retry.id
        assert (retry.state, retry.total, retry.retry_of_id) == (JobState.PREVIEW, 1, job_id)
    confirm(world, retry_id)
    assert engine.run_job(world.factory, retry_id) == JobState.DONE
    with world.factory() as s:
        statuses = set(s.scalars(select(OccupierUser.status).where(OccupierUser.id.in_(ids))))
    assert statuses == {UserStatus.DEACTIVATED}


def test_none_succeeding_is_failed(world: World) -> None:
    job_id = submit(world, "reactivate", world.user_ids[:2])  # nobody is deactivated: each one refused
    assert [code for _, _, code in items_of(world, job_id)] == ["invalid_state", "invalid_state"]
    confirm(world, job_id)
    assert engine.run_job(world.factory, job_id) == JobState.FAILED


def test_cancel_stops_before_the_next_chunk_and_leaves_the_rest_untouched(
    world: World, small_chunks: None
) -> None:
    job_id = submit(world, "delete", world.user_ids)
    confirm(world, job_id)
    with transaction(world.factory) as s:
        assert engine._run_chunk(s, job_id, {})  # one chunk of five
    with transaction(world.factory) as s:
        engine.cancel(s, s.get(BulkJob, job_id), actor=world.admin)
    assert engine.run_job(world.factory, job_id) == JobState.CANCELLED
    job = job_of(world, job_id)
    assert (job.processed, job.succeeded, job.pending) == (5, 5, 7)
    assert len(remaining_users(world)) == 7
    with world.factory() as s:  # their holds are gone: they can be changed again
        busy = s.scalar(select(func.count()).where(OccupierUser.busy_owner.is_not(None)))
    assert busy == 0
    with world.factory() as s:
        rows = list(engine.results_rows(s, job))
    assert [r[2] for r in rows].count("NOT_STARTED") == 7


def test_a_crash_mid_chunk_redoes_the_chunk_and_nothing_is_applied_twice(
    world: World, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = submit(world, "delete", world.user_ids)
    confirm(world, job_id)
    kind = KINDS["delete"]
    real = type(kind).apply
    calls = {"n": 0}

    def crash_in_second_chunk(self, run, items):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        real(self, run, items)
        if calls["n"] == 2:
            raise RuntimeError("worker died")  # after the deletes, before the commit

    monkeypatch.setattr(type(kind), "apply", crash_in_second_chunk)
    assert engine.run_job(world.factory, job_id) == JobState.DONE
    assert remaining_users(world) == set()
    assert sorted(deleted_events(world)) == sorted(str(i) for i in world.user_ids)  # none twice


def test_one_bad_item_fails_alone_with_unexpected_error(
    world: World, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = submit(world, "deactivate", world.user_ids[:5])
    confirm(world, job_id)
    bad = world.user_ids[3]
    real = bulk_lifecycle.deactivate_users

    def flaky(session, chunk, **options):  # type: ignore[no-untyped-def]
        if any(user.id == bad for user in chunk):
            raise KeyError("boom")
        return real(session, chunk, **options)

    monkeypatch.setattr(bulk_lifecycle, "deactivate_users", flaky)
    assert engine.run_job(world.factory, job_id) == JobState.PARTIALLY_DONE
    assert [code for _, _, code in items_of(world, job_id)] == [None, None, None, "unexpected_error", None]


def test_a_job_stops_touching_users_once_its_occupier_starts_decommissioning(
    world: World, small_chunks: None
) -> None:
    job_id = submit(world, "deactivate", world.user_ids)
    confirm(world, job_id)
    with transaction(world.factory) as s:
        assert engine._run_chunk(s, job_id, {})
    with transaction(world.factory) as s:
        occupiers.start_decommission(s, s.get(Occupier, world.occupier_id), actor=world.admin)
    assert engine.run_job(world.factory, job_id) == JobState.PARTIALLY_DONE
    codes = [code for _, _, code in items_of(world, job_id)]
    assert codes[:5] == [None] * 5 and set(codes[5:]) == {"occupier_decommissioned"}


def test_a_job_on_a_decommissioning_occupier_is_refused_whole(world: World) -> None:
    with transaction(world.factory) as s:
        occupiers.start_decommission(s, s.get(Occupier, world.occupier_id), actor=world.admin)
    with pytest.raises(OccupierDecommissioned):
        submit(world, "delete", world.user_ids[:2])


def test_two_workers_on_one_job_never_do_an_item_twice(world: World, small_chunks: None) -> None:
    job_id = submit(world, "delete", world.user_ids)
    confirm(world, job_id)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            engine.run_job(world.factory, job_id)
        except BaseException as exc:  # pragma: no cover - shown by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert job_of(world, job_id).state == JobState.DONE
    assert sorted(deleted_events(world)) == sorted(str(i) for i in world.user_ids)


def test_in_the_portal_admins_are_excluded_from_delete(world: World) -> None:
    with transaction(world.factory) as s:
        admin_user = s.get(OccupierUser, world.user_ids[0])
        make_account(s, admin_user, role=AccountRole.ADMIN.value)
        occupier_admin = Actor(
            ActorKind.OCCUPIER_USER,
            world.user_ids[1],
            world.admin.operator_id,
            Role.OCCUPIER_ADMIN,
            occupier_id=world.occupier_id,
        )
    job_id = submit(world, "delete", world.user_ids[:3], actor=occupier_admin)
    assert [(s, c) for _, s, c in items_of(world, job_id)] == [
        ("EXCLUDED", "cannot_delete_admin"),
        ("EXCLUDED", "permission_denied"),  # yourself
        ("PENDING", None),
    ]


def test_a_deleted_users_job_items_keep_only_the_opaque_id(world: World) -> None:
    job_id = submit(world, "deactivate", world.user_ids[:1])
    with world.factory() as s:
        assert s.scalar(select(BulkItem.identifier).where(BulkItem.job_id == job_id))
    with transaction(world.factory) as s:
        users.delete_user(s, s.get(OccupierUser, world.user_ids[0]), actor=world.admin)
    with world.factory() as s:
        row = s.execute(select(BulkItem.user_id, BulkItem.identifier).where(BulkItem.job_id == job_id)).one()
    assert tuple(row) == (world.user_ids[0], None)


# --- sources and the edit kind ----------------------------------------------------------------------------


def test_a_pasted_list_of_emails_finds_the_users_and_reports_the_others(world: World) -> None:
    from occupant.bulk import sources

    with world.factory() as s:
        first = s.get(OccupierUser, world.user_ids[0])
        items = sources.items_from_emails(
            s, world.admin, [first.email.upper(), "", "nobody@example.com", f" {first.email} "]
        )
    assert [(i.position, i.user_id, i.code) for i in items] == [
        (1, world.user_ids[0], None),
        (3, None, "not_found"),
        (4, world.user_ids[0], "duplicate_in_list"),
    ]


def test_edit_applies_only_what_was_set_and_its_preview_runs_the_actions_rules(world: World) -> None:
    from occupant.wifi import service as wifi
    from occupant.wifi.models import WifiAccount

    with transaction(world.factory) as s:
        occupier = s.get(Occupier, world.occupier_id)
        site_id = occupier.sites[0].id
        account = wifi.create_wifi_account(
            s, s.get(OccupierUser, world.user_ids[0]), homesite_id=site_id, actor=world.admin
        )
        wifi.confirm_provisioning(s, account.id)  # ACTIVE: the user is free again
    job_id = submit(
        world, "edit", world.user_ids[:3], wifi="create", wifi_homesite_id=site_id, wifi_device_limit=2
    )
    # The first user already has an account, which the preview says without creating anything.
    assert [c for _, _, c in items_of(world, job_id)] == ["wifi_account_exists", None, None]
    confirm(world, job_id)
    assert engine.run_job(world.factory, job_id) == JobState.PARTIALLY_DONE
    with world.factory() as s:
        made = dict(s.execute(select(WifiAccount.user_id, WifiAccount.device_limit)).all())
    assert made[world.user_ids[1]] == made[world.user_ids[2]] == 2
    with pytest.raises(Exception) as bad:
        submit(world, "edit", world.user_ids[:1])
    assert getattr(bad.value, "code", None) == "validation_error"
