"""Bulk jobs survive their workers: ``kill -9`` mid-job and a restart, two workers on one job, two jobs over
the same users (docs/BULK.md, "Lifecycle" 3 and 6).

The workers are real ``occupant worker`` processes on a fresh database (SQLite file, PostgreSQL database)
with their own queue (the SQLite huey in the data folder, or Redis). A killed worker loses at most the
chunk in flight; the sweep of a restarted worker re-enqueues the job once its heartbeat is a minute old
(the tests age the heartbeat rather than wait that minute), and the job ends DONE with every item done
exactly once: each user deleted (or created) whole, or not touched at all, never twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from occupant.accounts.models import AppAccount
from occupant.audit.models import AuditEvent
from occupant.bulk import engine
from occupant.bulk.kinds.base import Item
from occupant.bulk.models import BulkItem, BulkJob, ItemStatus, JobState
from occupant.kit.db import transaction
from occupant.notify.models import OutboxMessage
from occupant.occupiers.models import Occupier
from occupant.radius.models import RadCheck
from occupant.users.models import OccupierUser, UserStatus
from occupant.wifi.models import WifiAccount
from tests.bulk.faults_support import (
    Instance,
    Tenant,
    Worker,
    age_heartbeat,
    enqueue_run,
    instance,
    kill_mid_run,
    make_many_users,
    make_tenant,
    on_redis,
    redis_server,
    to_worker,
    wait_finished,
    wait_taken_up,
    workers,
)
from tests.factories import admin_actor, make_occupier, make_operator, make_user

__all__ = ["instance", "on_redis", "redis_server", "to_worker", "workers"]  # the fixtures, for pytest

N = 10_000
Start = Callable[..., Worker]


# --- helpers ----------------------------------------------------------------------------------------------


def submit_delete(inst: Instance, tenant: Tenant, user_ids: list[int]) -> int:
    with transaction(inst.factory) as s:
        occupier = s.get(Occupier, tenant.occupier_id)
        items = [Item(position=n, user_id=uid) for n, uid in enumerate(user_ids, 1)]
        job = engine.submit(s, kind="delete", items=items, actor=tenant.actor, occupier=occupier)
        assert (job.state, job.total, job.pending) == (JobState.PREVIEW, len(user_ids), len(user_ids))
        return job.id


def confirm(inst: Instance, tenant: Tenant, job_id: int) -> None:
    """Confirm as the console does: on commit, the engine sends ``run_bulk_job`` to the worker's queue."""
    with transaction(inst.factory) as s:
        engine.confirm(s, s.get_one(BulkJob, job_id), actor=tenant.actor)


def item_users(inst: Instance, job_id: int, status: ItemStatus) -> list[int]:
    return [
        uid
        for (uid,) in inst.rows(
            select(BulkItem.user_id).where(BulkItem.job_id == job_id, BulkItem.status == status)
        )
    ]


def item_identifiers(inst: Instance, job_id: int, status: ItemStatus) -> list[str]:
    return [
        ident
        for (ident,) in inst.rows(
            select(BulkItem.identifier).where(BulkItem.job_id == job_id, BulkItem.status == status)
        )
    ]


def audit_targets(inst: Instance, action: str) -> Counter[str]:
    rows = inst.rows(select(AuditEvent.target_id).where(AuditEvent.action == action))
    return Counter(target for (target,) in rows)


def assert_counts_add_up(job: BulkJob, total: int) -> None:
    assert job.total == total
    assert job.succeeded + job.failed + job.excluded == job.processed == total, (
        job.succeeded,
        job.failed,
        job.excluded,
        job.processed,
    )


def assert_deleted_whole_or_untouched(
    inst: Instance, job_id: int, usernames: dict[int, str], radcheck_rows: int
) -> set[int]:
    """Each user of the job is gone from every table, or still has all their rows; the deleted ones are the
    SUCCEEDED items, each with one ``user.deleted`` event. Returns the users left."""
    deleted = set(item_users(inst, job_id, ItemStatus.SUCCEEDED))
    pending = set(item_users(inst, job_id, ItemStatus.PENDING))
    assert deleted | pending == set(usernames) and not deleted & pending
    job = inst.job(job_id)
    assert (job.succeeded, job.total - job.processed) == (len(deleted), len(pending))

    assert {uid for (uid,) in inst.rows(select(OccupierUser.id))} == pending
    assert {uid for (uid,) in inst.rows(select(WifiAccount.user_id))} == pending
    assert {uid for (uid,) in inst.rows(select(AppAccount.user_id))} == pending
    per_username = Counter(name for (name,) in inst.rows(select(RadCheck.username)))
    assert per_username == Counter({usernames[uid]: radcheck_rows for uid in pending})

    events = audit_targets(inst, "user.deleted")
    assert set(events) == {str(uid) for uid in deleted}
    assert set(events.values()) <= {1}, [t for t, n in events.items() if n > 1][:5]  # none twice
    return pending


def import_csv(count: int) -> bytes:
    lines = ["first_name,last_name,email,wifi,wifi_homesite,invite_portal"]
    lines += [f"Ada{n},Lovelace{n},ada{n}@import.example,y,LON01,y" for n in range(count)]
    return ("\n".join(lines) + "\n").encode()


def mails_per_user(inst: Instance) -> dict[int, Counter[str]]:
    found: dict[int, Counter[str]] = {}
    for user_id, template, n in inst.rows(
        select(OutboxMessage.occupier_user_id, OutboxMessage.template, func.count()).group_by(
            OutboxMessage.occupier_user_id, OutboxMessage.template
        )
    ):
        found.setdefault(user_id, Counter())[template] = n
    return found


def assert_created_whole_or_not_at_all(inst: Instance, job_id: int) -> set[int]:
    """Each row's user exists with everything the row asked for (Wi-Fi account and RADIUS rows, app
    account, one ``user.created`` event, one mail of each kind), or does not exist at all; the users are
    the SUCCEEDED items'. Returns the users made."""
    made = set(item_users(inst, job_id, ItemStatus.SUCCEEDED))
    assert None not in made
    made_emails = set(item_identifiers(inst, job_id, ItemStatus.SUCCEEDED))
    pending_emails = set(item_identifiers(inst, job_id, ItemStatus.PENDING))
    job = inst.job(job_id)
    assert (len(made), len(made_emails), len(pending_emails)) == (
        job.succeeded,
        job.succeeded,
        job.total - job.processed,
    )

    users = inst.rows(select(OccupierUser.id, OccupierUser.email))
    assert {uid for uid, _ in users} == made
    emails = Counter(email for _, email in users)
    assert set(emails) == made_emails and set(emails.values()) <= {1}  # no duplicate emails
    assert not set(emails) & pending_emails
    accounts = Counter(uid for (uid,) in inst.rows(select(WifiAccount.user_id)))
    assert accounts == Counter(dict.fromkeys(made, 1))
    assert Counter(uid for (uid,) in inst.rows(select(AppAccount.user_id))) == Counter(dict.fromkeys(made, 1))
    usernames = {name for (name,) in inst.rows(select(WifiAccount.username))}
    nt_rows = Counter(
        name for (name,) in inst.rows(select(RadCheck.username).where(RadCheck.attribute == "NT-Password"))
    )
    assert nt_rows == Counter(dict.fromkeys(usernames, 1))

    created = audit_targets(inst, "user.created")
    assert created == Counter({str(uid): 1 for uid in made})  # exactly one event per user
    mails = mails_per_user(inst)
    assert set(mails) == made
    kinds = {frozenset(c.items()) for c in mails.values()}
    assert len(kinds) == 1, list(kinds)[:3]  # every user got the same mails ...
    (one,) = kinds
    assert dict(one).keys() >= {"wifi_password"} and len(one) == 2 and set(dict(one).values()) == {1}
    return made  # ... one of each: the Wi-Fi password and the portal invitation


# --- 1. kill -9 mid-delete ---------------------------------------------------------------------------


def test_a_delete_of_10000_users_killed_mid_run_finishes_after_a_restart(
    instance: Instance, workers: Start, to_worker: Callable[[int], None]
) -> None:
    first = workers(wait=False)  # it boots while the users are made
    tenant = make_tenant(instance)
    usernames = make_many_users(instance, tenant, N)
    radcheck_rows = instance.scalar(select(func.count()).select_from(RadCheck)) // N
    assert radcheck_rows >= 1
    job_id = submit_delete(instance, tenant, sorted(usernames))

    first.wait_started()
    confirm(instance, tenant, job_id)
    left = kill_mid_run(instance, first, job_id)
    # Killed between chunks or inside one: the chunk in flight is rolled back whole.
    assert left.state == JobState.RUNNING and 0 < left.processed < N
    remaining = assert_deleted_whole_or_untouched(instance, job_id, usernames, radcheck_rows)
    assert 0 < len(remaining) < N

    age_heartbeat(instance, job_id)  # the killed worker has been gone for over a minute
    second = workers()
    wait_taken_up(instance, job_id, second)  # by its own sweep: nobody sent it a message
    done = wait_finished(instance, job_id, [second])

    assert done.state == JobState.DONE
    assert_counts_add_up(done, N)
    assert (done.succeeded, done.failed, done.excluded) == (N, 0, 0)
    assert assert_deleted_whole_or_untouched(instance, job_id, usernames, radcheck_rows) == set()
    assert sum(audit_targets(instance, "user.deleted").values()) == N
    assert instance.scalar(select(func.count()).where(OccupierUser.busy_owner.is_not(None))) == 0


# --- 2. kill -9 mid-import -------------------------------------------------------------------------


def test_an_import_of_10000_rows_killed_mid_run_finishes_after_a_restart_without_duplicates(
    instance: Instance, workers: Start, to_worker: Callable[[int], None]
) -> None:
    first = workers(wait=False)
    tenant = make_tenant(instance)
    with transaction(instance.factory) as s:
        job = engine.submit_file(
            s,
            kind="create",
            data=import_csv(N),
            filename="people.csv",
            actor=tenant.actor,
            occupier=s.get(Occupier, tenant.occupier_id),
        )
        assert (job.state, job.total, job.pending) == (JobState.PREVIEW, N, N)
        job_id = job.id

    first.wait_started()
    confirm(instance, tenant, job_id)
    left = kill_mid_run(instance, first, job_id)
    assert left.state == JobState.RUNNING and 0 < left.processed < N
    made = assert_created_whole_or_not_at_all(instance, job_id)
    assert 0 < len(made) < N

    age_heartbeat(instance, job_id)
    second = workers()
    wait_taken_up(instance, job_id, second)
    done = wait_finished(instance, job_id, [second])

    assert done.state == JobState.DONE
    assert_counts_add_up(done, N)
    assert (done.succeeded, done.failed, done.excluded) == (N, 0, 0)
    made = assert_created_whole_or_not_at_all(instance, job_id)
    assert len(made) == N
    assert instance.scalar(select(func.count(func.distinct(OccupierUser.email_key)))) == N


# --- 3. two workers on Redis, one job ----------------------------------------------------------------------


def test_two_workers_on_redis_share_one_job_and_do_no_item_twice(
    on_redis: Instance, workers: Start, to_worker: Callable[[int], None]
) -> None:
    inst = on_redis
    pair = [workers(threads=1, wait=False), workers(threads=1, wait=False)]  # they boot meanwhile
    tenant = make_tenant(inst)
    usernames = make_many_users(inst, tenant, N)
    radcheck_rows = inst.scalar(select(func.count()).select_from(RadCheck)) // N
    job_id = submit_delete(inst, tenant, sorted(usernames))

    for worker in pair:
        worker.wait_started()
    confirm(inst, tenant, job_id)  # one message on commit ...
    enqueue_run(inst, job_id)  # ... and another, as a sweep sends for a job it thinks stalled
    done = wait_finished(inst, job_id, pair)

    assert done.state == JobState.DONE
    assert_counts_add_up(done, N)
    assert done.succeeded == N
    assert assert_deleted_whole_or_untouched(inst, job_id, usernames, radcheck_rows) == set()
    assert sum(audit_targets(inst, "user.deleted").values()) == N
    finished = audit_targets(inst, "bulk_job.finished")
    assert finished == Counter({str(job_id): 1})  # finished once, however many ran it
    for worker in pair:  # each worker took the job up
        assert "Executing occupant.worker.tasks.run_bulk_job" in worker.output, worker.output


# --- 4. two jobs over the same users -----------------------------------------------------------------------
#
# tests/bulk/test_engine.py excludes users held by something else (a Wi-Fi hold, a made-up owner), not by
# another bulk job; here the holder is a confirmed job.


def test_a_second_jobs_preview_excludes_the_users_a_first_job_holds(
    committed: sessionmaker[Session],
) -> None:
    with transaction(committed) as s:
        operator = make_operator(s)
        occupier = make_occupier(s, operator)
        ids = [make_user(s, occupier, first_name=f"P{n:02d}").id for n in range(12)]
    admin = admin_actor(operator, staff_id=7)

    def submit(kind: str, user_ids: list[int]) -> int:
        with transaction(committed) as s:
            items = [Item(position=n, user_id=uid) for n, uid in enumerate(user_ids, 1)]
            return engine.submit(
                s, kind=kind, items=items, actor=admin, occupier=s.get(Occupier, occupier.id)
            ).id

    def statuses(job_id: int) -> list[tuple[int, str, str | None]]:
        with committed() as s:
            rows = s.execute(
                select(BulkItem.user_id, BulkItem.status, BulkItem.code)
                .where(BulkItem.job_id == job_id)
                .order_by(BulkItem.position)
            ).all()
        return [(uid, status, code) for uid, status, code in rows]

    first = submit("delete", ids[:8])
    with transaction(committed) as s:
        engine.confirm(s, s.get_one(BulkJob, first), actor=admin)

    second = submit("deactivate", ids[4:])  # users 4..7 are the first job's
    held = [(uid, "EXCLUDED", "action_in_progress") for uid in ids[4:8]]
    free = [(uid, "PENDING", None) for uid in ids[8:]]
    assert statuses(second) == held + free
    with committed() as s:
        job = s.get_one(BulkJob, second)
        assert (job.total, job.pending, job.excluded) == (8, 4, 4)

    with transaction(committed) as s:  # confirming it does not take them either
        engine.confirm(s, s.get_one(BulkJob, second), actor=admin)
    assert statuses(second) == held + free
    assert engine.run_job(committed, second) == JobState.PARTIALLY_DONE
    assert engine.run_job(committed, first) == JobState.DONE

    with committed() as s:
        left: dict[int, str] = {
            uid: st for uid, st in s.execute(select(OccupierUser.id, OccupierUser.status))
        }
    assert set(left) == set(ids[8:])  # the first job deleted 0..7, the second did not touch 4..7
    assert set(left.values()) == {UserStatus.DEACTIVATED}
    assert [uid for uid, status, _ in statuses(second) if status == "SUCCEEDED"] == ids[8:]
