"""Decommissioning an occupier: a job deletes every user and settles the state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from occupant.audit.models import AuditEvent
from occupant.kit.clock import utcnow
from occupant.kit.errors import InvalidState
from occupant.occupiers import service as occupiers
from occupant.occupiers.decommission import pending_decommissions, run_decommission
from occupant.occupiers.models import Occupier, OccupierState
from occupant.users.models import OccupierUser
from tests.factories import admin_actor, make_occupier, make_operator, make_user


def _setup(factory, n_users=5):
    with factory() as s:
        operator = make_operator(s)
        occupier = make_occupier(s, operator)
        keep = make_occupier(s, operator)
        for _ in range(n_users):
            make_user(s, occupier)
        make_user(s, keep)
        s.commit()
        return operator, occupier.id, keep.id


def test_decommission_deletes_every_user_then_decommissioned(committed):
    operator, occupier_id, keep_id = _setup(committed, n_users=7)
    with committed() as s:
        occupier = s.get(Occupier, occupier_id)
        occupiers.start_decommission(s, occupier, actor=admin_actor(operator))
        assert occupier.state == OccupierState.DECOMMISSION_PENDING
        s.commit()
        assert pending_decommissions(s) == [occupier_id]
    assert run_decommission(committed, occupier_id) == OccupierState.DECOMMISSIONED
    with committed() as s:

        def count(occ: int) -> int:
            return s.scalar(
                select(func.count()).select_from(OccupierUser).where(OccupierUser.occupier_id == occ)
            )

        assert count(occupier_id) == 0
        assert count(keep_id) == 1  # other occupiers untouched
        deleted = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "user.deleted", AuditEvent.actor_type == "system")
        )
        assert deleted == 7
        occupier = s.get(Occupier, occupier_id)
        assert occupier.decommissioned_at is not None
        with pytest.raises(InvalidState):
            occupiers.start_decommission(s, occupier, actor=admin_actor(operator))


def test_a_user_that_cannot_be_deleted_fails_the_decommission_and_retry_finishes_it(committed):
    operator, occupier_id, _ = _setup(committed, n_users=3)
    with committed() as s:
        stuck = s.scalars(select(OccupierUser).where(OccupierUser.occupier_id == occupier_id)).first()
        stuck.busy_owner, stuck.busy_until = "job:9", utcnow() + timedelta(minutes=10)
        stuck_id = stuck.id
        occupiers.start_decommission(s, s.get(Occupier, occupier_id), actor=admin_actor(operator))
        s.commit()
    assert run_decommission(committed, occupier_id) == OccupierState.DECOMMISSION_FAILED
    with committed() as s:
        occupier = s.get(Occupier, occupier_id)
        assert f"user {stuck_id}" in occupier.decommission_error
        assert (
            s.scalar(
                select(func.count()).select_from(OccupierUser).where(OccupierUser.occupier_id == occupier_id)
            )
            == 1
        )
        s.get(OccupierUser, stuck_id).busy_until = None
        occupiers.start_decommission(s, occupier, actor=admin_actor(operator))  # retry
        assert occupier.decommission_error is None
        s.commit()
    assert run_decommission(committed, occupier_id) == OccupierState.DECOMMISSIONED


def test_decommission_job_resumes_after_a_crash(committed, monkeypatch):
    """A crash after the first chunk leaves PENDING; running the job again finishes, deleting nobody twice."""
    import occupant.occupiers.decommission as job

    operator, occupier_id, _ = _setup(committed, n_users=5)
    with committed() as s:
        occupiers.start_decommission(s, s.get(Occupier, occupier_id), actor=admin_actor(operator))
        s.commit()
    monkeypatch.setattr(job, "CHUNK", 2)
    real_purge = job.purge_user
    calls = {"n": 0}

    def crashing_purge(session, user, *, actor):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("worker killed")
        real_purge(session, user, actor=actor)

    monkeypatch.setattr(job, "purge_user", crashing_purge)
    with pytest.raises(SystemExit):
        run_decommission(committed, occupier_id)
    monkeypatch.setattr(job, "purge_user", real_purge)
    with committed() as s:
        assert s.get(Occupier, occupier_id).state == OccupierState.DECOMMISSION_PENDING
        assert (
            s.scalar(
                select(func.count()).select_from(OccupierUser).where(OccupierUser.occupier_id == occupier_id)
            )
            == 3
        )
    assert run_decommission(committed, occupier_id) == OccupierState.DECOMMISSIONED
    with committed() as s:
        assert (
            s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "user.deleted"))
            == 5
        )
