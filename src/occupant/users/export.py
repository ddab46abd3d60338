"""Download users: every user matching a filter, as CSV, streamed with flat memory (no job).

:func:`start_export` is the action — permission, scope, the count, the audit event — and runs in the
caller's transaction, which commits before the first byte leaves: the log says who downloaded what even
when the download is cut short. The rows are then read by :func:`stream_export` in a read session of their
own, one snapshot for the whole file (a deferred transaction on SQLite, REPEATABLE READ on PostgreSQL), in
keyset batches of ``BATCH`` users in name order: per batch one query for the users with their Wi-Fi and
app-account columns (outer joins on the unique ``user_id`` of each) and one for their groups. Memory holds
one batch, whatever the number of users.

What the admin sees, opening the file in a spreadsheet: UTF-8 with a BOM (Excel reads the accents right),
one row per user, the columns of :data:`HEADER`. Every cell that starts with ``=``, ``+``, ``-``, ``@``, a
tab or a CR gets a leading apostrophe (``kit.csvout.neutralise``, as DESIGN asks for every written CSV)
so that no spreadsheet runs it as a formula. That includes every phone number: they are stored in E.164,
so ``+447700900123`` is written ``'+447700900123``. A bare ``+447700900123`` would not run as a formula
in Excel, but Excel would turn it into the number 447700900123 (shown ``4.47701E+11``, the ``+`` lost);
with the apostrophe it stays the text ``+447700900123`` where the spreadsheet honours the text prefix,
and programs that read the file as plain text show the apostrophe. Strip it before feeding a number back
in: the phone parser refuses ``'+44…``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.responses import StreamingResponse
from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Engine,
    Select,
    String,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.orm import Session

from occupant.accounts.models import AccountStatus, AppAccount, InviteState
from occupant.audit.service import record
from occupant.authz import scope
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, require
from occupant.groups.models import AccessGroup, group_members
from occupant.kit.clock import utcnow
from occupant.kit.csvout import stream_csv
from occupant.kit.runtime import get_read_session_factory
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.sites.models import Site
from occupant.users.filters import UserFilter, count_filtered, filtered_users
from occupant.users.models import OccupierUser
from occupant.wifi.models import WifiAccount

HEADER = [
    "first_name",
    "last_name",
    "email",
    "job_title",
    "mobile",
    "direct_line",
    "language",
    "employee_number",
    "username",
    "external_id",
    "status",
    "wifi_status",
    "wifi_homesite",
    "wifi_device_limit",
    "account_status",
    "role",
    "portal",
    "mobile_app",
    "groups",
    "created_at",
    "occupier",
    "user_id",
]
# Users per query: large enough that 100,000 users take 50 round trips, small enough to keep memory flat.
BATCH = 2_000

_U = OccupierUser
_NOT_INVITED = InviteState.NOT_INVITED.value
# The columns of HEADER up to "mobile_app", as the database gives them (a user without an app account is
# NOT_INVITED everywhere, as on every page); export_rows selects created_at, occupier, user_id and the sort
# key (the next batch's keyset) after them, and puts the groups in.
_COLUMNS = (
    _U.first_name,
    _U.last_name,
    _U.email,
    _U.job_title,
    _U.mobile,
    _U.direct_line,
    _U.language,
    _U.employee_number,
    _U.username,
    _U.external_id,
    _U.status,
    WifiAccount.status,
    Site.code,
    WifiAccount.device_limit,
    func.coalesce(AppAccount.status, AccountStatus.NOT_INVITED.value),
    AppAccount.role,
    func.coalesce(AppAccount.portal, _NOT_INVITED),
    func.coalesce(AppAccount.mobile_app, _NOT_INVITED),
)


@dataclass(frozen=True)
class UserExport:
    """A download that was allowed and logged: whose view, which users, how many matched, the file name."""

    actor: Actor
    filter: UserFilter
    total: int
    filename: str


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:40].strip("-")


def start_export(session: Session, f: UserFilter, *, actor: Actor) -> UserExport:
    """Allow and log a download of every user matching ``f`` that the actor may see.

    Operator staff (within their scope: a site manager, the occupiers at their sites) and occupier admins
    (their own occupier, whatever ``f.occupier_id`` says otherwise) may; anyone else gets PermissionDenied.
    An occupier outside the actor's scope is NotFound. Nothing changes but one audit event,
    ``users.exported``: the actor, the occupier, the criteria used (the search fragment by name only: it may
    be a person's name) and how many users matched. The file itself comes from :func:`stream_export`.
    """
    require(actor, Perm.EXPORT_USERS)
    if actor.occupier_id is not None and f.occupier_id is None:
        f = f.model_copy(update={"occupier_id": actor.occupier_id})
    occupier = scope.get_occupier(session, actor, f.occupier_id) if f.occupier_id is not None else None
    total = count_filtered(session, actor, f)
    if occupier is not None:
        label = _slug(occupier.name) or f"occupier-{occupier.id}"
    else:
        operator = session.get(Operator, actor.operator_id)
        label = (_slug(operator.name) if operator is not None else "") or "operator"
    record(
        session,
        actor=actor,
        action="users.exported",
        target_type="occupier" if occupier is not None else "operator",
        target_id=occupier.id if occupier is not None else actor.operator_id,
        occupier_id=occupier.id if occupier is not None else None,
        fields=f.criteria.keys(),
        changes={"filter": f.non_personal, "rows": total},
    )
    session.flush()
    return UserExport(actor=actor, filter=f, total=total, filename=f"users-{label}-{utcnow():%Y-%m-%d}.csv")


def _timestamp_text(session: Session, column: Any) -> Any:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) from the database itself: no datetime made and formatted per row."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM-DD HH24:MI:SS", type_=String)
    return func.substr(column, 1, 19, type_=String)  # SQLite stores "YYYY-MM-DD HH:MM:SS.ffffff"


def export_rows(
    session: Session, actor: Actor, f: UserFilter, *, batch: int = BATCH
) -> Iterator[tuple[Any, ...]]:
    """Every matching user as a row of :data:`HEADER` (``None`` for an empty cell), in name order, ``batch``
    users per query.

    Two queries per batch, run as Core statements (no ORM objects, rows read by position): the users with
    their Wi-Fi and app-account states, outer-joined on the unique ``user_id`` of each; then the batch's
    group memberships, the batch's ids sent as one parameter.
    """
    users_stmt = (
        filtered_users(session, actor, f, join_accounts=True)
        .outerjoin(Site, Site.id == WifiAccount.homesite_id)
        .join(Occupier, Occupier.id == OccupierUser.occupier_id)
        .with_only_columns(
            *_COLUMNS,
            _timestamp_text(session, OccupierUser.created_at),
            Occupier.name,
            OccupierUser.id,
            OccupierUser.sort_key,
        )
        .order_by(OccupierUser.sort_key, OccupierUser.id)
        .limit(batch)
    )
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # The planner prices these batches high and sends parallel workers (a Gather Merge) for 2,000 rows
        # it then stops reading: measured 2.5 times slower than one backend walking the index.
        connection.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    key = tuple_(OccupierUser.sort_key, OccupierUser.id)
    after: tuple[str, int] | None = None
    while True:
        stmt = users_stmt if after is None else users_stmt.where(key > tuple_(*after))
        users: Sequence[Any] = connection.execute(stmt).all()
        if not users:
            return
        groups = _groups_of(session, [u[-2] for u in users])
        for u in users:
            *cells, created_at, occupier, user_id, _sort_key = u
            yield (*cells, groups.get(user_id), created_at, occupier, user_id)
        if len(users) < batch:
            return
        after = (users[-1][-1], users[-1][-2])


def _one_parameter(session: Session, column: Any, ids: list[int]) -> ColumnElement[bool]:
    """``column IN ids`` with the ids bound as one parameter — an array on PostgreSQL, JSON on SQLite —
    rather than thousands of them (rendering those cost more than the query)."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("ids", ids, type_=ARRAY(BigInteger)))
    each: Select[Any] = select(literal_column("value")).select_from(
        func.json_each(bindparam("ids", json.dumps(ids)))
    )
    return column.in_(each)


def _groups_of(session: Session, user_ids: list[int]) -> dict[int, str]:
    """Each user's access groups, their names sorted and ``;``-separated (one query for the batch)."""
    stmt = (
        select(group_members.c.user_id, AccessGroup.name)
        .join(AccessGroup, AccessGroup.id == group_members.c.group_id)
        .where(_one_parameter(session, group_members.c.user_id, user_ids))
    )
    found: dict[int, list[str]] = {}
    for user_id, name in session.connection().execute(stmt).all():
        found.setdefault(user_id, []).append(name)
    return {user_id: ";".join(sorted(names)) for user_id, names in found.items()}


def export_csv(session: Session, export: UserExport, *, bom: bool = True) -> Iterator[str]:
    """The export's CSV text, in chunks of a few hundred rows, read through ``session``."""
    return stream_csv(HEADER, export_rows(session, export.actor, export.filter), bom=bom)


def _one_snapshot(session: Session) -> None:
    """Read every batch from one snapshot: a user renamed meanwhile is neither missed nor written twice.

    SQLite's deferred read transaction already is one; PostgreSQL's default (READ COMMITTED) is not. A
    session bound to a connection already in a transaction (the tests') keeps that transaction.
    """
    bind = session.get_bind()
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        session.connection(
            execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        )


def _counted(
    rows: Iterator[tuple[Any, ...]], on_rows: Callable[[int], None], every: int
) -> Iterator[tuple[Any, ...]]:
    n = 0
    for n, row in enumerate(rows, 1):
        yield row
        if n % every == 0:
            on_rows(n)
    on_rows(n)


def stream_export(
    export: UserExport, *, bom: bool = True, on_rows: Callable[[int], None] | None = None
) -> Iterator[str]:
    """The export's CSV text, read in a read-only session of its own (for a streamed response or a file).

    ``on_rows`` hears how many rows have been written, every ``BATCH`` rows and at the end (progress bars).
    """
    with get_read_session_factory()() as session:
        _one_snapshot(session)
        rows = export_rows(session, export.actor, export.filter)
        if on_rows is not None:
            rows = _counted(rows, on_rows, BATCH)
        yield from stream_csv(HEADER, rows, bom=bom)


def download(export: UserExport) -> StreamingResponse:
    """The streamed HTTP answer the API, the console and the portal give: a CSV attachment, not cached."""
    return StreamingResponse(
        stream_export(export),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "Cache-Control": "no-store",
        },
    )
