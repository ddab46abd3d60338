"""Bulk jobs in and out of the API (and the CLI's ``--json``): a job to submit, a job's progress, its items.

A submitted job names its kind and exactly one source of items: ``user_ids``, a ``filter`` (every user it
matches now), ``emails`` (a pasted list) or ``rows`` (a file's rows as JSON objects, for the kinds that read
files). :func:`csv_rows` turns those objects into the rows a file would have given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from occupant.bulk.models import BulkItem, BulkJob, ItemStatus, JobState
from occupant.kit.csvin import CsvRow, CsvSpec
from occupant.kit.errors import FieldErrors
from occupant.users.filters import UserFilter
from occupant.users.schemas import RecordId

SOURCES = ("user_ids", "filter", "emails", "rows")
_LISTED = 10  # problems named in a message; ``details`` has them all

Email = Annotated[str, StringConstraints(max_length=320)]


class JobCreate(BaseModel):
    """A bulk job to check (and, with ``preview`` false, to start at once). Give exactly one source."""

    model_config = ConfigDict(extra="forbid")

    kind: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)] = Field(
        description="`create`, `edit`, `delete`, `deactivate`, `reactivate`, `send_welcome`, "
        "`force_password_reset`, `resend_invitation`…"
    )
    occupier_id: RecordId | None = Field(
        default=None,
        description="The occupier whose users the job is about; required for kinds that make users "
        "(`create`). An occupier key's own occupier when left out.",
    )
    preview: bool = Field(
        default=True,
        description="True: the job waits in `PREVIEW` (every item checked, nothing changed) until "
        "`POST /bulk-jobs/{id}/confirm`. False: it is confirmed at once.",
    )
    params: dict[str, Any] | None = Field(
        default=None,
        description='The kind\'s options, e.g. for `edit` `{"wifi": "deactivate"}`, for `create` '
        '`{"on_existing": "skip"}`, for `deactivate` `{"remove_from_groups": true}`.',
    )
    user_ids: list[RecordId] | None = Field(default=None, description="These users, in this order.")
    filter: UserFilter | None = Field(
        default=None, description="Every user matching this filter now (the selection is frozen)."
    )
    emails: list[Email] | None = Field(
        default=None, description="The users with these emails (a pasted list; blanks are skipped)."
    )
    rows: list[dict[str, Any]] | None = Field(
        default=None,
        description="For kinds that read files (`create`): one object per row, its keys the file's columns "
        '(`{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "wifi": true}`).',
    )

    @property
    def sources(self) -> list[str]:
        return [name for name in SOURCES if getattr(self, name) is not None]


class JobCounts(BaseModel):
    total: int = Field(description="Items in the job.")
    processed: int = Field(description="Items settled: succeeded + failed + excluded.")
    succeeded: int
    failed: int
    excluded: int = Field(description="Not offered: an action was in progress for the user, for example.")
    pending: int = Field(
        description="Not done (yet). In `PREVIEW`: the items that would be applied; in `CANCELLED`: those "
        "never started."
    )


class RequestedBy(BaseModel):
    kind: str = Field(description="`staff`, `api_key`, `occupier_user`, `system`…")
    id: str | None
    name: str | None


class JobLinks(BaseModel):
    self: str
    items: str
    failed_items: str
    results: str = Field(description="The results as CSV (row, identifier, status, outcome, code, message).")


class JobOut(BaseModel):
    """A bulk job and its progress: poll it (or its counts) while it is `QUEUED` or `RUNNING`."""

    id: int
    kind: str
    title: str
    state: JobState = Field(
        description="`PREVIEW` → `QUEUED` → `RUNNING` → `DONE` | `PARTIALLY_DONE` | `FAILED`; or `CANCELLED`."
    )
    occupier_id: int | None
    counts: JobCounts
    params: dict[str, Any]
    selection: dict[str, Any] = Field(description="How the items were chosen: ids, a filter, a file…")
    requested_by: RequestedBy
    retry_of_id: int | None = Field(description="The job whose failed items this one retries.")
    error: str | None
    created_at: datetime
    confirmed_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    links: JobLinks

    @classmethod
    def of(cls, job: BulkJob, *, title: str, prefix: str = "/api/v1") -> JobOut:
        base = f"{prefix}/bulk-jobs/{job.id}"
        return cls(
            id=job.id,
            kind=job.kind,
            title=title,
            state=JobState(job.state),
            occupier_id=job.occupier_id,
            counts=JobCounts(
                total=job.total,
                processed=job.processed,
                succeeded=job.succeeded,
                failed=job.failed,
                excluded=job.excluded,
                pending=job.pending,
            ),
            params=job.params or {},
            selection=job.selection or {},
            requested_by=RequestedBy(
                kind=job.requested_by_kind, id=job.requested_by_id, name=job.requested_by_name
            ),
            retry_of_id=job.retry_of_id,
            error=job.error,
            created_at=job.created_at,
            confirmed_at=job.confirmed_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            links=JobLinks(
                self=base,
                items=f"{base}/items",
                failed_items=f"{base}/items?status=FAILED&status=EXCLUDED",
                results=f"{base}/results.csv",
            ),
        )


class ItemError(BaseModel):
    field: str
    code: str
    message: str


class ItemOut(BaseModel):
    """One item: a file's row (``position`` is its line, the header being line 1), a list's entry or a
    selected user (from 1)."""

    position: int
    identifier: str | None = Field(description="What you recognise it by: the email, or the user's name.")
    user_id: int | None
    status: str = Field(
        description="`PENDING`, `SUCCEEDED`, `FAILED`, `EXCLUDED`; `NOT_STARTED` for an item a finished "
        "(cancelled) job never reached."
    )
    outcome: str | None = Field(description="What happened: `created`, `updated`, `deactivated`, …")
    code: str | None = Field(description="Why it failed, a stable code.")
    message: str | None
    errors: list[ItemError] | None = Field(description="A row with several invalid fields: each of them.")

    @classmethod
    def of(cls, item: BulkItem, job: BulkJob) -> ItemOut:
        status = str(item.status)
        if status == ItemStatus.PENDING and job.is_finished:
            status = "NOT_STARTED"
        return cls(
            position=item.position,
            identifier=item.identifier,
            user_id=item.user_id,
            status=status,
            outcome=item.outcome,
            code=item.code,
            message=item.message,
            errors=[ItemError(**e) for e in item.errors] if item.errors else None,
        )


# --- rows sent as JSON ----------------------------------------------------------------------------------


def _cell(value: Any) -> str | None:
    """A JSON value as the text of a cell; None for one that no cell holds (an object, a nested list)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "y" if value else "n"
    if isinstance(value, int | float | str):
        return str(value).strip()
    if isinstance(value, list) and all(
        isinstance(v, int | float | str) and not isinstance(v, bool) for v in value
    ):
        return ";".join(str(v).strip() for v in value)
    return None


def csv_rows(rows: Sequence[dict[str, Any]], spec: CsvSpec) -> list[CsvRow]:
    """The rows a file with these objects' values would have given (``line`` = index + 1).

    Keys are column names in any case; a value is read as a cell: text trimmed, a number as its digits,
    true / false as ``y`` / ``n``, a list as ``;``-separated values, null as blank. A required column left
    out is blank, so the row fails as a file's blank cell would. A key value (the email) seen before is a
    ``duplicate_in_file`` error of the later row. Raises FieldErrors naming every unknown column and every
    value no cell can hold (``rows.N.key``), before any row is checked.
    """
    known = {c.name for c in spec.columns}
    required = [c.name for c in spec.columns if c.required]
    problems: list[dict[str, str]] = []
    out: list[CsvRow] = []
    first_row: dict[str, int] = {}
    for line, raw in enumerate(rows, 1):
        values: dict[str, str] = {}
        for key, value in raw.items():
            name, field = key.strip().lower(), f"rows.{line - 1}.{key}"
            cell = _cell(value) if name in known else None
            if name not in known:
                problems.append(
                    {"field": field, "code": "unknown_column", "message": f"Unknown column {key!r}."}
                )
            elif cell is None:
                problems.append(
                    {
                        "field": field,
                        "code": "invalid_type",
                        "message": "Give text, a number, true/false or a list.",
                    }
                )
            else:
                values[name] = cell
        for name in required:
            values.setdefault(name, "")
        errors: list[dict[str, str]] = []
        if spec.key is not None and (key_value := values.get(spec.key, "").lower()):
            first = first_row.setdefault(key_value, line)
            if first != line:
                label = spec.key.replace("_", " ")
                errors.append(
                    {
                        "field": spec.key,
                        "code": "duplicate_in_file",
                        "message": f"Same {label} as row {first}.",
                    }
                )
        out.append(CsvRow(line, values, errors))
    if problems:
        listed = " ".join(f"{p['field']}: {p['message']}" for p in problems[:_LISTED])
        if len(problems) > _LISTED:
            listed += f" And {len(problems) - _LISTED:,} more."
        columns = ", ".join(c.name for c in spec.columns)
        raise FieldErrors(problems, f"Some rows cannot be read. {listed} The columns are: {columns}.")
    return out
