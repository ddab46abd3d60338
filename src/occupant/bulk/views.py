"""What the bulk pages show, for the console (``bulk/pages.py``) and the portal (``portal/bulk.py``) alike:
the "Edit or delete multiple users" dialog's filters, rows and selection, a job's view (preview,
progress, outcome) and the reading of an uploaded file. No HTTP here, no wording: each area says things in
its own templates (the portal translates them).

Seed 000: the dialog lists the occupier's users that no action holds (busy users are not offered), under
five filters whose values are those the users have; "Select all users" means every user matching the
filters now, and is submitted as the filter (``sources.items_from_filter``), never as thousands of ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from occupant.accounts import queries as account_queries
from occupant.accounts.models import AppAccount
from occupant.authz.actor import Actor
from occupant.bulk import engine, queries, sources
from occupant.bulk.kinds.base import Item
from occupant.bulk.models import BulkItem, BulkJob, ItemStatus, JobState
from occupant.kit.errors import FieldErrors, NotFound
from occupant.kit.settings import get_settings
from occupant.occupiers.models import Occupier
from occupant.users.filters import FilterOptions, UserFilter, count_filtered, filter_options, list_filtered
from occupant.users.models import OccupierUser
from occupant.web import forms
from occupant.wifi import queries as wifi_queries
from occupant.wifi.models import WifiAccount

# The dialog's filters, one above each column (seed 000), as UserFilter fields.
FILTERS = ("wifi", "wifi_homesite_id", "wifi_device_limit", "portal", "mobile_app")
# The kinds the dialog starts, besides delete and edit ("more actions"); the app-account ones only where the
# occupier offers an app.
LIFECYCLE_ACTIONS = ("deactivate", "reactivate")
ACCOUNT_ACTIONS = ("send_welcome", "force_password_reset", "resend_invitation")
PAGE_SIZE = 100  # users per page of the dialog (more load on demand)
ITEMS_PAGE = 50  # items per page of a job's tables
UPLOAD_SUFFIXES = (".csv", ".txt", ".tsv")
CARRIED = "sel_"  # the prefix of a selection carried to the next step as hidden fields


def dialog_actions(occupier: Occupier) -> tuple[str, ...]:
    """The selection kinds the dialog offers as "more actions" for this occupier."""
    return LIFECYCLE_ACTIONS + (ACCOUNT_ACTIONS if occupier.apps_offered else ())


# --- the selection --------------------------------------------------------------------------------------


def read_filter(values: Mapping[str, Any], occupier: Occupier) -> UserFilter:
    """The dialog's filters from a query string or a form ("All" is blank), for this occupier's free users.
    Raises FieldErrors for a value that is not one of the filter's."""
    criteria = {name: values.get(name) or None for name in FILTERS}
    return forms.parse(UserFilter, {**criteria, "occupier_id": occupier.id, "busy": False})


def filter_query(f: UserFilter) -> dict[str, str]:
    """The filters that are set, as query parameters (links keep them)."""
    return {name: str(value) for name in FILTERS if (value := getattr(f, name)) is not None}


@dataclass(frozen=True)
class Selection:
    """What the admin chose in the dialog: every user matching ``filter`` (``everyone``), or these ids."""

    filter: UserFilter
    everyone: bool
    user_ids: tuple[int, ...]

    @property
    def empty(self) -> bool:
        return not self.everyone and not self.user_ids

    def hidden_fields(self, prefix: str = CARRIED) -> list[tuple[str, str]]:
        """The selection as hidden form fields, for the steps after the list (the edit form, whose own fields
        share names with the filters: hence the ``prefix``)."""
        fields = [(prefix + name, value) for name, value in filter_query(self.filter).items()]
        if self.everyone:
            fields.append((prefix + "all", "1"))
        fields.extend((prefix + "user_ids", str(uid)) for uid in self.user_ids)
        return fields


def read_selection(data: FormData, occupier: Occupier, *, prefix: str = "") -> Selection:
    """The dialog's form: the filters, "Select all users" (``all``) and the ticked rows (``user_ids``);
    with ``prefix``, the same carried by a later step as hidden fields."""
    criteria = {name: data.get(prefix + name) for name in FILTERS}
    return Selection(
        filter=read_filter(criteria, occupier),
        everyone=forms.checkbox(data, prefix + "all") or forms.text(data, prefix + "all") == "1",
        user_ids=tuple(dict.fromkeys(forms.ids(data, prefix + "user_ids"))),
    )


class NothingSelected(FieldErrors):
    def __init__(self, message: str = "Select at least one user first.") -> None:
        super().__init__([{"field": "user_ids", "code": "nothing_selected", "message": message}])


def selection_items(session: Session, actor: Actor, occupier: Occupier, selection: Selection) -> list[Item]:
    """The job's items: every matching user now, or the ticked users that are this occupier's (an id from
    elsewhere was never offered by this dialog, and is left out). Raises NothingSelected."""
    if selection.everyone:
        items = sources.items_from_filter(session, actor, selection.filter)
        if not items:
            raise NothingSelected("No user matches these filters.")
        return items
    if not selection.user_ids:
        raise NothingSelected()
    mine = set(
        session.scalars(
            select(OccupierUser.id).where(
                OccupierUser.id.in_(selection.user_ids), OccupierUser.occupier_id == occupier.id
            )
        )
    )
    items = sources.items_from_ids([uid for uid in selection.user_ids if uid in mine])
    if not items:
        raise NothingSelected()
    return items


def submit_selection(
    session: Session,
    actor: Actor,
    occupier: Occupier,
    *,
    kind: str,
    selection: Selection,
    params: dict[str, Any] | None = None,
    requested_by_name: str | None = None,
) -> BulkJob:
    """A previewed job of ``kind`` over the selection. Raises NothingSelected, and what ``engine.submit``
    raises (FieldErrors for bad params, OccupierDecommissioned, PermissionDenied)."""
    if kind == "delete" or kind == "edit" or kind in dialog_actions(occupier):
        engine.kind_of(kind)
    else:
        raise FieldErrors.single("action", "unknown_action", "Choose one of the actions offered.")
    items = selection_items(session, actor, occupier, selection)
    how: dict[str, Any] = (
        {"filter": selection.filter.non_personal, "all": True} if selection.everyone else {"ids": len(items)}
    )
    return engine.submit(
        session,
        kind=kind,
        items=items,
        actor=actor,
        occupier=occupier,
        params=params,
        selection=how,
        requested_by_name=requested_by_name,
    )


def submit_emails(
    session: Session,
    actor: Actor,
    occupier: Occupier,
    *,
    text: str,
    remove_from_groups: bool,
    requested_by_name: str | None = None,
) -> BulkJob:
    """A previewed deactivation of the pasted emails (one a line, or comma-separated): each the user of this
    occupier with that email, or a row that fails ``not_found``."""
    emails = [line.strip() for chunk in text.splitlines() for line in chunk.split(",")]
    if not any(emails):
        raise FieldErrors.single("emails", "no_emails", "Paste at least one email address.")
    items = sources.items_from_emails(session, actor, emails)
    found = [i.user_id for i in items if i.user_id is not None]
    theirs = set(
        session.scalars(
            select(OccupierUser.id).where(OccupierUser.id.in_(found), OccupierUser.occupier_id == occupier.id)
        )
    )
    for item in items:
        if item.user_id is not None and item.user_id not in theirs and not item.settled:
            item.user_id = None
            item.fail(NotFound(f"No user of {occupier.name} has the email {item.identifier}."))
    return engine.submit(
        session,
        kind="deactivate",
        items=items,
        actor=actor,
        occupier=occupier,
        params={"remove_from_groups": remove_from_groups},
        selection={"emails": len(items)},
        requested_by_name=requested_by_name,
    )


# --- the dialog's list ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    """One row of the dialog: the user and what its columns show."""

    user: OccupierUser
    wifi: WifiAccount | None
    homesite: str | None
    account: AppAccount | None


def user_rows(session: Session, users: Sequence[OccupierUser], options: FilterOptions) -> list[UserRow]:
    """The rows of a page of users (two queries: their Wi-Fi and app accounts)."""
    ids = [u.id for u in users]
    wifi = wifi_queries.accounts_by_user(session, ids)
    accounts = account_queries.accounts_by_user(session, ids)
    sites = {o.value: o.label for o in options.wifi_homesite}
    rows = []
    for user in users:
        account = wifi.get(user.id)
        homesite = sites.get(str(account.homesite_id)) if account is not None else None
        rows.append(UserRow(user=user, wifi=account, homesite=homesite, account=accounts.get(user.id)))
    return rows


def select_context(
    session: Session,
    actor: Actor,
    occupier: Occupier,
    f: UserFilter,
    *,
    cursor: str | None = None,
    with_counts: bool = True,
) -> dict[str, Any]:
    """What the dialog's list shows: the filters' values, a page of rows, and (first page) how many users
    match and how many are busy and so not listed."""
    options = filter_options(session, actor, occupier)
    page = list_filtered(session, actor, f, cursor=cursor, limit=PAGE_SIZE)
    context: dict[str, Any] = {
        "options": options,
        "criteria": f,
        "filter_query": filter_query(f),
        "rows": user_rows(session, page.items, options),
        "next_cursor": page.next_cursor,
        "actions": dialog_actions(occupier),
    }
    if with_counts:
        context["matching"] = count_filtered(session, actor, f)
        context["busy"] = count_filtered(session, actor, UserFilter(occupier_id=occupier.id, busy=True))
    return context


# --- a job ----------------------------------------------------------------------------------------------

NOT_DONE = (ItemStatus.FAILED, ItemStatus.EXCLUDED)
# What a job's table lists: the rows with problems, the rows that are fine (ready / done), or every row.
ITEM_VIEWS: dict[str, tuple[ItemStatus, ...] | None] = {
    "problems": NOT_DONE,
    "ready": (ItemStatus.PENDING,),
    "done": (ItemStatus.SUCCEEDED,),
    "all": None,
}


def outcome_of(job: BulkJob) -> str:
    """What the job view shows: ``preview``, ``progress`` (queued or running), or the outcome (``done``,
    ``partially_done``, ``error``, ``cancelled``)."""
    if job.state == JobState.PREVIEW:
        return "preview"
    if job.state in (JobState.QUEUED, JobState.RUNNING):
        return "progress"
    return {
        JobState.DONE: "done",
        JobState.PARTIALLY_DONE: "partially_done",
        JobState.FAILED: "error",
        JobState.CANCELLED: "cancelled",
    }[JobState(job.state)]


def default_items_view(job: BulkJob, counts: queries.ItemCounts) -> str:
    """Problems first when there are some; else a preview lists what is ready, a finished job every row."""
    if counts.not_done:
        return "problems"
    return "ready" if job.state == JobState.PREVIEW else "all"


def job_context(
    session: Session, job: BulkJob, *, items_view: str | None = None, cursor: str | None = None
) -> dict[str, Any]:
    """A job's view: its outcome, counts, and one page of the items ``items_view`` asks for."""
    counts = queries.item_counts(session, job)
    view = items_view if items_view in ITEM_VIEWS else default_items_view(job, counts)
    page = queries.item_page(session, job, statuses=ITEM_VIEWS[view], cursor=cursor, limit=ITEMS_PAGE)
    handler = engine.kind_of(job.kind)
    occupier = session.get(Occupier, job.occupier_id) if job.occupier_id is not None else None
    return {
        "job": job,
        "kind": handler,
        "outcome": outcome_of(job),
        "counts": counts,
        "ready": job.pending if job.state == JobState.PREVIEW else 0,
        # Rows the admin wrote (a file, pasted emails): shown with their line numbers, every one checked.
        "from_file": "file" in (job.selection or {}) or "emails" in (job.selection or {}),
        "items": page.items,
        "items_view": view,
        "items_cursor": page.next_cursor,
        "retryable": job.is_finished and counts.not_done > 0,
        "job_occupier": occupier,
        "open_occupier": occupier is not None and not occupier.is_decommissioning,
        "homesites": _homesite_names(session, job),
        "item_problems": item_problems,
    }


def _homesite_names(session: Session, job: BulkJob) -> dict[int, str]:
    """The edit's homesite, by name (the confirmation says where)."""
    site_id = (job.params or {}).get("wifi_homesite_id")
    if job.kind != "edit" or not site_id:
        return {}
    from occupant.sites.models import Site

    site = session.get(Site, site_id)
    return {site.id: f"{site.code} · {site.name}"} if site is not None else {}


def item_problems(item: BulkItem) -> list[dict[str, str]]:
    """Every problem of an item: its field errors (a file's row may have several), else its one message."""
    if item.errors:
        return list(item.errors)
    if item.code or item.message:
        return [{"field": "", "code": item.code or "", "message": item.message or ""}]
    return []


# --- uploads ---------------------------------------------------------------------------------------------


def read_upload(data: FormData, name: str = "file") -> tuple[bytes, str]:
    """The uploaded file's bytes and name. Raises FieldErrors ``no_file`` (nothing chosen) or
    ``wrong_file_type`` (not a CSV: a spreadsheet, an image...). Reads at most one byte over the size limit,
    so that ``kit.csvin`` reports a file too large without holding all of it."""
    upload = data.get(name)
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise FieldErrors.single(name, "no_file", "Choose a CSV file to upload.")
    filename = upload.filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    content = upload.file.read(get_settings().csv_max_bytes + 1)
    spreadsheet = content[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")  # .xlsx (zip), .xls (OLE)
    if spreadsheet or not filename.lower().endswith(UPLOAD_SUFFIXES):
        raise FieldErrors.single(
            name,
            "wrong_file_type",
            f"{filename} is not a CSV file. In your spreadsheet choose Save as → CSV (comma-separated), "
            "then upload that file.",
        )
    return content, filename
