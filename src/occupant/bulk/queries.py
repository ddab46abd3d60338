"""Reads of bulk jobs for the pages: the recent jobs an actor may see, a job's items a page at a time, and
the counts of what its items did.

Every read is scoped: jobs through ``jobs_filter`` (the rule of ``engine.get_job``), items through a job the
caller has already resolved with ``engine.get_job``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor, Role
from occupant.authz.scope import occupier_filter
from occupant.bulk.models import BulkItem, BulkJob, ItemStatus
from occupant.kit.pagination import Page, decode_cursor, page_of
from occupant.occupiers.models import Occupier


def jobs_filter(actor: Actor) -> ColumnElement[bool]:
    """The jobs the actor may see: their operator's; for every role but the operator admin only jobs on
    occupiers in their scope (site managers: at their sites; occupier admins: their own occupier)."""
    clause = BulkJob.operator_id == actor.operator_id
    if actor.role is not Role.OPERATOR_ADMIN:
        clause = clause & BulkJob.occupier_id.in_(select(Occupier.id).where(occupier_filter(actor)))
    return clause


def list_jobs(
    session: Session,
    actor: Actor,
    *,
    occupier_id: int | None = None,
    kind: str | None = None,
    state: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[BulkJob]:
    """The actor's jobs, newest first (optionally one occupier's, one kind's, in one state), a page at a
    time."""
    stmt = select(BulkJob).where(jobs_filter(actor))
    if occupier_id is not None:
        stmt = stmt.where(BulkJob.occupier_id == occupier_id)
    if kind is not None:
        stmt = stmt.where(BulkJob.kind == kind)
    if state is not None:
        stmt = stmt.where(BulkJob.state == state)
    after = decode_cursor(cursor, 1)
    if after is not None:
        stmt = stmt.where(BulkJob.id < int(after[0]))
    stmt = stmt.order_by(BulkJob.id.desc()).limit(limit + 1)
    return page_of(list(session.scalars(stmt)), limit, lambda job: [job.id])


def occupier_names(session: Session, jobs: Sequence[BulkJob]) -> dict[int, str]:
    """The names of the jobs' occupiers (one query)."""
    ids = sorted({job.occupier_id for job in jobs if job.occupier_id is not None})
    if not ids:
        return {}
    rows = session.execute(select(Occupier.id, Occupier.name).where(Occupier.id.in_(ids)))
    return {occupier_id: name for occupier_id, name in rows}


def item_page(
    session: Session,
    job: BulkJob,
    *,
    statuses: Sequence[ItemStatus] | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[BulkItem]:
    """The job's items in file / selection order, ``limit`` at a time (a 100,000-row preview is never read
    whole), optionally only those with one of ``statuses``."""
    stmt = select(BulkItem).where(BulkItem.job_id == job.id)
    if statuses:
        stmt = stmt.where(BulkItem.status.in_(list(statuses)))
    after = decode_cursor(cursor, 2)
    if after is not None:
        stmt = stmt.where(tuple_(BulkItem.position, BulkItem.id) > tuple_(int(after[0]), int(after[1])))
    stmt = stmt.order_by(BulkItem.position, BulkItem.id).limit(limit + 1)
    return page_of(list(session.scalars(stmt)), limit, lambda item: [item.position, item.id])


@dataclass(frozen=True)
class ItemCounts:
    """How many of a job's items are in each status, and what the succeeded ones did (``outcomes``)."""

    by_status: dict[str, int]
    outcomes: dict[str, int]

    def of(self, status: ItemStatus) -> int:
        return self.by_status.get(status, 0)

    @property
    def not_done(self) -> int:
        """Failed or excluded: what "Retry failed" would offer again."""
        return self.of(ItemStatus.FAILED) + self.of(ItemStatus.EXCLUDED)


def item_counts(session: Session, job: BulkJob) -> ItemCounts:
    """One grouping query over the job's items."""
    by_status: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    rows = session.execute(
        select(BulkItem.status, BulkItem.outcome, func.count())
        .where(BulkItem.job_id == job.id)
        .group_by(BulkItem.status, BulkItem.outcome)
    )
    for status, outcome, count in rows:
        by_status[status] = by_status.get(status, 0) + count
        if status == ItemStatus.SUCCEEDED and outcome:
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    return ItemCounts(by_status=by_status, outcomes=outcomes)
