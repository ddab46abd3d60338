"""Create users from a CSV file (or the API's JSON list): ``users.bulk`` checks and writes whole chunks.

A row becomes an item whose payload is the row as read (``users.bulk.NewUserRow``); the preview runs
``check_new_users`` on each chunk, the run ``create_users`` — the add-user wizard's rules and effects
(Wi-Fi account, app account, invitations, groups), set-based. ``on_existing`` says what a row whose email
is already a user of the occupier does: ``fail`` (default), ``skip`` or ``update``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.bulk.kinds.base import Item, Kind, Run
from occupant.kit.csvin import Column, CsvRow, CsvSpec
from occupant.kit.errors import FieldErrors
from occupant.occupiers.models import Occupier
from occupant.users import bulk as users_bulk
from occupant.users.bulk import NewUserRow, RowCheck, RowResult

COLUMNS = CsvSpec(
    (
        Column("first_name", required=True, description="First name", example="Ada"),
        Column("last_name", required=True, description="Last name", example="Lovelace"),
        Column(
            "email", required=True, description="Email, unique within the operator", example="ada@example.com"
        ),
        Column("job_title", description="Job title", example="Engineer"),
        Column("mobile", description="Mobile, international format", example="+447700900123"),
        Column("direct_line", description="Direct line, international format", example="+442079460000"),
        Column("language", description="en, fr, de, es or nl; blank: the occupier's", example="en"),
        Column("employee_number", description="Employee number", example="E1001"),
        Column("username", description="Username, unique within the operator", example="ada.lovelace"),
        Column(
            "external_id", description="Id in your directory, unique within the operator", example="HR-1001"
        ),
        Column("wifi", description="y/n; blank: y when wifi_homesite is filled", example="y"),
        Column("wifi_homesite", description="Site code; blank: the occupier's primary site", example="LON01"),
        Column(
            "wifi_device_limit", description="Devices at once; blank: the occupier's default", example="2"
        ),
        Column("role", description="user or admin (app account)", example="user"),
        Column("invite_portal", description="y/n: invite to the portal", example="n"),
        Column("invite_mobile_app", description="y/n: invite to the mobile app", example="y"),
        Column("groups", description="Group names, separated by ;", example="Staff;Floor 3"),
    ),
    key="email",
)
# Repeats of these among a file's rows are reported per row too (the reader reports the email's).
_UNIQUE_COLUMNS = ("username", "external_id")


class CreateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_existing: Literal["fail", "skip", "update"] = "fail"


class CreateKind(Kind):
    name = "create"
    title = "Add users"
    outcome = "created"
    holds_users = False  # the users do not exist yet; an update's user is checked for busy when applied
    chunk_size = 5_000
    params_model: ClassVar[type[BaseModel] | None] = CreateParams
    csv_spec: ClassVar[CsvSpec | None] = COLUMNS

    def items_from_rows(
        self, session: Session, actor: Actor, occupier: Occupier | None, rows: Sequence[CsvRow]
    ) -> list[Item]:
        items = []
        first: dict[tuple[str, str], int] = {}
        for csv_row in rows:
            row = users_bulk.row_from_csv(csv_row.values, line=csv_row.line)
            item = Item(position=csv_row.line, identifier=row.email, payload=row.payload())
            repeats = _repeats(row, first)
            if repeats and not csv_row.errors:
                item.fail(FieldErrors(repeats))
            items.append(item)
        return items

    def _rows(self, items: Sequence[Item]) -> list[NewUserRow]:
        return [NewUserRow.from_payload(item.position, item.payload or {}) for item in items]

    def check(self, run: Run, items: Sequence[Item]) -> None:
        assert run.occupier is not None
        checks = users_bulk.check_new_users(
            run.session, run.occupier, self._rows(items), on_existing=_policy(run), actor=run.actor
        )
        for item, result in zip(items, checks, strict=True):
            _mark(item, result)

    def apply(self, run: Run, items: Sequence[Item]) -> None:
        assert run.occupier is not None
        results = users_bulk.create_users(
            run.session, run.occupier, self._rows(items), on_existing=_policy(run), actor=run.actor
        )
        for item, result in zip(items, results, strict=True):
            _mark(item, result)


def _policy(run: Run) -> Any:
    return run.params.on_existing if run.params is not None else "fail"


def _repeats(row: NewUserRow, first: dict[tuple[str, str], int]) -> list[dict[str, str]]:
    """The row's username or external id when an earlier row of the file has it (case-insensitive)."""
    errors = []
    for name in _UNIQUE_COLUMNS:
        value = getattr(row, name)
        if not value:
            continue
        seen = first.setdefault((name, value.lower()), row.line)
        if seen != row.line:
            label = name.replace("_", " ")
            errors.append(
                {"field": name, "code": "duplicate_in_file", "message": f"Same {label} as line {seen}."}
            )
    return errors


def _mark(item: Item, result: RowCheck | RowResult) -> None:
    if result.errors:
        item.fail(FieldErrors(list(result.errors)))
        return
    if isinstance(result, RowCheck):  # the preview: what the run will do, the item still pending
        item.outcome = {"create": "created", "update": "updated", "skip": "skipped"}[str(result.action)]
        if result.user_id is not None:
            item.user_id = result.user_id
        return
    assert result.outcome is not None
    item.succeed(str(result.outcome), user_id=result.user_id)
