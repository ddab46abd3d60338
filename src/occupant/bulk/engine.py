"""The bulk engine: any kind of job from submission to its results (docs/BULK.md).

``submit`` freezes a job's items and checks every one of them (the preview: nothing else is written);
``confirm`` holds the users and queues the job; ``run_job`` (the worker) works through it chunk by chunk,
each chunk one transaction in which the items' effects and their statuses commit together; ``cancel``,
``retry_failed`` and ``results_rows`` do what they say. Services flush; the callers of ``submit``,
``confirm``, ``cancel`` and ``retry_failed`` commit, ``run_job`` commits its own chunks.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from occupant.audit.service import record
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.authz.scope import require
from occupant.bulk.kinds import KINDS
from occupant.bulk.kinds.base import Item, Kind, Run, UserKind
from occupant.bulk.models import FINISHED, UNFINISHED, BulkItem, BulkJob, ItemStatus, JobState
from occupant.kit.bulkwrite import insert_rows, table_of
from occupant.kit.clock import utcnow
from occupant.kit.csvin import CsvRow, read_csv, template_csv
from occupant.kit.db import discard_commit_hooks, on_commit, transaction, working_for
from occupant.kit.errors import Conflict, FieldErrors, InvalidState, NotFound, OccupantError
from occupant.kit.settings import get_settings
from occupant.occupiers.models import Occupier
from occupant.users.models import OccupierUser
from occupant.users.service import ensure_occupier_open

log = logging.getLogger(__name__)

_ITEM_COLUMNS = (
    "job_id",
    "position",
    "user_id",
    "identifier",
    "payload",
    "status",
    "outcome",
    "code",
    "message",
    "errors",
)
IN_CHUNK = 5_000  # ids per IN (...) list: well under both databases' bound-parameter limits
PREVIEW_HOURS = 24  # an unconfirmed preview is purged after this


class UnknownKind(FieldErrors):
    def __init__(self, kind: str) -> None:
        super().__init__(
            [{"field": "kind", "code": "unknown_kind", "message": f"There is no kind of bulk job {kind!r}."}]
        )


class JobNotPending(Conflict):
    code = "job_not_pending"
    default_message = "This job can no longer be changed."


def kind_of(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKind(name) from None


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def actor_of(job: BulkJob) -> Actor:
    """The actor the job acts as: whoever submitted it, with the rights they had then."""
    return Actor(
        kind=ActorKind(job.requested_by_kind),
        id=int(job.requested_by_id) if job.requested_by_id and job.requested_by_id.isdigit() else None,
        operator_id=job.operator_id,
        role=Role(job.actor_role),
        site_ids=frozenset(job.actor_site_ids or ()),
        occupier_id=job.actor_occupier_id,
    )


def _run(session: Session, job: BulkJob, kind: Kind, *, preview: bool, cache: dict[str, Any]) -> Run:
    occupier = session.get(Occupier, job.occupier_id) if job.occupier_id else None
    return Run(session, job, actor_of(job), kind.parse_params(job.params), occupier, preview, cache)


# --- submit and preview ------------------------------------------------------------------------------


def submit(
    session: Session,
    *,
    kind: str,
    items: Sequence[Item],
    actor: Actor,
    occupier: Occupier | None,
    params: dict[str, Any] | None = None,
    selection: dict[str, Any] | None = None,
    requested_by_name: str | None = None,
    retry_of: BulkJob | None = None,
) -> BulkJob:
    """Make a job of ``items`` and check every one of them: a PREVIEW job, nothing else written.

    Items the check refuses are FAILED (or EXCLUDED: busy users, admins in the portal) with their codes;
    the others would succeed. Raises UnknownKind, PermissionDenied, OccupierDecommissioned (the whole job
    is refused), FieldErrors (bad params; no items; no occupier for a kind that needs one).
    """
    handler = kind_of(kind)
    _check_submission(handler, actor, occupier)
    parsed_params = handler.parse_params(params)
    if not items:
        raise FieldErrors.single("items", "no_items", "There is nothing to do: the job has no items.")
    job = BulkJob(
        operator_id=actor.operator_id,
        occupier_id=occupier.id if occupier is not None else None,
        kind=kind,
        state=JobState.PREVIEW,
        params=params or {},
        selection=selection or {},
        requested_by_kind=actor.kind.value,
        requested_by_id=actor.audit_id,
        requested_by_name=requested_by_name,
        actor_role=actor.role.value,
        actor_site_ids=sorted(actor.site_ids),
        actor_occupier_id=actor.occupier_id,
        total=len(items),
        retry_of_id=retry_of.id if retry_of is not None else None,
        created_at=utcnow(),
    )
    session.add(job)
    session.flush()
    run = Run(session, job, actor, parsed_params, occupier, preview=True)
    for chunk in _chunks(items, handler.chunk_size):
        pending = [i for i in chunk if not i.settled]
        if pending:
            handler.check(run, pending)
            _forget_loaded(session, keep=(job, occupier))
    discard_commit_hooks(session)  # the check may have run actions in savepoints that were rolled back
    insert_rows(
        session,
        table_of(BulkItem),
        _ITEM_COLUMNS,
        (
            (
                job.id,
                i.position,
                i.user_id,
                i.identifier,
                i.payload,
                i.status,
                i.outcome,
                i.code,
                i.message,
                i.errors,
            )
            for i in items
        ),
    )
    _recount(session, job)
    record(
        session,
        actor=actor,
        action="bulk_job.previewed",
        target_type="bulk_job",
        target_id=job.id,
        occupier_id=job.occupier_id,
        fields=["kind", "total"],
        changes={"kind": [None, kind], "total": [None, job.total], "retry_of": [None, job.retry_of_id]},
    )
    return job


class NoFileForKind(FieldErrors):
    def __init__(self, kind: str) -> None:
        super().__init__(
            [{"field": "file", "code": "no_file_for_kind", "message": f"A {kind} job does not read a file."}]
        )


def needs_occupier(handler: Kind) -> bool:
    """Whether the kind's jobs work in one occupier, which they must name: kinds that make users do (they
    are not a :class:`UserKind`, whose users exist, each in their occupier), unless a kind says otherwise
    with a ``per_occupier`` class attribute."""
    return bool(getattr(handler, "per_occupier", not isinstance(handler, UserKind)))


def _check_submission(handler: Kind, actor: Actor, occupier: Occupier | None) -> None:
    """What refuses a job before any of its input is read: permission, a missing or closed occupier."""
    require(actor, handler.permission)
    if occupier is None and needs_occupier(handler):
        raise FieldErrors.single(
            "occupier_id", "required", f"{handler.title}: say which occupier (occupier_id) the job is for."
        )
    if occupier is not None:
        ensure_occupier_open(occupier)


def submit_file(
    session: Session,
    *,
    kind: str,
    data: bytes,
    filename: str | None,
    actor: Actor,
    occupier: Occupier | None,
    params: dict[str, Any] | None = None,
    requested_by_name: str | None = None,
) -> BulkJob:
    """:func:`submit` for an uploaded CSV file: read (``kit.csvin``: a file-level problem raises CsvError
    before any work), one item per row, every row checked. A row the reader already refused (too many
    cells, a duplicate inside the file) fails with that error."""
    handler = kind_of(kind)
    _check_submission(handler, actor, occupier)
    if handler.csv_spec is None:
        raise NoFileForKind(kind)
    table = read_csv(data, handler.csv_spec)
    selection = {"file": filename or "upload.csv", "rows": len(table.rows), "encoding": table.encoding}
    return _submit_rows(session, handler, table.rows, actor, occupier, params, selection, requested_by_name)


class NoRowsForKind(FieldErrors):
    def __init__(self, kind: str) -> None:
        super().__init__(
            [{"field": "rows", "code": "no_rows_for_kind", "message": f"A {kind} job does not take rows."}]
        )


def submit_rows(
    session: Session,
    *,
    kind: str,
    rows: Sequence[CsvRow],
    actor: Actor,
    occupier: Occupier | None,
    params: dict[str, Any] | None = None,
    requested_by_name: str | None = None,
) -> BulkJob:
    """:func:`submit_file` for rows that did not come in a file (the API's JSON ``rows``, each made a
    ``CsvRow`` with ``line`` = its index + 1). Raises NoRowsForKind, FieldErrors ``too_many_items`` beyond
    ``OCCUPANT_CSV_MAX_ROWS``, and what :func:`submit` raises."""
    handler = kind_of(kind)
    _check_submission(handler, actor, occupier)
    if handler.csv_spec is None:
        raise NoRowsForKind(kind)
    limit = get_settings().csv_max_rows
    if len(rows) > limit:
        raise FieldErrors.single(
            "rows", "too_many_items", f"{len(rows):,} rows were sent; one job takes at most {limit:,}."
        )
    selection = {"rows": len(rows)}
    return _submit_rows(session, handler, rows, actor, occupier, params, selection, requested_by_name)


def _submit_rows(
    session: Session,
    handler: Kind,
    rows: Sequence[CsvRow],
    actor: Actor,
    occupier: Occupier | None,
    params: dict[str, Any] | None,
    selection: dict[str, Any],
    requested_by_name: str | None,
) -> BulkJob:
    """One item per row (the kind's ``items_from_rows``), a row the reader refused failing with its error,
    then :func:`submit`."""
    handler.parse_params(params)  # bad options are refused before any row is looked at
    items = handler.items_from_rows(session, actor, occupier, rows)
    for item, row in zip(items, rows, strict=True):
        if row.errors and not item.settled:
            item.fail(FieldErrors(row.errors))
    return submit(
        session,
        kind=handler.name,
        items=items,
        actor=actor,
        occupier=occupier,
        params=params,
        selection=selection,
        requested_by_name=requested_by_name,
    )


def template(kind: str) -> bytes:
    """The CSV template of a kind that reads files."""
    handler = kind_of(kind)
    if handler.csv_spec is None:
        raise NoFileForKind(kind)
    return template_csv(handler.csv_spec)


def _forget_loaded(session: Session, keep: Iterable[object | None]) -> None:
    """Let go of what a chunk loaded (a 100,000-user preview would otherwise hold every user)."""
    session.flush()
    kept = {id(obj) for obj in keep if obj is not None}
    for obj in list(session):
        # ``obj in session``: expunging a parent (a site) cascades to its children (its NAS rows) already.
        if id(obj) not in kept and obj in session:
            session.expunge(obj)


def _recount(session: Session, job: BulkJob) -> None:
    counts: dict[str, int] = defaultdict(int)
    rows = session.execute(
        select(BulkItem.status, func.count()).where(BulkItem.job_id == job.id).group_by(BulkItem.status)
    )
    for status, count in rows:
        counts[status] = count
    job.succeeded = counts[ItemStatus.SUCCEEDED]
    job.failed = counts[ItemStatus.FAILED]
    job.excluded = counts[ItemStatus.EXCLUDED]
    job.processed = job.succeeded + job.failed + job.excluded
    job.total = job.processed + counts[ItemStatus.PENDING]


def get_job(session: Session, actor: Actor, job_id: int, *, for_update: bool = False) -> BulkJob:
    """The job, if the actor may see it (their operator; occupier roles: their occupier's; site
    managers: jobs on occupiers at their sites, or their own; nobody who may not manage users). Raises
    NotFound."""
    from occupant.authz.scope import Perm, can, occupier_filter

    if not can(actor, Perm.MANAGE_USERS):
        raise NotFound()
    stmt = select(BulkJob).where(BulkJob.id == job_id, BulkJob.operator_id == actor.operator_id)
    if actor.role is not Role.OPERATOR_ADMIN:
        stmt = stmt.where(BulkJob.occupier_id.in_(select(Occupier.id).where(occupier_filter(actor))))
    if for_update:
        stmt = stmt.with_for_update()
    job = session.scalars(stmt).first()
    if job is None:
        raise NotFound()
    return job


# --- confirm --------------------------------------------------------------------------------------------


def confirm(session: Session, job: BulkJob, *, actor: Actor) -> BulkJob:
    """Start a previewed job: hold its users (those busy meanwhile become EXCLUDED) and queue it.

    Raises JobNotPending (not a preview), OccupierDecommissioned (refused whole).
    """
    job = _lock(session, job.id)
    if job.state != JobState.PREVIEW:
        raise JobNotPending("Only a previewed job can be started.")
    if job.occupier_id is not None:
        occupier = session.get(Occupier, job.occupier_id)
        assert occupier is not None
        ensure_occupier_open(occupier)
    handler = kind_of(job.kind)
    now = utcnow()
    if handler.holds_users:
        _hold_users(session, job)
    job.state = JobState.QUEUED
    job.confirmed_at = now
    _recount(session, job)
    record(
        session,
        actor=actor,
        action="bulk_job.confirmed",
        target_type="bulk_job",
        target_id=job.id,
        occupier_id=job.occupier_id,
        fields=["state"],
        changes={"state": [JobState.PREVIEW, JobState.QUEUED]},
    )
    job_id = job.id
    on_commit(session, lambda: _enqueue(job_id), key=("bulk.run", job_id))
    return job


def _pending_user_ids(session: Session, job: BulkJob) -> list[int]:
    return list(
        session.scalars(
            select(BulkItem.user_id).where(
                BulkItem.job_id == job.id,
                BulkItem.status == ItemStatus.PENDING,
                BulkItem.user_id.is_not(None),
            )
        )
    )


def _hold_users(session: Session, job: BulkJob) -> None:
    """Every pending item's user busy for this job; the items of users busy with something else are
    EXCLUDED (``action_in_progress``)."""
    now = utcnow()
    until = now + timedelta(seconds=get_settings().busy_ttl_seconds)
    user_ids = _pending_user_ids(session, job)
    for chunk in _chunks(user_ids):
        session.execute(
            update(OccupierUser)
            .where(
                OccupierUser.id.in_(chunk),
                (OccupierUser.busy_until.is_(None))
                | (OccupierUser.busy_until <= now)
                | (OccupierUser.busy_owner == job.holder),
            )
            .values(busy_owner=job.holder, busy_until=until)
            .execution_options(synchronize_session=False)
        )
    busy_elsewhere = select(OccupierUser.id).where(
        OccupierUser.id == BulkItem.user_id,
        (OccupierUser.busy_owner.is_(None)) | (OccupierUser.busy_owner != job.holder),
    )
    session.execute(
        update(BulkItem)
        .where(BulkItem.job_id == job.id, BulkItem.status == ItemStatus.PENDING, busy_elsewhere.exists())
        .values(
            status=ItemStatus.EXCLUDED,
            code="action_in_progress",
            message="An action was in progress for this user when the job started.",
        )
        .execution_options(synchronize_session=False)
    )


def _release_users(session: Session, job: BulkJob, user_ids: Iterable[int] | None = None) -> None:
    """Free the users this job holds: these, or all of them."""
    stmt = (
        update(OccupierUser)
        .where(OccupierUser.busy_owner == job.holder)
        .values(busy_owner=None, busy_until=None)
        .execution_options(synchronize_session=False)
    )
    if user_ids is None:
        session.execute(stmt)
        return
    for chunk in _chunks(sorted(set(user_ids))):
        session.execute(stmt.where(OccupierUser.id.in_(chunk)))


def _refresh_holds(session: Session, job: BulkJob) -> None:
    until = utcnow() + timedelta(seconds=get_settings().busy_ttl_seconds)
    session.execute(
        update(OccupierUser)
        .where(OccupierUser.busy_owner == job.holder)
        .values(busy_until=until)
        .execution_options(synchronize_session=False)
    )


def _enqueue(job_id: int) -> None:
    from occupant.worker.tasks import enqueue_bulk_job

    enqueue_bulk_job(job_id)


def _lock(session: Session, job_id: int) -> BulkJob:
    """The job row, locked for this transaction (PostgreSQL: FOR UPDATE; SQLite has one writer)."""
    session.flush()
    job = session.scalars(
        select(BulkJob)
        .where(BulkJob.id == job_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if job is None:
        raise NotFound()
    return job


# --- running ---------------------------------------------------------------------------------------------


def run_job(factory: sessionmaker[Session], job_id: int) -> JobState | None:
    """Work through the job's pending items, one chunk per transaction, until none is left (or the job was
    cancelled, or its occupier started decommissioning). Safe to call twice at once, or again after a crash:
    the job row's lock makes chunks take turns, and a pending item is only ever done once."""
    cache: dict[str, Any] = {}
    while True:
        try:
            with transaction(factory) as session:
                more = _run_chunk(session, job_id, cache)
        except Exception:
            log.exception("bulk_job.chunk_failed", extra={"job_id": job_id})
            with transaction(factory) as session:
                more = _run_chunk(session, job_id, cache, one_by_one=True)
        if not more:
            break
    with factory() as session:
        job = session.get(BulkJob, job_id)
        return job.state if job is not None else None


def _run_chunk(session: Session, job_id: int, cache: dict[str, Any], *, one_by_one: bool = False) -> bool:
    """One chunk: True when there may be more to do."""
    job = _lock(session, job_id)
    if job.state not in UNFINISHED:
        return False
    handler = kind_of(job.kind)
    now = utcnow()
    if job.state == JobState.QUEUED:
        job.state, job.started_at = JobState.RUNNING, now
    if job.heartbeat_at is None or now - job.heartbeat_at > timedelta(
        seconds=get_settings().busy_ttl_seconds / 3
    ):
        _refresh_holds(session, job)
    job.heartbeat_at = now
    run = _run(session, job, handler, preview=False, cache=cache)
    if run.occupier is not None and run.occupier.is_decommissioning:
        _fail_pending(session, job, "occupier_decommissioned", "The occupier is being decommissioned.")
        _finish(session, job)
        return False
    rows = session.scalars(
        select(BulkItem)
        .where(BulkItem.job_id == job.id, BulkItem.status == ItemStatus.PENDING)
        .order_by(BulkItem.position, BulkItem.id)
        .limit(handler.chunk_size)
    ).all()
    if not rows:
        _finish(session, job)
        return False
    items = [_item_of(row) for row in rows]
    with working_for(session, job.holder):
        if one_by_one:
            _apply_one_by_one(run, handler, items)
        else:
            handler.apply(run, items)
    _write_results(session, items)
    _release_users(session, job, [i.user_id for i in items if i.user_id is not None])
    _recount(session, job)
    return True


def _apply_one_by_one(run: Run, handler: Kind, items: Sequence[Item]) -> None:
    """After a chunk failed unexpectedly: each item alone in a savepoint, so only the bad one fails."""
    for item in items:
        try:
            with run.session.begin_nested():
                handler.apply(run, [item])
        except OccupantError as exc:
            item.fail(exc)
        except Exception as exc:
            log.exception("bulk_job.item_failed", extra={"job_id": run.job.id, "position": item.position})
            item.fail(UnexpectedError(f"Unexpected error ({type(exc).__name__}); it has been logged."))
        if item.status == ItemStatus.PENDING:
            item.fail(UnexpectedError("The item was not processed."))


class UnexpectedError(OccupantError):
    code = "unexpected_error"
    status = 500
    default_message = "An unexpected error stopped this item; it has been logged."


def _item_of(row: BulkItem) -> Item:
    return Item(
        position=row.position,
        identifier=row.identifier,
        user_id=row.user_id,
        payload=row.payload,
        status=ItemStatus(row.status),
        id=row.id,
    )


def _write_results(session: Session, items: Sequence[Item]) -> None:
    """Every item's status in few statements: one UPDATE per (status, outcome, code, message) group,
    one per item only for items with several field errors."""
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    singles: list[Item] = []
    for item in items:
        assert item.id is not None
        if item.status == ItemStatus.PENDING:
            item.fail(UnexpectedError("The kind left the item unprocessed."))
        if item.errors and len(item.errors) > 1:
            singles.append(item)
        else:
            groups[(item.status, item.outcome, item.code, item.message)].append(item.id)
    for (status, outcome, code, message), ids in groups.items():
        for chunk in _chunks(ids):
            session.execute(
                update(BulkItem)
                .where(BulkItem.id.in_(chunk))
                .values(status=status, outcome=outcome, code=code, message=message, errors=None)
                .execution_options(synchronize_session=False)
            )
    for item in singles:
        session.execute(
            update(BulkItem)
            .where(BulkItem.id == item.id)
            .values(status=item.status, code=item.code, message=item.message, errors=item.errors)
            .execution_options(synchronize_session=False)
        )
    made = [{"id": i.id, "user_id": i.user_id} for i in items if i.made_user]
    if made:  # users a create made: their items point at them
        session.execute(update(BulkItem), made)


def _fail_pending(session: Session, job: BulkJob, code: str, message: str) -> None:
    session.execute(
        update(BulkItem)
        .where(BulkItem.job_id == job.id, BulkItem.status == ItemStatus.PENDING)
        .values(status=ItemStatus.FAILED, code=code, message=message)
        .execution_options(synchronize_session=False)
    )


def _finish(session: Session, job: BulkJob) -> None:
    """Settle the state from the counts, free the users, wipe the rows that were applied."""
    _recount(session, job)
    old = job.state
    if job.succeeded == 0:
        job.state = JobState.FAILED
    elif job.failed == 0 and job.excluded == 0:
        job.state = JobState.DONE
    else:
        job.state = JobState.PARTIALLY_DONE
    _settle(session, job)
    record(
        session,
        actor=actor_of(job),
        action="bulk_job.finished",
        target_type="bulk_job",
        target_id=job.id,
        occupier_id=job.occupier_id,
        fields=["state"],
        changes={
            "state": [old, job.state],
            "succeeded": [None, job.succeeded],
            "failed": [None, job.failed],
            "excluded": [None, job.excluded],
        },
        outcome="success" if job.state == JobState.DONE else "failure",
    )


def _settle(session: Session, job: BulkJob) -> None:
    job.finished_at = utcnow()
    kind_of(job.kind).finished(session, job)
    _release_users(session, job)
    # Applied rows are done: their data now lives where it belongs (a created user) or nowhere.
    session.execute(
        update(BulkItem)
        .where(
            BulkItem.job_id == job.id, BulkItem.status == ItemStatus.SUCCEEDED, BulkItem.payload.is_not(None)
        )
        .values(payload=None)
        .execution_options(synchronize_session=False)
    )


# --- cancel, retry, results ----------------------------------------------------------------------------


def cancel(session: Session, job: BulkJob, *, actor: Actor) -> BulkJob:
    """Stop the job before its next chunk; items not started stay as they are (PENDING) and untouched.
    Raises JobNotPending when it has already finished."""
    job = _lock(session, job.id)
    if job.state in FINISHED:
        raise JobNotPending("The job has already finished.")
    old = job.state
    job.state = JobState.CANCELLED
    _recount(session, job)
    _settle(session, job)
    record(
        session,
        actor=actor,
        action="bulk_job.cancelled",
        target_type="bulk_job",
        target_id=job.id,
        occupier_id=job.occupier_id,
        fields=["state"],
        changes={"state": [old, JobState.CANCELLED], "not_started": [None, job.total - job.processed]},
    )
    return job


def retry_failed(session: Session, job: BulkJob, *, actor: Actor) -> BulkJob:
    """A new job (previewed again) of the same kind and options from this job's failed and excluded items.
    Raises JobNotPending (not finished yet), FieldErrors ``no_items`` (nothing failed)."""
    if job.state not in FINISHED:
        raise JobNotPending("The job has not finished yet.")
    rows = session.scalars(
        select(BulkItem)
        .where(BulkItem.job_id == job.id, BulkItem.status.in_([ItemStatus.FAILED, ItemStatus.EXCLUDED]))
        .order_by(BulkItem.position)
    ).all()
    if not rows:
        raise FieldErrors.single("items", "no_items", "Nothing failed: there is nothing to retry.")
    items = [Item(r.position, r.identifier, r.user_id, r.payload) for r in rows]
    occupier = session.get(Occupier, job.occupier_id) if job.occupier_id else None
    return submit(
        session,
        kind=job.kind,
        items=items,
        actor=actor,
        occupier=occupier,
        params=job.params,
        selection={**job.selection, "retry_of": job.id},
        retry_of=job,
    )


RESULT_HEADER = ["row", "identifier", "status", "outcome", "code", "message"]


def results_rows(session: Session, job: BulkJob) -> Iterator[list[Any]]:
    """The job's items for the results CSV, in position order, read in batches (flat memory)."""
    last = (-1, 0)
    while True:
        rows = session.execute(
            select(BulkItem.position, BulkItem.id, BulkItem.identifier, BulkItem.status)
            .add_columns(BulkItem.outcome, BulkItem.code, BulkItem.message)
            .where(BulkItem.job_id == job.id)
            .where((BulkItem.position > last[0]) | ((BulkItem.position == last[0]) & (BulkItem.id > last[1])))
            .order_by(BulkItem.position, BulkItem.id)
            .limit(2_000)
        ).all()
        if not rows:
            return
        for position, _id, identifier, status, outcome, code, message in rows:
            shown = "NOT_STARTED" if status == ItemStatus.PENDING and job.is_finished else status
            yield [position, identifier or "", shown, outcome or "", code or "", message or ""]
        last = (rows[-1][0], rows[-1][1])


def list_items(
    session: Session, job: BulkJob, *, statuses: Sequence[ItemStatus] | None = None, limit: int = 100
) -> list[BulkItem]:
    stmt = select(BulkItem).where(BulkItem.job_id == job.id)
    if statuses:
        stmt = stmt.where(BulkItem.status.in_(statuses))
    return list(session.scalars(stmt.order_by(BulkItem.position, BulkItem.id).limit(limit)))


# --- upkeep (the sweep) ------------------------------------------------------------------------------


def stalled_jobs(session: Session) -> list[int]:
    """Unfinished jobs nobody has worked on for a minute (a lost message, a killed worker)."""
    quiet = utcnow() - timedelta(minutes=1)
    stmt = select(BulkJob.id).where(
        BulkJob.state.in_(UNFINISHED),
        (BulkJob.heartbeat_at.is_(None) & (BulkJob.confirmed_at <= quiet)) | (BulkJob.heartbeat_at <= quiet),
    )
    return list(session.scalars(stmt))


def purge_old_jobs(session: Session) -> int:
    """Previews never confirmed (after a day) and finished jobs past the retention period go, items too."""
    now = utcnow()
    old_previews = (BulkJob.state == JobState.PREVIEW) & (
        BulkJob.created_at < now - timedelta(hours=PREVIEW_HOURS)
    )
    expired = BulkJob.state.in_(FINISHED) & (
        BulkJob.finished_at < now - timedelta(days=get_settings().job_retention_days)
    )
    ids = list(session.scalars(select(BulkJob.id).where(old_previews | expired)))
    for chunk in _chunks(ids, 500):
        session.execute(delete(BulkItem).where(BulkItem.job_id.in_(chunk)))
        session.execute(update(BulkJob).where(BulkJob.retry_of_id.in_(chunk)).values(retry_of_id=None))
        session.execute(delete(BulkJob).where(BulkJob.id.in_(chunk)))
    return len(ids)


def forget_users(session: Session, user_ids: Sequence[int]) -> None:
    """A deleted user's job items keep only the opaque id: no name, email or row data."""
    for chunk in _chunks(list(user_ids)):
        session.execute(
            update(BulkItem)
            .where(BulkItem.user_id.in_(chunk))
            .values(identifier=None, payload=None)
            .execution_options(synchronize_session=False)
        )


def ensure_valid_state(job: BulkJob, *states: JobState) -> None:
    if job.state not in states:
        raise InvalidState(f"The job is {job.state}.")
