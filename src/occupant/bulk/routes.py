"""REST API: bulk jobs — submit (a selection, a list of emails, JSON rows or a CSV file), preview, confirm,
follow the progress, read the items, cancel, retry the failed ones, download the results and templates.

The request commits the job; a worker runs it after the commit. Poll ``GET /bulk-jobs/{id}`` for the
counts while it is ``QUEUED`` or ``RUNNING``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from occupant.api import responses
from occupant.api.deps import ApiActor, ApiDb
from occupant.api.http import API_PREFIX, Id, IdFilter, PageParams, page_params, paged
from occupant.api.schemas import ErrorOut, PageOut
from occupant.authz.actor import Actor, ActorKind
from occupant.authz.scope import Perm, require
from occupant.bulk import engine, queries
from occupant.bulk.kinds import KINDS
from occupant.bulk.models import BulkJob, ItemStatus, JobState
from occupant.bulk.schemas import ItemOut, JobCreate, JobOut
from occupant.bulk.submission import file_too_large, submit_request, submit_upload
from occupant.kit.csvout import stream_csv
from occupant.kit.errors import FieldErrors, OccupantError
from occupant.kit.runtime import get_read_session_factory
from occupant.kit.settings import get_settings
from occupant.staff.models import ApiKey

router = APIRouter(tags=["bulk jobs"], responses=responses.COMMON)
JobPage = Annotated[PageParams, Depends(page_params(int))]
ItemPage = Annotated[PageParams, Depends(page_params(int, int))]

# Besides the file, a multipart body's parts are a few short fields at most.
MULTIPART_SLACK = 64 * 1024
# The query parameters of an upload that are not the kind's options.
UPLOAD_PARAMETERS = frozenset({"kind", "occupier_id", "preview", "filename"})
RAW_CSV_TYPES = frozenset(
    {"", "text/csv", "application/csv", "text/plain", "application/octet-stream", "application/vnd.ms-excel"}
)

CONFLICTS: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorOut,
        "description": "`job_not_pending` (the job is past that step), `occupier_decommissioned`.",
    }
}
ONE = responses.NOT_FOUND
WRITE = {**responses.NOT_FOUND, **CONFLICTS}


class UnsupportedMediaType(OccupantError):
    code = "unsupported_media_type"
    status = 415


class BadMultipart(OccupantError):
    code = "bad_request"
    status = 400


def job_out(job: BulkJob) -> JobOut:
    kind = KINDS.get(job.kind)
    return JobOut.of(job, title=kind.title if kind is not None else job.kind, prefix=API_PREFIX)


def requester_name(db: Session, actor: Actor) -> str | None:
    """Who asked, for people reading the job list: the API key's name."""
    if actor.kind is ActorKind.API_KEY and actor.id is not None:
        key = db.get(ApiKey, actor.id)
        return f"API key {key.name}" if key is not None else None
    return None


def _created(response: Response, job: BulkJob) -> JobOut:
    response.headers["Location"] = f"{API_PREFIX}/bulk-jobs/{job.id}"
    return job_out(job)


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


@router.post(
    "/bulk-jobs",
    status_code=201,
    summary="Submit a bulk job",
    responses=WRITE,
)
def create_job(body: JobCreate, response: Response, db: ApiDb, actor: ApiActor) -> JobOut:
    """Check every item now and answer with the job: `PREVIEW` (nothing changed yet; its counts say what
    would happen, `GET …/items?status=FAILED` why rows would fail) or, with `"preview": false`, `QUEUED`.

    Give exactly one source: `user_ids`, `filter`, `emails`, or `rows` for kinds that read files. Errors:
    `validation_error` with details `unknown_kind`, `source_required`, `one_source_only`,
    `source_not_supported`, `no_rows_for_kind`, `too_many_items`, `no_items`, `unknown_column`,
    `params.*` fields; 404 for an occupier out of reach; 409 `occupier_decommissioned`."""
    job = submit_request(db, body, actor=actor, requested_by_name=requester_name(db, actor))
    return _created(response, job)


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str | None


async def _capped(request: Request, cap: int, limit: int) -> AsyncGenerator[bytes, None]:
    """The body, refused (``csv_too_large``) as soon as more than ``cap`` bytes came: never read whole."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise file_too_large(size, limit)
        yield chunk


async def read_upload(request: Request, actor: ApiActor) -> Upload:
    """The uploaded CSV: the raw body (``text/csv``) or the multipart part ``file``. A ``Content-Length``
    beyond the limit is refused before a byte is read, a body without one as soon as it passes the limit."""
    del actor  # authenticated before anything is read
    limit = get_settings().csv_max_bytes
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = _content_length(request)
    if media == "multipart/form-data":
        cap = limit + MULTIPART_SLACK
        if length is not None and length > cap:
            raise file_too_large(length, limit)
        try:
            form = await MultiPartParser(request.headers, _capped(request, cap, limit), max_files=1).parse()
        except MultiPartException as exc:
            raise BadMultipart(f"The multipart body cannot be read: {exc.message}") from None
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise FieldErrors.single(
                "file",
                "required",
                'Send the CSV file as the multipart part "file" (or as the body, text/csv).',
            )
        try:
            return Upload(await part.read(), part.filename)
        finally:
            await form.close()
    if media not in RAW_CSV_TYPES:
        raise UnsupportedMediaType(
            f'Send the CSV file as the body (Content-Type: text/csv) or as the multipart part "file"; not '
            f"{media}. Rows as JSON go to POST {API_PREFIX}/bulk-jobs."
        )
    if length is not None and length > limit:
        raise file_too_large(length, limit)
    chunks = [chunk async for chunk in _capped(request, limit, limit)]
    return Upload(b"".join(chunks), None)


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The CSV file: the body itself, or the part `file` of a multipart form.",
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}


@router.post(
    "/bulk-jobs/upload",
    status_code=201,
    summary="Submit a bulk job from a CSV file",
    responses={
        **WRITE,
        415: {"model": ErrorOut, "description": "`unsupported_media_type`."},
    },
    openapi_extra=_UPLOAD_BODY,
)
def upload_job(
    request: Request,
    response: Response,
    db: ApiDb,
    actor: ApiActor,
    upload: Annotated[Upload, Depends(read_upload)],
    kind: Annotated[str, Query(min_length=1, max_length=40, description="`create`, `deactivate`…")],
    occupier_id: IdFilter = None,
    preview: Annotated[bool, Query(description="False: confirm the job at once.")] = True,
    filename: Annotated[str | None, Query(max_length=200, description="Shown with the job.")] = None,
) -> JobOut:
    """Read the file (UTF-8 with or without BOM, UTF-16; comma, semicolon or tab), check every row and answer
    with the job, `PREVIEW` unless `preview=false`. Every other query parameter is one of the kind's options,
    e.g. `on_existing=skip` for `create`, `remove_from_groups=true` for `deactivate`.

    The file as a whole is refused with 422 and a `csv_*` code: `csv_too_large` (beyond
    `OCCUPANT_CSV_MAX_BYTES`, refused before it is read), `csv_too_many_rows`, `csv_encoding`, `csv_empty`,
    `csv_columns` (details: every header problem), `csv_malformed`. Problems of single rows are the failed
    items of the preview."""
    options = {k: v for k, v in request.query_params.items() if k not in UPLOAD_PARAMETERS}
    job = submit_upload(
        db,
        kind=kind,
        data=upload.data,
        filename=filename or upload.filename,
        occupier_id=occupier_id,
        params=options or None,
        preview=preview,
        actor=actor,
        requested_by_name=requester_name(db, actor),
    )
    return _created(response, job)


@router.get("/bulk-jobs", summary="List bulk jobs")
def list_jobs(
    request: Request,
    response: Response,
    db: ApiDb,
    actor: ApiActor,
    page: JobPage,
    kind: Annotated[str | None, Query(max_length=40, description="Only jobs of this kind.")] = None,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    occupier_id: IdFilter = None,
) -> PageOut[JobOut]:
    """Newest first: the jobs on occupiers you can see (an occupier key: its occupier's)."""
    require(actor, Perm.MANAGE_USERS)
    found = queries.list_jobs(
        db, actor, occupier_id=occupier_id, kind=kind, state=state, cursor=page.cursor, limit=page.limit
    )
    return paged(request, response, found, job_out)


@router.get(
    "/bulk-jobs/templates/{kind}.csv",
    summary="Download the CSV template of a kind",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The header row and one example row."}},
)
def template(kind: str, actor: ApiActor) -> Response:
    """UTF-8 with a BOM (for Excel). `validation_error` (`unknown_kind`, `no_file_for_kind`) for a kind
    without a file."""
    data = engine.template(kind)
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind}-template.csv"'},
    )


@router.get("/bulk-jobs/{job_id}", summary="Get a bulk job and its progress", responses=ONE)
def get_job(job_id: Id, db: ApiDb, actor: ApiActor) -> JobOut:
    """The state and the counts: `processed` of `total`, and how many succeeded, failed or were excluded."""
    return job_out(engine.get_job(db, actor, job_id))


@router.get("/bulk-jobs/{job_id}/items", summary="List a bulk job's items", responses=ONE)
def list_items(
    job_id: Id,
    request: Request,
    response: Response,
    db: ApiDb,
    actor: ApiActor,
    page: ItemPage,
    status: Annotated[
        list[ItemStatus] | None,
        Query(description="Only items in these states (repeat it: `status=FAILED&status=EXCLUDED`)."),
    ] = None,
) -> PageOut[ItemOut]:
    """In file or selection order: each item's status, what it did (`outcome`) or why it failed (`code`,
    `message`, and `errors` for a row with several invalid fields)."""
    job = engine.get_job(db, actor, job_id)
    found = queries.item_page(db, job, statuses=status, cursor=page.cursor, limit=page.limit)
    return paged(request, response, found, lambda item: ItemOut.of(item, job))


@router.post("/bulk-jobs/{job_id}/confirm", summary="Start a previewed bulk job", responses=WRITE)
def confirm_job(job_id: Id, db: ApiDb, actor: ApiActor) -> JobOut:
    """`QUEUED`: the job's users are held (those busy meanwhile are excluded) and a worker runs it. 409
    `job_not_pending` unless the job is a `PREVIEW`; 409 `occupier_decommissioned`."""
    job = engine.get_job(db, actor, job_id, for_update=True)
    return job_out(engine.confirm(db, job, actor=actor))


@router.post("/bulk-jobs/{job_id}/cancel", summary="Cancel a bulk job", responses=WRITE)
def cancel_job(job_id: Id, db: ApiDb, actor: ApiActor) -> JobOut:
    """`CANCELLED`: it stops before its next chunk; items not started stay untouched (`pending`). 409
    `job_not_pending` when it has finished."""
    job = engine.get_job(db, actor, job_id, for_update=True)
    return job_out(engine.cancel(db, job, actor=actor))


@router.post(
    "/bulk-jobs/{job_id}/retry-failed",
    status_code=201,
    summary="Retry a bulk job's failed items",
    responses=WRITE,
)
def retry_failed(job_id: Id, response: Response, db: ApiDb, actor: ApiActor) -> JobOut:
    """A new job, previewed again, of the failed and excluded items with the same kind and options. 409
    `job_not_pending` before the job has finished; `validation_error` (`no_items`) when nothing failed."""
    job = engine.get_job(db, actor, job_id)
    return _created(response, engine.retry_failed(db, job, actor=actor))


@router.get(
    "/bulk-jobs/{job_id}/results.csv",
    summary="Download a bulk job's results",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per item, in file or selection order."},
        **ONE,
    },
)
def results(job_id: Id, db: ApiDb, actor: ApiActor) -> StreamingResponse:
    """Columns row, identifier, status, outcome, code, message; streamed; formulas in cells neutralised."""
    job = engine.get_job(db, actor, job_id)
    return StreamingResponse(
        _results_csv(job.id),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="bulk-job-{job.id}-results.csv"',
            "Cache-Control": "no-store",
        },
    )


def _results_csv(job_id: int) -> Iterator[str]:
    with get_read_session_factory()() as session:  # deferred on SQLite: a slow download locks nothing
        job = session.get(BulkJob, job_id)
        if job is not None:
            yield from stream_csv(engine.RESULT_HEADER, engine.results_rows(session, job))
