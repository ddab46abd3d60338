"""Console pages for bulk operations on an occupier's users, and the Jobs page.

- "Edit or delete multiple users" (seed 000): a dialog on the Users tab — filters above the columns,
  "Select all users", a check box per row; then delete, the edit's changes, or another action on the
  selection; the confirmation; the progress (polled every second); the Done / Partially done / Error
  outcome with "Retry failed". Every step is a partial that htmx swaps into the dialog (``#bulk-dialog``);
  the same URL without htmx is a page showing that step, so the dialog works without JavaScript.
- "Deactivate users" (seed 004): a CSV file (with its template) or pasted emails → the preview of every row
  → confirmation → progress → results.
- "Add multiple users" (seed 002): a CSV file with the policy for existing emails → the preview (counts and
  the rows with errors, a page at a time) → confirmation → progress → results and their download.
- Jobs: the recent jobs, and each job's page (its preview, progress or outcome, failed items, results).

The handlers parse, call one engine function, and render; the rules are the engine's and the kinds'.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from occupant.authz.scope import Perm, require
from occupant.bulk import engine, queries, views
from occupant.bulk.kinds import KINDS
from occupant.bulk.models import BulkJob, JobState
from occupant.kit.csvin import CsvError
from occupant.kit.csvout import stream_csv
from occupant.kit.errors import FieldErrors, OccupantError
from occupant.kit.runtime import get_read_session_factory
from occupant.kit.settings import get_settings
from occupant.occupiers.models import Occupier
from occupant.occupiers.pages import occupier_context
from occupant.operators.models import Operator
from occupant.users.filters import UserFilter, count_filtered
from occupant.users.pages import load_occupier
from occupant.users.service import ensure_occupier_open
from occupant.web import forms
from occupant.web.deps import ConsoleDb, StaffContext, console, form_data
from occupant.web.forms import Form
from occupant.web.render import hx_target, redirect, render

router = APIRouter(include_in_schema=False)

SLOT = "bulk-slot"  # where the Users tab puts the dialog
DIALOG = "bulk-dialog"  # the dialog: each step is swapped into it
LIST = "bulk-list"  # the dialog's table (new filters)
MORE = "bulk-more"  # the row that loads the next users
JOB_VIEW = "job-view"  # a job's view (polled while it runs)
ITEMS = "job-items"  # a job's table of items
ITEMS_MORE = "job-items-more"  # the row that loads more items
EDIT_CHOICES = ("wifi", "wifi_homesite_id", "wifi_device_limit", "role", "account")
EDIT_FLAGS = ("invite_portal", "invite_mobile_app")
ERROR_TITLES = {403: "Not allowed", 404: "Not found", 409: "Not possible now", 422: "Check the form"}


def _open_occupier(db: Session, ctx: StaffContext, occupier_id: int) -> Occupier:
    """The occupier, in scope (else NotFound), open (else OccupierDecommissioned: seed 000, the dialog is
    not offered in a decommission state), and the staff member manages users (else PermissionDenied)."""
    require(ctx.actor, Perm.MANAGE_USERS)
    occupier = load_occupier(db, ctx, occupier_id)
    ensure_occupier_open(occupier)
    return occupier


def _in_dialog(request: Request, data: FormData | None = None) -> bool:
    """The request comes from the dialog (its steps and its job view say ``view=dialog``)."""
    if hx_target(request) in (DIALOG, SLOT):
        return True
    if hx_target(request) is None:
        return False
    sent = request.query_params.get("view") or (forms.text(data, "view") if data is not None else "")
    return sent == "dialog"


def _dialog_error(request: Request, exc: OccupantError) -> Response:
    """An error inside the dialog, shown in the dialog (the page's message area is behind it)."""
    context = {
        "title": ERROR_TITLES.get(exc.status, "Something went wrong"),
        "message": exc.message,
        "code": exc.code,
    }
    target = hx_target(request)
    template = "bulk/_job_error.html" if target == JOB_VIEW else "bulk/_dialog_error.html"
    return render(
        request, "_error.html", {**context, "status": exc.status}, partial=template, status_code=exc.status
    )


def _dialog_occupier(request: Request, load: Callable[[], Occupier]) -> Occupier | Response:
    """The occupier of a dialog request; an error (decommissioning began meanwhile, say) is shown inside the
    dialog rather than behind it."""
    try:
        return load()
    except OccupantError as exc:
        if hx_target(request) in (DIALOG, LIST, MORE):
            return _dialog_error(request, exc)
        raise


# --- the "Edit or delete multiple users" dialog ---------------------------------------------------------


def _show_step(
    request: Request,
    occupier: Occupier,
    step: str,
    context: dict[str, Any],
    *,
    title: str,
    status_code: int = 200,
) -> Response:
    """A step of the dialog: the dialog itself for the Users tab's button, the step alone for the dialog,
    else a page showing the step."""
    full = {**occupier_context(occupier, "users"), "step": step, "title": title, **context}
    return render(
        request,
        "bulk/page.html",
        full,
        partial={SLOT: "bulk/_dialog.html", DIALOG: step},
        status_code=status_code,
    )


def _select_step(
    request: Request,
    db: Session,
    ctx: StaffContext,
    occupier: Occupier,
    f: UserFilter,
    *,
    cursor: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = views.select_context(db, ctx.actor, occupier, f, cursor=cursor)
    context.update(error=error, cursor=cursor, occupier=occupier)
    target = hx_target(request)
    if target == LIST:  # the filters changed: the table again
        return render(request, "bulk/page.html", context, partial="bulk/_select_list.html")
    return _show_step(
        request,
        occupier,
        "bulk/_select.html",
        context,
        title="Edit or delete multiple users",
        status_code=status_code,
    )


@router.get("/occupiers/{occupier_id:int}/users/bulk")
def bulk_dialog(
    request: Request,
    db: ConsoleDb,
    occupier_id: int,
    cursor: str | None = None,
    ctx: StaffContext = Depends(console),
) -> Response:
    """The dialog: the occupier's users that no action holds, under the filters of the query string."""
    occupier = _dialog_occupier(request, lambda: _open_occupier(db, ctx, occupier_id))
    if isinstance(occupier, Response):
        return occupier
    f = views.read_filter(request.query_params, occupier)
    if hx_target(request) == MORE:
        context = views.select_context(db, ctx.actor, occupier, f, cursor=cursor, with_counts=False)
        return render(
            request, "bulk/page.html", {**context, "occupier": occupier}, partial="bulk/_select_rows.html"
        )
    return _select_step(request, db, ctx, occupier, f, cursor=cursor)


@router.post("/occupiers/{occupier_id:int}/users/bulk")
def bulk_action(
    request: Request,
    db: ConsoleDb,
    occupier_id: int,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    """An action on the selection: the edit's changes to choose next, or a previewed job to confirm."""
    occupier = _dialog_occupier(request, lambda: _open_occupier(db, ctx, occupier_id))
    if isinstance(occupier, Response):
        return occupier
    selection = views.read_selection(data, occupier)
    action = forms.text(data, "action")
    try:
        if action == "edit":
            if selection.empty:
                raise views.NothingSelected()
            return _edit_step(request, db, ctx, occupier, selection, Form(values={}))
        job = views.submit_selection(
            db, ctx.actor, occupier, kind=action, selection=selection, requested_by_name=ctx.name
        )
    except FieldErrors as exc:
        db.rollback()
        message = " ".join(e["message"] for e in exc.errors) or exc.message
        return _select_step(request, db, ctx, occupier, selection.filter, error=message, status_code=422)
    return _show_job(request, db, job, dialog=_in_dialog(request))


def _edit_step(
    request: Request,
    db: Session,
    ctx: StaffContext,
    occupier: Occupier,
    selection: views.Selection,
    form: Form,
    *,
    status_code: int = 200,
) -> Response:
    operator = db.get(Operator, occupier.operator_id)
    count = count_filtered(db, ctx.actor, selection.filter) if selection.everyone else len(selection.user_ids)
    context = {
        "selection": selection,
        "selected": count,
        "form": form,
        "sites": occupier.sites,
        "max_devices": operator.wifi_max_devices if operator is not None else None,
        "filter_query": views.filter_query(selection.filter),
    }
    return _show_step(
        request, occupier, "bulk/_edit.html", context, title="Edit users", status_code=status_code
    )


@router.post("/occupiers/{occupier_id:int}/users/bulk/edit")
def bulk_edit(
    request: Request,
    db: ConsoleDb,
    occupier_id: int,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    """The changes chosen for the selection: a previewed ``edit`` job to confirm."""
    occupier = _dialog_occupier(request, lambda: _open_occupier(db, ctx, occupier_id))
    if isinstance(occupier, Response):
        return occupier
    selection = views.read_selection(data, occupier, prefix=views.CARRIED)
    values: dict[str, Any] = {name: forms.text(data, name) for name in EDIT_CHOICES}
    values.update({name: forms.checkbox(data, name) for name in EDIT_FLAGS})
    chosen = {name: value for name, value in values.items() if value not in ("", False)}
    try:
        # The options as the kind reads them (numbers as numbers), and only those set.
        params = engine.kind_of("edit").parse_params(chosen).model_dump(mode="json", exclude_defaults=True)
        job = views.submit_selection(
            db,
            ctx.actor,
            occupier,
            kind="edit",
            selection=selection,
            params=params,
            requested_by_name=ctx.name,
        )
    except FieldErrors as exc:
        db.rollback()
        form = Form(values=values).add_errors(_edit_errors(exc))
        return _edit_step(request, db, ctx, occupier, selection, form, status_code=422)
    return _show_job(request, db, job, dialog=_in_dialog(request))


def _edit_errors(exc: FieldErrors) -> FieldErrors:
    """The edit's errors for a person: the options' checks speak of whole params ("Value error, ...")."""
    errors = []
    for error in exc.errors:
        message = error["message"].removeprefix("Value error, ")
        field = error.get("field") or "_form"
        if field == "_form" and "wifi_homesite_id" in message:
            field, message = "wifi_homesite_id", "New Wi-Fi accounts need a homesite: choose one."
        errors.append({**error, "field": field, "message": message})
    return FieldErrors(errors)


# --- a job ------------------------------------------------------------------------------------------------


def _job_context(db: Session, job: BulkJob, request: Request) -> dict[str, Any]:
    params = request.query_params
    context = views.job_context(db, job, items_view=params.get("show"), cursor=params.get("cursor"))
    occupier = context["job_occupier"]
    if occupier is not None:
        context.update(occupier_context(occupier, "users"))
    else:
        context["section"] = "jobs"
    context["announce_key"] = _announce_key(job)
    context["seen"] = params.get("seen")
    return context


def _announce_key(job: BulkJob) -> str:
    """What the progress's live region says changes with the state, and at each quarter of the way."""
    quarter = job.processed * 4 // job.total if job.total else 0
    return f"{job.state}:{quarter}"


def _show_job(
    request: Request,
    db: Session,
    job: BulkJob,
    *,
    dialog: bool,
    focus: bool = True,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    """The job's view: in the dialog, or (a form posted without htmx) its page after a redirect."""
    if not dialog and request.method == "POST" and error is None:
        return redirect(request, f"/jobs/{job.id}")
    context = {**_job_context(db, job, request), "in_dialog": dialog, "focus": focus, "error": error}
    return render(
        request,
        "bulk/job_page.html",
        context,
        partial={
            DIALOG: "bulk/_job.html",
            JOB_VIEW: "bulk/_job_view.html",
            ITEMS: "bulk/_items.html",
            ITEMS_MORE: "bulk/_item_rows.html",
        },
        status_code=status_code,
    )


def _load_job(db: Session, ctx: StaffContext, job_id: int, *, for_update: bool = False) -> BulkJob:
    require(ctx.actor, Perm.MANAGE_USERS)
    return engine.get_job(db, ctx.actor, job_id, for_update=for_update)


@router.get("/jobs/{job_id:int}")
def job_page(request: Request, db: ConsoleDb, job_id: int, ctx: StaffContext = Depends(console)) -> Response:
    """A job: its preview to confirm, its progress (polled), or its outcome with the items that failed."""
    dialog = _in_dialog(request)
    try:
        job = _load_job(db, ctx, job_id)
    except OccupantError as exc:
        if dialog:
            return _dialog_error(request, exc)
        raise
    return _show_job(request, db, job, dialog=dialog, focus=hx_target(request) != JOB_VIEW)


@router.get("/jobs/{job_id:int}/confirm")
def confirm_page(
    request: Request, db: ConsoleDb, job_id: int, ctx: StaffContext = Depends(console)
) -> Response:
    """The confirmation as a page (the pop-up's fallback without JavaScript)."""
    job = _load_job(db, ctx, job_id)
    if job.state != JobState.PREVIEW:
        return redirect(request, f"/jobs/{job.id}")
    context = {**_job_context(db, job, request), "in_dialog": False}
    return render(request, "bulk/confirm_page.html", context)


def _job_action(
    request: Request, db: Session, ctx: StaffContext, job_id: int, data: FormData, act: Any
) -> Response:
    """Run ``act(job)`` (confirm, cancel, retry) and show the job it answers, in the dialog or as a page.
    A stale job (already confirmed, finished, gone) is said where the admin is looking."""
    dialog = _in_dialog(request, data)
    try:
        job = _load_job(db, ctx, job_id, for_update=True)
        shown = act(job)
    except OccupantError as exc:
        db.rollback()
        if dialog:
            return _dialog_error(request, exc)
        raise
    if shown is None:  # a preview cancelled: nothing was done
        if dialog:
            return Response(status_code=200, headers={"HX-Trigger": "close-dialog"})
        return redirect(request, _back_url(job))
    return _show_job(request, db, shown, dialog=dialog)


def _back_url(job: BulkJob) -> str:
    """Where the admin came from: the upload page of a file's job, else the Users tab (or the Jobs page)."""
    if job.occupier_id is None:
        return "/jobs"
    base = f"/occupiers/{job.occupier_id}/users"
    if "file" in (job.selection or {}) or "emails" in (job.selection or {}):
        return base + ("/import" if job.kind == "create" else "/deactivate")
    return base


@router.post("/jobs/{job_id:int}/confirm")
def confirm_job(
    request: Request,
    db: ConsoleDb,
    job_id: int,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    """Start the previewed job: it runs in the background; its view shows the progress."""
    return _job_action(request, db, ctx, job_id, data, lambda job: engine.confirm(db, job, actor=ctx.actor))


@router.post("/jobs/{job_id:int}/cancel")
def cancel_job(
    request: Request,
    db: ConsoleDb,
    job_id: int,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    """Stop the job before its next chunk (a preview: discard it, nothing was done)."""

    def cancel(job: BulkJob) -> BulkJob | None:
        was_preview = job.state == JobState.PREVIEW
        cancelled = engine.cancel(db, job, actor=ctx.actor)
        return None if was_preview else cancelled

    return _job_action(request, db, ctx, job_id, data, cancel)


@router.post("/jobs/{job_id:int}/retry")
def retry_job(
    request: Request,
    db: ConsoleDb,
    job_id: int,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    """A new job from the failed and excluded items, previewed again: its confirmation."""

    def retry(job: BulkJob) -> BulkJob:
        again = engine.retry_failed(db, job, actor=ctx.actor)
        again.requested_by_name = ctx.name
        return again

    return _job_action(request, db, ctx, job_id, data, retry)


def _results(job_id: int, actor: Any) -> Any:
    with get_read_session_factory()() as session:
        job = engine.get_job(session, actor, job_id)
        yield from stream_csv(engine.RESULT_HEADER, engine.results_rows(session, job))


@router.get("/jobs/{job_id:int}/results.csv")
def download_results(db: ConsoleDb, job_id: int, ctx: StaffContext = Depends(console)) -> Response:
    """The job's items as CSV: row, identifier, status, outcome, code, message."""
    job = _load_job(db, ctx, job_id)
    return results_response(job, _results(job.id, ctx.actor))


def results_response(job: BulkJob, body: Any) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="job-{job.id}-{job.kind}-results.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/jobs")
def jobs_page(
    request: Request,
    db: ConsoleDb,
    occupier_id: int | None = None,
    cursor: str | None = None,
    ctx: StaffContext = Depends(console),
) -> Response:
    """The recent jobs the staff member may see (one occupier's with ``occupier_id``), newest first."""
    require(ctx.actor, Perm.MANAGE_USERS)
    occupier = load_occupier(db, ctx, occupier_id) if occupier_id is not None else None
    page = queries.list_jobs(db, ctx.actor, occupier_id=occupier_id, cursor=cursor)
    context = {
        "jobs": page.items,
        "next_cursor": page.next_cursor,
        "occupier_names": queries.occupier_names(db, page.items),
        "kinds": KINDS,
        "filter_occupier": occupier,
        "section": "jobs",
    }
    return render(request, "bulk/jobs.html", context, partial={"jobs-more": "bulk/_job_rows.html"})


@router.get("/jobs/templates/{kind}.csv")
def csv_template(kind: str, ctx: StaffContext = Depends(console)) -> Response:
    """The CSV template of a kind that reads files: the header and one example row."""
    require(ctx.actor, Perm.MANAGE_USERS)
    return Response(
        engine.template(kind),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind}-users-template.csv"'},
    )


# --- uploads: add multiple users, deactivate users -------------------------------------------------------


def _columns(kind: str) -> list[Any]:
    handler = KINDS.get(kind)
    spec = handler.csv_spec if handler is not None else None
    return list(spec.columns) if spec is not None else []


def _upload_page(
    request: Request,
    occupier: Occupier,
    template: str,
    form: Form,
    *,
    file_error: CsvError | None = None,
    status_code: int = 200,
) -> Response:
    kind = "create" if template.endswith("import.html") else "deactivate"
    context = {
        **occupier_context(occupier, "users"),
        "form": form,
        "columns": _columns(kind),
        "accepts_file": bool(_columns(kind)),
        "file_error": file_error,
        "file_error_details": _csv_details(file_error),
        "max_rows": get_settings().csv_max_rows,
    }
    return render(request, template, context, status_code=status_code)


def _csv_details(exc: CsvError | None) -> list[str]:
    """Each problem of a file's header, unless the message already says them all."""
    if exc is None or not isinstance(exc.details, list):
        return []
    found = [str(d.get("message", "")) for d in exc.details if isinstance(d, dict) and d.get("message")]
    return [d for d in found if d not in exc.message]


@router.get("/occupiers/{occupier_id:int}/users/import")
def import_page(
    request: Request, db: ConsoleDb, occupier_id: int, ctx: StaffContext = Depends(console)
) -> Response:
    """Add multiple users: the template, the upload, and what to do with emails that exist already."""
    occupier = _open_occupier(db, ctx, occupier_id)
    return _upload_page(request, occupier, "bulk/import.html", Form(values={"on_existing": "fail"}))


@router.post("/occupiers/{occupier_id:int}/users/import")
def import_users(
    request: Request,
    db: ConsoleDb,
    occupier_id: int,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    """The uploaded file, every row checked (nothing added yet): the job's preview to confirm."""
    occupier = _open_occupier(db, ctx, occupier_id)
    on_existing = forms.text(data, "on_existing") or "fail"
    form = Form(values={"on_existing": on_existing})
    try:
        content, filename = views.read_upload(data)
        job = engine.submit_file(
            db,
            kind="create",
            data=content,
            filename=filename,
            actor=ctx.actor,
            occupier=occupier,
            params={"on_existing": on_existing},
            requested_by_name=ctx.name,
        )
    except CsvError as exc:
        db.rollback()
        return _upload_page(request, occupier, "bulk/import.html", form, file_error=exc, status_code=422)
    except FieldErrors as exc:
        db.rollback()
        form.add_errors(exc)
        return _upload_page(request, occupier, "bulk/import.html", form, status_code=422)
    return redirect(request, f"/jobs/{job.id}")


@router.get("/occupiers/{occupier_id:int}/users/deactivate")
def deactivate_page(
    request: Request, db: ConsoleDb, occupier_id: int, ctx: StaffContext = Depends(console)
) -> Response:
    """Deactivate users: a CSV file (with its template) or a pasted list of emails."""
    occupier = _open_occupier(db, ctx, occupier_id)
    return _upload_page(request, occupier, "bulk/deactivate.html", Form(values={}))


@router.post("/occupiers/{occupier_id:int}/users/deactivate")
def deactivate_users(
    request: Request,
    db: ConsoleDb,
    occupier_id: int,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    """The file's rows or the pasted emails, each checked (nobody deactivated yet): the preview to confirm."""
    occupier = _open_occupier(db, ctx, occupier_id)
    emails = forms.text(data, "emails")
    remove = forms.checkbox(data, "remove_from_groups")
    form = Form(values={"emails": emails, "remove_from_groups": remove})
    has_file = bool(getattr(data.get("file"), "filename", None))
    try:
        if has_file and emails:
            raise FieldErrors.single(
                "emails", "file_and_emails", "Upload a file or paste emails, not both: clear one of them."
            )
        if not has_file and not emails:
            what = "Upload a CSV file or paste email addresses." if _columns("deactivate") else None
            raise FieldErrors.single("emails", "no_emails", what or "Paste at least one email address.")
        if has_file:
            content, filename = views.read_upload(data)
            job = engine.submit_file(
                db,
                kind="deactivate",
                data=content,
                filename=filename,
                actor=ctx.actor,
                occupier=occupier,
                requested_by_name=ctx.name,
            )
        else:
            job = views.submit_emails(
                db, ctx.actor, occupier, text=emails, remove_from_groups=remove, requested_by_name=ctx.name
            )
    except CsvError as exc:
        db.rollback()
        return _upload_page(request, occupier, "bulk/deactivate.html", form, file_error=exc, status_code=422)
    except FieldErrors as exc:
        db.rollback()
        form.add_errors(exc)
        return _upload_page(request, occupier, "bulk/deactivate.html", form, status_code=422)
    return redirect(request, f"/jobs/{job.id}")
