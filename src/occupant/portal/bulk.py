"""Bulk pages of the occupier portal, for occupier admins and within their rights: the "Edit or delete
multiple users" dialog, "Add multiple users" (a CSV file) and "Deactivate users" (a file or pasted emails),
the page of each job, and the Jobs page (the organisation's recent jobs). The console's pages
(``bulk/pages.py``) in the portal's layout and the visitor's language; the same engine, the same views
(``bulk/views.py``).

An admin's jobs act with their rights: a portal delete leaves out occupier admins and the admin themself
(the delete kind excludes them, with the reason); every job and user is read through their occupier's scope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from babel.numbers import format_decimal
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from jinja2 import pass_context
from jinja2.runtime import Context
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from occupant.authz.actor import ActorKind
from occupant.bulk import engine, queries, views
from occupant.bulk.kinds import KINDS
from occupant.bulk.models import BulkJob, JobState
from occupant.bulk.pages import results_response
from occupant.kit.csvin import CsvError
from occupant.kit.csvout import stream_csv
from occupant.kit.errors import FieldErrors, OccupantError
from occupant.kit.i18n import N_
from occupant.kit.runtime import get_read_session_factory
from occupant.kit.settings import get_settings
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.users.filters import UserFilter, count_filtered
from occupant.users.service import ensure_occupier_open
from occupant.web import forms
from occupant.web.deps import ConsoleDb, form_data
from occupant.web.forms import Form
from occupant.web.render import hx_target, redirect

from .deps import PortalContext, portal_admin
from .render import _FIELD_ERRORS, add_errors, error_text, gettext, render, templates

router = APIRouter(prefix="/portal", include_in_schema=False)

SLOT = "dialog-slot"  # the portal layout's slot for dialogs
DIALOG = "bulk-dialog"
LIST = "bulk-list"
MORE = "bulk-more"
JOB_VIEW = "job-view"
ITEMS = "job-items"
ITEMS_MORE = "job-items-more"
JOBS_MORE = "jobs-more"  # the Jobs page's row that loads older jobs
JOBS_PAGE = 25
EDIT_CHOICES = ("wifi", "wifi_homesite_id", "wifi_device_limit", "role", "account")
EDIT_FLAGS = ("invite_portal", "invite_mobile_app")

_TITLES = {
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("Not possible now"),
    422: N_("Check the form"),
}
# What an item's code says in the portal (the engine's messages are English).
_ITEM_ERRORS = {
    "not_found": N_("No user of your organisation has this email address, or the user no longer exists."),
    "duplicate_in_list": N_("The same email address is on an earlier line."),
    "duplicate_in_file": N_("The same email address is on an earlier line."),
    "action_in_progress": N_("An action was in progress for this user; try again when it has finished."),
    "cannot_delete_admin": N_("Occupier admins cannot be deleted in the portal; ask your operator."),
    "too_many_cells": N_("This row has more values than the file has columns."),
    "unexpected_error": N_("Something went wrong with this row on our side; it has been logged."),
}
# Messages of the pages' own checks, by code.
_FORM_ERRORS = {
    "nothing_selected": N_("Select at least one user first."),
    "unknown_action": N_("Choose one of the actions offered."),
    "no_file": N_("Choose a CSV file to upload."),
    "wrong_file_type": N_(
        "This is not a CSV file. In your spreadsheet choose Save as → CSV (comma-separated), then upload "
        "that file."
    ),
    "no_emails": N_("Upload a CSV file or paste email addresses."),
    "file_and_emails": N_("Upload a file or paste emails, not both: clear one of them."),
    "too_many_items": N_("Too many users are selected for one job; narrow the selection."),
}
_NO_MATCH = N_("No user matches these filters.")


@pass_context
def number(context: Context, value: int | None) -> str:
    """A count as the page's language writes it (1,234 · 1 234 · 1.234)."""
    return format_decimal(value or 0, locale=context.get("lang") or "en")


templates.env.globals["number"] = number
# A file that cannot be read at all, by its code; the reader's own (English) detail follows.
_CSV_ERRORS = {
    "csv_too_large": N_("The file is too large to import at once: split it into smaller files."),
    "csv_too_many_rows": N_("The file has too many rows to import at once: split it into smaller files."),
    "csv_encoding": N_("The file's characters cannot be read: save it as “CSV UTF-8” and upload it again."),
    "csv_empty": N_("The file is empty."),
    "csv_columns": N_("The columns are not the ones expected: compare the header row with the template."),
    "csv_malformed": N_("The file is not well-formed CSV (a quote left open, for example)."),
}


def _t(request: Request, message: str, **variables: Any) -> str:
    return gettext(request, message, **variables)


def item_problem(request: Request) -> Callable[[dict[str, str]], str]:
    """How the portal says one problem of an item: a field's error by its code, an item's by its code, else
    the engine's own (English) message."""

    def text(problem: dict[str, str]) -> str:
        code, message = problem.get("code", ""), problem.get("message", "")
        if problem.get("field") and code in _FIELD_ERRORS:
            return _t(request, _FIELD_ERRORS[code])
        if code in _ITEM_ERRORS:
            return _t(request, _ITEM_ERRORS[code])
        return error_text(request, code, message)

    return text


def _form_error_text(request: Request, exc: FieldErrors) -> str:
    parts = []
    for error in exc.errors:
        known = _FORM_ERRORS.get(error.get("code", ""))
        if error.get("message") == "No user matches these filters.":
            known = _NO_MATCH
        parts.append(_t(request, known) if known else error.get("message", ""))
    return " ".join(parts) or exc.message


def _occupier(ctx: PortalContext) -> Occupier:
    occupier = ctx.user.occupier
    ensure_occupier_open(occupier)  # seed 000: nothing of this in a decommission state
    return occupier


def _in_dialog(request: Request, data: FormData | None = None) -> bool:
    if hx_target(request) in (DIALOG, SLOT):
        return True
    if hx_target(request) is None:
        return False
    sent = request.query_params.get("view") or (forms.text(data, "view") if data is not None else "")
    return sent == "dialog"


def _dialog_error(request: Request, exc: OccupantError) -> Response:
    context = {
        "status": exc.status,
        "title": _t(request, _TITLES.get(exc.status, N_("Something went wrong"))),
        "message": error_text(request, exc.code, exc.message),
        "details": [],
        "code": exc.code,
    }
    template = "bulk/_job_error.html" if hx_target(request) == JOB_VIEW else "bulk/_dialog_error.html"
    return render(request, "_error.html", context, partial=template, status_code=exc.status)


def _dialog_occupier(request: Request, load: Callable[[], Occupier]) -> Occupier | Response:
    """The occupier of a dialog request; an error (decommissioning began meanwhile, say) is shown inside the
    dialog rather than behind it."""
    try:
        return load()
    except OccupantError as exc:
        if hx_target(request) in (DIALOG, LIST, MORE):
            return _dialog_error(request, exc)
        raise


# --- the dialog -------------------------------------------------------------------------------------------


def _show_step(
    request: Request, step: str, context: dict[str, Any], *, title: str, status_code: int = 200
) -> Response:
    full = {"step": step, "title": title, "section": "users", **context}
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
    ctx: PortalContext,
    occupier: Occupier,
    f: UserFilter,
    *,
    cursor: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = views.select_context(db, ctx.actor, occupier, f, cursor=cursor)
    context.update(error=error, cursor=cursor, occupier=occupier)
    if hx_target(request) == LIST:
        return render(request, "bulk/page.html", context, partial="bulk/_select_list.html")
    title = _t(request, N_("Edit or delete multiple users"))
    return _show_step(request, "bulk/_select.html", context, title=title, status_code=status_code)


@router.get("/users/bulk")
def bulk_dialog(
    request: Request, db: ConsoleDb, cursor: str | None = None, ctx: PortalContext = Depends(portal_admin)
) -> Response:
    """The dialog: the organisation's users that no action holds, under the filters of the query string."""
    occupier = _dialog_occupier(request, lambda: _occupier(ctx))
    if isinstance(occupier, Response):
        return occupier
    f = views.read_filter(request.query_params, occupier)
    if hx_target(request) == MORE:
        context = views.select_context(db, ctx.actor, occupier, f, cursor=cursor, with_counts=False)
        return render(
            request, "bulk/page.html", {**context, "occupier": occupier}, partial="bulk/_select_rows.html"
        )
    return _select_step(request, db, ctx, occupier, f, cursor=cursor)


@router.post("/users/bulk")
def bulk_action(
    request: Request,
    db: ConsoleDb,
    ctx: PortalContext = Depends(portal_admin),
    data: FormData = Depends(form_data),
) -> Response:
    """An action on the selection: the edit's changes to choose next, or a previewed job to confirm."""
    occupier = _dialog_occupier(request, lambda: _occupier(ctx))
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
        message = _form_error_text(request, exc)
        return _select_step(request, db, ctx, occupier, selection.filter, error=message, status_code=422)
    return _show_job(request, db, ctx, job, dialog=_in_dialog(request))


def _edit_step(
    request: Request,
    db: Session,
    ctx: PortalContext,
    occupier: Occupier,
    selection: views.Selection,
    form: Form,
    *,
    status_code: int = 200,
) -> Response:
    operator = db.get(Operator, occupier.operator_id)
    count = count_filtered(db, ctx.actor, selection.filter) if selection.everyone else len(selection.user_ids)
    context = {
        "occupier": occupier,
        "selection": selection,
        "selected": count,
        "form": form,
        "sites": occupier.sites,
        "max_devices": operator.wifi_max_devices if operator is not None else None,
        "filter_query": views.filter_query(selection.filter),
    }
    return _show_step(
        request, "bulk/_edit.html", context, title=_t(request, N_("Edit users")), status_code=status_code
    )


@router.post("/users/bulk/edit")
def bulk_edit(
    request: Request,
    db: ConsoleDb,
    ctx: PortalContext = Depends(portal_admin),
    data: FormData = Depends(form_data),
) -> Response:
    """The changes chosen for the selection: a previewed ``edit`` job to confirm."""
    occupier = _dialog_occupier(request, lambda: _occupier(ctx))
    if isinstance(occupier, Response):
        return occupier
    selection = views.read_selection(data, occupier, prefix=views.CARRIED)
    values: dict[str, Any] = {name: forms.text(data, name) for name in EDIT_CHOICES}
    values.update({name: forms.checkbox(data, name) for name in EDIT_FLAGS})
    chosen = {name: value for name, value in values.items() if value not in ("", False)}
    try:
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
        form = add_errors(request, Form(values=values), _edit_errors(request, exc))
        return _edit_step(request, db, ctx, occupier, selection, form, status_code=422)
    return _show_job(request, db, ctx, job, dialog=_in_dialog(request))


_NO_CHANGE = N_("Choose at least one change to apply.")
_NEEDS_HOMESITE = N_("New Wi-Fi accounts need a homesite: choose one.")


def _edit_errors(request: Request, exc: FieldErrors) -> FieldErrors:
    """The edit options' errors for a person, in the page's language."""
    errors = []
    for error in exc.errors:
        field, message = error.get("field") or "_form", error["message"]
        if field == "_form" and "wifi_homesite_id" in message:
            field, message = "wifi_homesite_id", _t(request, _NEEDS_HOMESITE)
        elif field == "_form" and "at least one change" in message:
            message = _t(request, _NO_CHANGE)
        errors.append({**error, "field": field, "message": message.removeprefix("Value error, ")})
    return FieldErrors(errors)


# --- a job ----------------------------------------------------------------------------------------------


def _show_job(
    request: Request,
    db: Session,
    ctx: PortalContext,
    job: BulkJob,
    *,
    dialog: bool,
    focus: bool = True,
    status_code: int = 200,
) -> Response:
    if not dialog and request.method == "POST":
        return redirect(request, f"/portal/jobs/{job.id}")
    params = request.query_params
    context = views.job_context(db, job, items_view=params.get("show"), cursor=params.get("cursor"))
    quarter = job.processed * 4 // job.total if job.total else 0
    context.update(
        in_dialog=dialog,
        focus=focus,
        announce_key=f"{job.state}:{quarter}",
        seen=params.get("seen"),
        section="jobs",
        problem_text=item_problem(request),
        mine=_mine(ctx, job),
    )
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


@router.get("/jobs/{job_id:int}")
def job_page(
    request: Request, db: ConsoleDb, job_id: int, ctx: PortalContext = Depends(portal_admin)
) -> Response:
    """A job of the organisation: its preview to confirm, its progress (polled), or its outcome."""
    dialog = _in_dialog(request)
    try:
        job = engine.get_job(db, ctx.actor, job_id)
    except OccupantError as exc:
        if dialog:
            return _dialog_error(request, exc)
        raise
    return _show_job(request, db, ctx, job, dialog=dialog, focus=hx_target(request) != JOB_VIEW)


@router.get("/jobs/{job_id:int}/confirm")
def confirm_page(
    request: Request, db: ConsoleDb, job_id: int, ctx: PortalContext = Depends(portal_admin)
) -> Response:
    """The confirmation as a page (the pop-up's fallback without JavaScript)."""
    job = engine.get_job(db, ctx.actor, job_id)
    if job.state != JobState.PREVIEW:
        return redirect(request, f"/portal/jobs/{job.id}")
    context = {**views.job_context(db, job), "in_dialog": False, "section": "jobs"}
    return render(request, "bulk/confirm_page.html", context)


def _job_action(
    request: Request,
    db: Session,
    ctx: PortalContext,
    job_id: int,
    data: FormData,
    act: Callable[[BulkJob], BulkJob | None],
) -> Response:
    dialog = _in_dialog(request, data)
    try:
        job = engine.get_job(db, ctx.actor, job_id, for_update=True)
        shown = act(job)
    except OccupantError as exc:
        db.rollback()
        if dialog:
            return _dialog_error(request, exc)
        raise
    if shown is None:
        if dialog:
            return Response(status_code=200, headers={"HX-Trigger": "close-dialog"})
        return redirect(request, _back_url(job))
    return _show_job(request, db, ctx, shown, dialog=dialog)


def _back_url(job: BulkJob) -> str:
    selection = job.selection or {}
    if "file" in selection or "emails" in selection:
        return "/portal/users/import" if job.kind == "create" else "/portal/users/deactivate"
    return "/portal/users"


@router.post("/jobs/{job_id:int}/confirm")
def confirm_job(
    request: Request,
    db: ConsoleDb,
    job_id: int,
    ctx: PortalContext = Depends(portal_admin),
    data: FormData = Depends(form_data),
) -> Response:
    return _job_action(request, db, ctx, job_id, data, lambda job: engine.confirm(db, job, actor=ctx.actor))


@router.post("/jobs/{job_id:int}/cancel")
def cancel_job(
    request: Request,
    db: ConsoleDb,
    job_id: int,
    ctx: PortalContext = Depends(portal_admin),
    data: FormData = Depends(form_data),
) -> Response:
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
    ctx: PortalContext = Depends(portal_admin),
    data: FormData = Depends(form_data),
) -> Response:
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
def download_results(db: ConsoleDb, job_id: int, ctx: PortalContext = Depends(portal_admin)) -> Response:
    job = engine.get_job(db, ctx.actor, job_id)
    return results_response(job, _results(job.id, ctx.actor))


_YOU = N_("You")
_ANOTHER_ADMIN = N_("Another admin")
_YOUR_OPERATOR = N_("Your operator")
_DIRECTORY_SYNC = N_("Directory sync")


def _mine(ctx: PortalContext, job: BulkJob) -> bool:
    return job.requested_by_kind == ctx.actor.kind.value and job.requested_by_id == ctx.actor.audit_id


def _requested_by(request: Request, ctx: PortalContext, job: BulkJob) -> str:
    """Who started the job, as an occupier admin may know it: you, another admin by name, or the operator
    (its staff, API keys and system jobs are not named in the portal)."""
    if _mine(ctx, job):
        return _t(request, _YOU)
    if job.requested_by_kind == ActorKind.OCCUPIER_USER:
        return job.requested_by_name or _t(request, _ANOTHER_ADMIN)
    if job.requested_by_kind == ActorKind.SCIM:
        return _t(request, _DIRECTORY_SYNC)
    return _t(request, _YOUR_OPERATOR)


@router.get("/jobs")
def jobs_page(
    request: Request, db: ConsoleDb, cursor: str | None = None, ctx: PortalContext = Depends(portal_admin)
) -> Response:
    """The organisation's recent jobs, newest first, a page at a time: each with its state and counts, a link
    to its page and (finished) its results."""
    # The actor's scope is the admin's occupier already; the filter says so again.
    page = queries.list_jobs(db, ctx.actor, occupier_id=ctx.user.occupier_id, cursor=cursor, limit=JOBS_PAGE)
    context = {
        "jobs": page.items,
        "next_cursor": page.next_cursor,
        "requested_by": {job.id: _requested_by(request, ctx, job) for job in page.items},
        "retention_days": get_settings().job_retention_days,
        "section": "jobs",
    }
    return render(request, "bulk/jobs.html", context, partial={JOBS_MORE: "bulk/_job_rows.html"})


@router.get("/jobs/templates/{kind}.csv")
def csv_template(kind: str, ctx: PortalContext = Depends(portal_admin)) -> Response:
    return Response(
        engine.template(kind),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind}-users-template.csv"'},
    )


# --- uploads --------------------------------------------------------------------------------------------


def _columns(kind: str) -> list[Any]:
    handler = KINDS.get(kind)
    spec = handler.csv_spec if handler is not None else None
    return list(spec.columns) if spec is not None else []


def _upload_page(
    request: Request,
    template: str,
    kind: str,
    form: Form,
    *,
    occupier: Occupier,
    file_error: CsvError | None = None,
    status_code: int = 200,
) -> Response:
    details: list[str] = []
    headline = None
    if file_error is not None:
        known = _CSV_ERRORS.get(file_error.code)
        headline = _t(request, known) if known else file_error.message
        if isinstance(file_error.details, list):  # each problem of the header (the reader's English)
            details = [str(d.get("message", "")) for d in file_error.details if isinstance(d, dict)]
        elif known:
            details = [file_error.message]  # the reader's detail (a line, a size), in English
    context = {
        "occupier": occupier,
        "form": form,
        "columns": _columns(kind),
        "accepts_file": bool(_columns(kind)),
        "file_error": file_error,
        "file_error_text": headline,
        "file_error_details": [d for d in details if d],
        "max_rows": get_settings().csv_max_rows,
        "section": "users",
    }
    return render(request, template, context, status_code=status_code)


@router.get("/users/import")
def import_page(request: Request, ctx: PortalContext = Depends(portal_admin)) -> Response:
    """Add multiple users: the template, the upload, and what to do with emails that exist already."""
    occupier = _occupier(ctx)
    return _upload_page(
        request, "bulk/import.html", "create", Form(values={"on_existing": "fail"}), occupier=occupier
    )


@router.post("/users/import")
def import_users(
    request: Request,
    db: ConsoleDb,
    ctx: PortalContext = Depends(portal_admin),
    data: FormData = Depends(form_data),
) -> Response:
    """The uploaded file, every row checked (nothing added yet): the job's preview to confirm."""
    occupier = _occupier(ctx)
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
        return _upload_page(
            request, "bulk/import.html", "create", form, occupier=occupier, file_error=exc, status_code=422
        )
    except FieldErrors as exc:
        db.rollback()
        _add_form_errors(request, form, exc)
        return _upload_page(request, "bulk/import.html", "create", form, occupier=occupier, status_code=422)
    return redirect(request, f"/portal/jobs/{job.id}")


def _add_form_errors(request: Request, form: Form, exc: FieldErrors) -> None:
    for error in exc.errors:
        known = _FORM_ERRORS.get(error.get("code", ""))
        text = _t(request, known) if known else error_text(request, error.get("code"), error["message"])
        form.errors.setdefault(error.get("field") or "_form", []).append(text)


@router.get("/users/deactivate")
def deactivate_page(request: Request, ctx: PortalContext = Depends(portal_admin)) -> Response:
    """Deactivate users: a CSV file (with its template) or a pasted list of emails."""
    occupier = _occupier(ctx)
    return _upload_page(request, "bulk/deactivate.html", "deactivate", Form(values={}), occupier=occupier)


@router.post("/users/deactivate")
def deactivate_users(
    request: Request,
    db: ConsoleDb,
    ctx: PortalContext = Depends(portal_admin),
    data: FormData = Depends(form_data),
) -> Response:
    """The file's rows or the pasted emails, each checked (nobody deactivated yet): the preview to confirm."""
    occupier = _occupier(ctx)
    emails = forms.text(data, "emails")
    remove = forms.checkbox(data, "remove_from_groups")
    form = Form(values={"emails": emails, "remove_from_groups": remove})
    has_file = bool(getattr(data.get("file"), "filename", None))
    try:
        if has_file and emails:
            raise FieldErrors.single("emails", "file_and_emails", "Upload a file or paste emails, not both.")
        if not has_file and not emails:
            raise FieldErrors.single("emails", "no_emails", "Upload a CSV file or paste email addresses.")
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
        return _upload_page(
            request,
            "bulk/deactivate.html",
            "deactivate",
            form,
            occupier=occupier,
            file_error=exc,
            status_code=422,
        )
    except FieldErrors as exc:
        db.rollback()
        _add_form_errors(request, form, exc)
        return _upload_page(
            request, "bulk/deactivate.html", "deactivate", form, occupier=occupier, status_code=422
        )
    return redirect(request, f"/portal/jobs/{job.id}")
