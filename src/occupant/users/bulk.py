"""Creating many occupier users at once — a bulk create job's rows (a CSV file or an API list), set-based.

:func:`check_new_users` is the preview: every row checked against the rules of the single actions
(``users.service.create_user``, ``wifi.service.create_wifi_account``, ``accounts.service.set_up_account``,
through the same shared "terms" functions), with every error of a row at once, and the planned action per
row (create, update, skip); nothing is written. :func:`create_users` checks again (time has passed since
the preview) and writes: the users, their group memberships and ``user.created`` events, then their Wi-Fi
accounts (``wifi.bulk.write_new_accounts``) and app accounts with invitations
(``accounts.service.create_accounts``) — one bulk write per table for the whole call (COPY on PostgreSQL),
ids reserved ahead, no ORM objects; a fixed number of statements whatever the number of rows. A row that
breaks a rule is left untouched and the others proceed.

Choices a bulk job's admin sees:

- ``on_existing``: an email that is already a user of this occupier fails the row (``fail``:
  ``email_taken``), leaves the user as they are (``skip``, the rest of the row unchecked), or updates them
  (``update``): the basic details the row fills in (not the email, a blank keeps the value) through
  ``users.service.update_user``, the groups it names added, and a Wi-Fi account and an app account (role,
  invitations) only where the user has none yet — each part through its single action, one row at a time.
  An email that belongs to *another* occupier of the operator fails the row whatever the policy
  (``email_taken``): skipping or updating it would touch, or hide, another tenant's user.
- ``wifi`` blank means "yes when ``wifi_homesite`` is filled"; ``wifi`` yes with a blank homesite takes
  the occupier's primary site, as the add-user forms propose.
- An app account is set up when the row invites to an app or asks for the ``admin`` role (as the add-user
  forms do): a ``user`` row without invitations gets none.
- Duplicates are found among the rows of one call: the engine previews a file's rows in one call.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import psycopg
from pydantic import BaseModel, StringConstraints, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from occupant.accounts import service as accounts
from occupant.accounts.models import AccountRole, App, AppAccount
from occupant.audit.service import Target, record_many
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, get_occupier, get_user, require
from occupant.groups import service as groups
from occupant.kit.bulkwrite import among, insert_rows, reserve_ids, table_of
from occupant.kit.clock import utcnow
from occupant.kit.errors import FieldErrors, OccupantError
from occupant.kit.validation import normalize_email
from occupant.occupiers.models import Occupier
from occupant.sites.models import Site
from occupant.users import service
from occupant.users.models import OccupierUser, UserStatus, derived_keys
from occupant.users.schemas import UserCreate, UserUpdate
from occupant.wifi import bulk as wifi_bulk
from occupant.wifi import service as wifi
from occupant.wifi.models import WifiAccount

OnExisting = Literal["fail", "skip", "update"]
FieldError = dict[str, str]

# Values per lookup statement: well under both databases' bound-parameter limits.
LOOKUP_CHUNK = 5_000

CSV_COLUMNS = (
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
    "wifi",
    "wifi_homesite",
    "wifi_device_limit",
    "role",
    "invite_portal",
    "invite_mobile_app",
    "groups",
)
REQUIRED_COLUMNS = ("first_name", "last_name", "email")

_DETAILS: tuple[str, ...] = (
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
)
_UPDATABLE = tuple(name for name in _DETAILS if name != "email")
# The single actions' field names, as the row's columns call them.
_COLUMN_OF = {"homesite_id": "wifi_homesite", "device_limit": "wifi_device_limit", "group_ids": "groups"}
_TRUE = {"y", "yes", "true", "1"}
_FALSE = {"n", "no", "false", "0"}


class _Shape:
    """An input model's string rules (trimmed, lengths, lower case), answered without building the model
    for the values it can vouch for: ~1 µs a row instead of ~6. :meth:`values` returns what
    ``model_validate(data).model_dump()`` returns, or None to leave the decision — and the wording of
    every refusal — to the model. tests/users/test_bulk_create.py compares both on many inputs."""

    def __init__(self, model: type[BaseModel], skip: Collection[str] = ()) -> None:
        self.rules: list[tuple[str, bool, bool, Any, int, int | None, bool]] = []
        for name, info in model.model_fields.items():
            if name in skip:
                continue
            rules = [m for m in info.metadata if isinstance(m, StringConstraints)]
            if len(info.metadata) != 1 or len(rules) != 1 or info.annotation not in (str, str | None):
                raise TypeError(f"{model.__name__}.{name}: not a plain string field")
            rule = rules[0]
            if not rule.strip_whitespace or rule.to_upper or rule.pattern or rule.strict or rule.ascii_only:
                raise TypeError(f"{model.__name__}.{name}: a rule this shortcut does not know")
            required = info.is_required()
            self.rules.append(
                (
                    name,
                    required,
                    info.annotation is not str,  # None allowed
                    None if required else info.default,
                    rule.min_length or 0,
                    rule.max_length,
                    bool(rule.to_lower),
                )
            )

    def values(self, data: Mapping[str, Any]) -> dict[str, Any] | None:
        out: dict[str, Any] = {}
        for name, required, optional, default, shortest, longest, lower in self.rules:
            value = data.get(name, _MISSING)
            if value is _MISSING:
                if required:
                    return None
                out[name] = default
                continue
            if value is None and optional:
                out[name] = None
                continue
            if type(value) is not str or value != value.strip():
                return None  # another type, or text to trim: the model's call
            if len(value) < shortest or (longest is not None and len(value) > longest):
                return None
            if lower:
                if not value.isascii():
                    return None
                value = value.lower()
            out[name] = value
        return out


_MISSING = object()


_NEW_USER_SHAPE = _Shape(UserCreate, skip={"group_ids"})


class RowAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    SKIP = "skip"


class RowOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    SKIPPED = "skipped"


@dataclass(slots=True)
class NewUserRow:
    """What one row of a bulk create asks for, values as typed (``line``: the CSV line, header = 1).

    ``wifi`` None means "yes when ``wifi_homesite`` (a site code of the occupier) is filled";
    ``wifi_device_limit`` None the occupier's default; ``role`` ``user`` or ``admin``; ``groups`` the
    names of groups the occupier's users may join (case-insensitive). ``problems`` are the field errors
    found while reading the row (a bad yes/no or number), reported with the others.
    """

    line: int = 0
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    job_title: str | None = None
    mobile: str | None = None
    direct_line: str | None = None
    language: str | None = None
    employee_number: str | None = None
    username: str | None = None
    external_id: str | None = None
    wifi: bool | None = None
    wifi_homesite: str | None = None
    wifi_device_limit: int | None = None
    role: str | None = None
    invite_portal: bool = False
    invite_mobile_app: bool = False
    groups: list[str] = field(default_factory=list)
    problems: list[FieldError] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """The row as JSON (a bulk item's ``payload``), read back by :meth:`from_payload`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "line"}

    @classmethod
    def from_payload(cls, line: int, payload: Mapping[str, Any]) -> NewUserRow:
        known = {f.name for f in dataclasses.fields(cls)} - {"line"}
        return cls(line=line, **{k: v for k, v in payload.items() if k in known})


def row_from_csv(values: Mapping[str, str | None], *, line: int) -> NewUserRow:
    """A CSV row (lower-case column names, as ``kit.csvin`` gives them) as a :class:`NewUserRow`: text
    trimmed, blanks None; yes/no as y/n, yes/no, true/false or 1/0 in any case; ``groups`` separated by
    ``;``. A yes/no or a device limit that cannot be read is a field error in ``problems``."""
    problems: list[FieldError] = []

    def text(name: str) -> str | None:
        value = (values.get(name) or "").strip()
        return value or None

    def yes_no(name: str) -> bool | None:
        value = text(name)
        if value is None:
            return None
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        problems.append(
            {"field": name, "code": "invalid_boolean", "message": "Use y or n (yes/no, true/false, 1/0)."}
        )
        return None

    limit_text = text("wifi_device_limit")
    limit = None
    if limit_text is not None:
        if limit_text.isdigit():
            limit = int(limit_text)
        else:
            problems.append(
                {
                    "field": "wifi_device_limit",
                    "code": "invalid_device_limit",
                    "message": "The device limit must be a whole number.",
                }
            )
    role = text("role")
    row = NewUserRow(
        line=line,
        first_name=text("first_name"),
        last_name=text("last_name"),
        email=text("email"),
        job_title=text("job_title"),
        mobile=text("mobile"),
        direct_line=text("direct_line"),
        language=text("language"),
        employee_number=text("employee_number"),
        username=text("username"),
        external_id=text("external_id"),
        wifi=yes_no("wifi"),
        wifi_homesite=text("wifi_homesite"),
        wifi_device_limit=limit,
        role=role.lower() if role else None,
        invite_portal=bool(yes_no("invite_portal")),
        invite_mobile_app=bool(yes_no("invite_mobile_app")),
        groups=[name.strip() for name in (values.get("groups") or "").split(";") if name.strip()],
    )
    row.problems = problems
    return row


@dataclass(frozen=True, slots=True)
class RowCheck:
    """What would happen to one row (the preview): ``action`` create / update / skip, or None with the
    row's ``errors`` (every one: ``{field, code, message}``; field ``""`` for the row as a whole).
    ``user_id``: the existing user an update or a skip is about."""

    line: int
    email: str
    action: RowAction | None
    errors: tuple[FieldError, ...] = ()
    user_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def code(self) -> str | None:
        return _code(self.errors)

    @property
    def message(self) -> str | None:
        return _message(self.errors)


@dataclass(frozen=True, slots=True)
class RowResult:
    """What happened to one row: ``outcome`` created / updated / skipped with the user's id, or None with
    the row's ``errors`` (as :class:`RowCheck` reports them); a failed row wrote nothing."""

    line: int
    email: str
    outcome: RowOutcome | None
    user_id: int | None = None
    errors: tuple[FieldError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def code(self) -> str | None:
        return _code(self.errors)

    @property
    def message(self) -> str | None:
        return _message(self.errors)


def _code(errors: Sequence[FieldError]) -> str | None:
    if not errors:
        return None
    return errors[0]["code"] if len(errors) == 1 else "validation_error"


def _message(errors: Sequence[FieldError]) -> str | None:
    if not errors:
        return None
    if len(errors) == 1:
        return errors[0]["message"]
    return " ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)


# --- the rules, row by row, on facts read for all rows at once ------------------------------------


@dataclass(slots=True)
class _NewUser:
    """A user a row creates: the facts the shared rules, mails and RADIUS rows read (``UserFacts``)."""

    occupier: Occupier
    operator_id: int
    occupier_id: int
    values: dict[str, Any]
    id: int = 0

    @property
    def first_name(self) -> str:
        return str(self.values.get("first_name") or "")

    @property
    def email(self) -> str:
        return str(self.values.get("email") or "")

    @property
    def email_key(self) -> str:
        return str(self.values.get("email_key") or "")

    @property
    def language(self) -> str:
        return str(self.values.get("language") or "en")

    @property
    def status(self) -> str:
        return UserStatus.ACTIVE


@dataclass(slots=True)
class _Plan:
    row: NewUserRow
    action: RowAction | None = None
    errors: list[FieldError] = field(default_factory=list)
    user: _NewUser | None = None  # a create
    existing_id: int | None = None  # the user an update or a skip is about
    existing: OccupierUser | None = None  # an update's user
    changes: dict[str, Any] = field(default_factory=dict)  # an update's basic details
    group_ids: list[int] = field(default_factory=list)
    wifi: tuple[Site, int] | None = None  # homesite and device limit
    account: tuple[AccountRole, list[App]] | None = None  # role and apps to invite to

    def check(self) -> RowCheck:
        errors = tuple(self.errors)
        return RowCheck(
            self.row.line,
            self.row.email or "",
            None if errors else self.action,
            errors,
            self.existing_id,
        )


@dataclass(slots=True)
class _Facts:
    """What the checks need to know from the database, read for every row at once."""

    occupier: Occupier
    on_existing: OnExisting
    region: str | None
    maximum: int
    site_ids: dict[str, int]  # site code (upper case) -> id, of the occupier's sites
    default_homesite: int | None
    emails: dict[str, tuple[int, int]] = field(default_factory=dict)  # email key -> (user id, occupier id)
    usernames: dict[str, int] = field(default_factory=dict)  # in the occupier -> user id
    external_ids: dict[str, int] = field(default_factory=dict)
    wifi_usernames: dict[str, int] = field(default_factory=dict)  # instance-wide -> user id
    groups: dict[str, list[int]] = field(default_factory=dict)  # lower-case name -> ids
    existing: dict[int, OccupierUser] = field(default_factory=dict)  # users to update, by id
    with_wifi: set[int] = field(default_factory=set)  # of those, who has a Wi-Fi account
    with_account: set[int] = field(default_factory=set)  # ... and an app account
    # The Wi-Fi and app-account terms of a new user depend only on what the row asks for (the user is
    # ACTIVE, of this occupier): worked out once per distinct request.
    new_wifi: dict[tuple[int | None, int | None], tuple[tuple[Site, int] | None, list[FieldError]]] = field(
        default_factory=dict
    )
    new_account: dict[tuple[str | None, bool, bool], tuple[Any, list[FieldError]]] = field(
        default_factory=dict
    )


def _normalized_email(row: NewUserRow) -> tuple[str, str] | FieldErrors:
    """The row's email as stored and its uniqueness key (``normalize_email``), or why not."""
    try:
        return normalize_email(row.email or "")
    except FieldErrors as exc:
        return exc


def _read_facts(
    session: Session,
    occupier: Occupier,
    rows: Sequence[NewUserRow],
    email_keys: Sequence[str | None],
    on_existing: OnExisting,
) -> _Facts:
    facts = _Facts(
        occupier=occupier,
        on_existing=on_existing,
        region=occupier.default_region,
        maximum=wifi.max_devices(session, occupier.operator_id),
        site_ids={site.code.upper(): site.id for site in occupier.sites},
        default_homesite=occupier.primary_site_id or (occupier.sites[0].id if occupier.sites else None),
    )
    keys = sorted({key for key in email_keys if key})
    for chunk in _chunks(keys):
        facts.emails.update(
            (key, (user_id, occupier_id))
            for key, user_id, occupier_id in session.execute(
                select(OccupierUser.email_key, OccupierUser.id, OccupierUser.occupier_id).where(
                    OccupierUser.operator_id == occupier.operator_id,
                    among(session, OccupierUser.email_key, chunk),
                )
            )
        )
    for name, found in (("username", facts.usernames), ("external_id", facts.external_ids)):
        column = getattr(OccupierUser, name)
        wanted = sorted({value.strip() for row in rows if (value := getattr(row, name)) and value.strip()})
        for chunk in _chunks(wanted):
            stmt = select(column, OccupierUser.id).where(
                OccupierUser.occupier_id == occupier.id, among(session, column, chunk)
            )
            found.update((value, user_id) for value, user_id in session.execute(stmt))
    facts.wifi_usernames = wifi_bulk.taken_usernames(session, keys)
    if any(row.groups for row in rows):
        facts.groups = groups.available_by_name(session, occupier)
    if on_existing == "update":
        ids = sorted(
            {user_id for user_id, occupier_id in facts.emails.values() if occupier_id == occupier.id}
        )
        for chunk in _chunks(ids):
            facts.existing.update(
                (user.id, user)
                for user in session.scalars(select(OccupierUser).where(OccupierUser.id.in_(chunk)))
            )
            facts.with_wifi.update(
                session.scalars(select(WifiAccount.user_id).where(WifiAccount.user_id.in_(chunk)))
            )
            facts.with_account.update(
                session.scalars(select(AppAccount.user_id).where(AppAccount.user_id.in_(chunk)))
            )
    return facts


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[start : start + LOOKUP_CHUNK] for start in range(0, len(values), LOOKUP_CHUNK)]


def _columns(errors: Sequence[FieldError]) -> list[FieldError]:
    """The single actions' field errors, named as the row's columns."""
    return [{**e, "field": _COLUMN_OF.get(e["field"], e["field"])} for e in errors]


def _row_error(exc: OccupantError, field_name: str = "") -> list[FieldError]:
    """An action's error as the row's field errors: its own for FieldErrors, else one for ``field_name``."""
    if isinstance(exc, FieldErrors):
        return _columns(exc.errors)
    return [{"field": field_name, "code": exc.code, "message": exc.message}]


def _shape_errors(exc: ValidationError) -> tuple[list[FieldError], set[str]]:
    """The input model's refusals (required, lengths) as field errors, and the fields they concern."""
    errors, fields = [], set()
    for error in exc.errors():
        name = str(error["loc"][0]) if error.get("loc") else ""
        kind, ctx = error["type"], error.get("ctx") or {}
        if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
            errors.append({"field": name, "code": "required", "message": "This field is required."})
        elif kind == "string_too_long":
            message = f"Use at most {ctx.get('max_length')} characters."
            errors.append({"field": name, "code": "too_long", "message": message})
        else:
            errors.append({"field": name, "code": "invalid", "message": str(error.get("msg", "Not valid."))})
        fields.add(name)
    return errors, fields


def _groups(plan: _Plan, facts: _Facts) -> None:
    unknown, ambiguous = [], []
    for name in plan.row.groups:
        ids = facts.groups.get(name.strip().lower(), [])
        if len(ids) == 1:
            if ids[0] not in plan.group_ids:
                plan.group_ids.append(ids[0])
        elif ids:
            ambiguous.append(name)
        else:
            unknown.append(name)
    if unknown:
        plan.errors.append(
            {
                "field": "groups",
                "code": "unknown_group",
                "message": f"Unknown group, or not available to this occupier: {', '.join(unknown)}.",
            }
        )
    if ambiguous:
        plan.errors.append(
            {
                "field": "groups",
                "code": "ambiguous_group",
                "message": f"Several groups available to this occupier are called {', '.join(ambiguous)}.",
            }
        )


def _wants_wifi(row: NewUserRow) -> bool:
    return row.wifi if row.wifi is not None else bool(row.wifi_homesite)


def _wifi_terms(
    user: Any, row: NewUserRow, facts: _Facts, username_taken: bool
) -> tuple[Any, list[FieldError]]:
    """``new_account_terms`` for the row's Wi-Fi: its homesite and limit, or the errors the single action
    gives (every field at once, and a Wi-Fi username taken elsewhere besides)."""
    homesite_id = (
        facts.site_ids.get(row.wifi_homesite.upper()) if row.wifi_homesite else facts.default_homesite
    )
    try:
        terms = wifi.new_account_terms(
            user,
            homesite_id,
            row.wifi_device_limit,
            has_account=False,
            username_taken=username_taken,
            maximum=facts.maximum,
        )
    except OccupantError as exc:
        errors = _row_error(exc, "email" if isinstance(exc, wifi.WifiUsernameTaken) else "wifi")
        if isinstance(exc, FieldErrors) and username_taken:
            errors += _row_error(wifi.WifiUsernameTaken(), "email")
        return None, errors
    return terms, []


def _new_wifi_terms(plan: _Plan, facts: _Facts, user: _NewUser, username_taken: bool) -> None:
    row = plan.row
    if username_taken:
        terms, errors = _wifi_terms(user, row, facts, username_taken)
    else:
        key = (
            facts.site_ids.get(row.wifi_homesite.upper(), -1) if row.wifi_homesite else None,
            row.wifi_device_limit,
        )
        if key not in facts.new_wifi:
            facts.new_wifi[key] = _wifi_terms(user, row, facts, False)
        terms, errors = facts.new_wifi[key]
    plan.wifi = terms
    plan.errors += errors


def _wants_account(row: NewUserRow) -> bool:
    """An invitation, or a role other than ``user`` (``admin``; anything else is refused by the rules)."""
    role = (row.role or "").strip().lower()
    return row.invite_portal or row.invite_mobile_app or role not in ("", AccountRole.USER)


def _account_terms(user: Any, row: NewUserRow) -> tuple[Any, list[FieldError]]:
    """The role and the invitations, as ``set_up_account`` checks them for a user without an account."""
    role = None
    errors: list[FieldError] = []
    try:
        role = accounts.role_terms((row.role or AccountRole.USER).strip().lower())
    except FieldErrors as exc:
        errors += exc.errors
    asked = [
        app
        for app, ticked in ((App.PORTAL, row.invite_portal), (App.MOBILE_APP, row.invite_mobile_app))
        if ticked
    ]
    try:
        invitation = accounts.invite_terms(user, None, asked, has_pending_link=False)
    except OccupantError as exc:  # AppNotOffered names its fields; InvalidState is about the invitation
        errors += _row_error(exc, accounts.invite_field(asked[0]) if asked else "role")
    else:
        if role is not None and not errors:
            return (role, invitation.new_apps), []
    return None, errors


def _new_account_terms(plan: _Plan, facts: _Facts, user: _NewUser) -> None:
    row = plan.row
    key = (row.role, row.invite_portal, row.invite_mobile_app)
    if key not in facts.new_account:
        facts.new_account[key] = _account_terms(user, row)
    plan.account, errors = facts.new_account[key]
    plan.errors += errors


def _check_create(
    plan: _Plan, facts: _Facts, email: tuple[str, str] | FieldErrors, *, email_taken: bool
) -> None:
    """``create_user``'s rules (and the Wi-Fi and app-account parts) for a row that makes a new user."""
    row = plan.row
    data: dict[str, Any] = {
        "first_name": row.first_name or "",
        "last_name": row.last_name or "",
        "email": row.email or "",
        "job_title": row.job_title,
        "mobile": row.mobile,
        "direct_line": row.direct_line,
        "employee_number": row.employee_number,
        "username": row.username,
        "external_id": row.external_id,
    }
    if row.language:
        data["language"] = row.language  # else the input model's default
    values = _NEW_USER_SHAPE.values(data)
    if values is None:
        try:
            values = UserCreate.model_validate(data).model_dump(exclude={"group_ids"})
        except ValidationError as exc:
            errors, refused = _shape_errors(exc)
            plan.errors += errors
            values = {k: v.strip() if isinstance(v, str) else v for k, v in data.items() if k not in refused}
            values.setdefault("language", "en")
    # The email was normalised for every row at once (to look them up): the same rule, asked once.
    if values.pop("email", None) is not None:
        if isinstance(email, FieldErrors):
            plan.errors += email.errors
        else:
            values["email"], values["email_key"] = email
    values = service.check_new_details(values, facts.region, plan.errors)
    taken = ["email"] if email_taken else []
    if values.get("external_id") and values["external_id"] in facts.external_ids:
        taken.append("external_id")
    if values.get("username") and values["username"] in facts.usernames:
        taken.append("username")
    if taken:
        plan.errors += service.taken_errors(taken)
    if row.groups:
        _groups(plan, facts)
    user = _NewUser(facts.occupier, facts.occupier.operator_id, facts.occupier.id, values)
    if _wants_wifi(row):
        # an email of another user of the operator is that user's Wi-Fi username: email_taken says it all
        email_key = values.get("email_key")
        _new_wifi_terms(plan, facts, user, not email_taken and email_key in facts.wifi_usernames)
    if _wants_account(row):
        _new_account_terms(plan, facts, user)
    plan.action = RowAction.CREATE
    plan.user = user


def _check_update(plan: _Plan, facts: _Facts, user: OccupierUser) -> None:
    """``update_user``'s rules for the details the row fills in, and the Wi-Fi and app-account parts the
    user has not got yet."""
    row = plan.row
    data = {name: value for name in _UPDATABLE if (value := getattr(row, name)) and value.strip()}
    values: dict[str, Any] = {}
    try:
        values = UserUpdate.model_validate(data).model_dump(exclude_unset=True)
    except ValidationError as exc:
        errors, refused = _shape_errors(exc)
        plan.errors += errors
        values = {k: v.strip() for k, v in data.items() if k not in refused}
    values = service.check_new_details(values, facts.region, plan.errors)
    taken = []
    for name, found in (("external_id", facts.external_ids), ("username", facts.usernames)):
        if values.get(name) and found.get(values[name], user.id) != user.id:
            taken.append(name)
    plan.errors += service.taken_errors(taken)
    try:
        service.ensure_changeable(user)
    except OccupantError as exc:
        plan.errors += _row_error(exc)
    _groups(plan, facts)
    if _wants_wifi(row) and user.id not in facts.with_wifi:
        owner = facts.wifi_usernames.get(user.email_key, user.id)
        plan.wifi, errors = _wifi_terms(user, row, facts, owner != user.id)
        plan.errors += errors
    if _wants_account(row) and user.id not in facts.with_account:
        plan.account, errors = _account_terms(user, row)
        plan.errors += errors
    plan.action = RowAction.UPDATE
    plan.existing, plan.existing_id = user, user.id
    plan.changes = {name: data[name] for name in values if name in data}


def _duplicate(plan: _Plan, name: str, value: str | None, first: dict[str, int]) -> None:
    if not value:
        return
    line = first.setdefault(value, plan.row.line)
    if line != plan.row.line:
        label = name.replace("_", " ")
        plan.errors.append(
            {"field": name, "code": "duplicate_in_file", "message": f"Same {label} as line {line}."}
        )


def _plan(
    session: Session, occupier: Occupier, rows: Sequence[NewUserRow], on_existing: OnExisting
) -> list[_Plan]:
    if on_existing not in ("fail", "skip", "update"):
        raise ValueError(f"on_existing must be fail, skip or update, not {on_existing!r}")
    emails = [_normalized_email(row) for row in rows]
    email_keys = [None if isinstance(email, FieldErrors) else email[1] for email in emails]
    facts = _read_facts(session, occupier, rows, email_keys, on_existing)
    first_email: dict[str, int] = {}
    first_username: dict[str, int] = {}
    first_external_id: dict[str, int] = {}
    plans = []
    for row, email, key in zip(rows, emails, email_keys, strict=True):
        plan = _Plan(row, errors=list(row.problems))
        plans.append(plan)
        duplicate = key is not None and first_email.setdefault(key, row.line) != row.line
        found = facts.emails.get(key) if key else None
        here = found is not None and found[1] == occupier.id
        kept = here and on_existing != "fail"  # the policy decides, not email_taken
        if found is not None and kept and not duplicate:
            user_id = found[0]
            if on_existing == "skip":
                plan.action, plan.errors, plan.existing_id = RowAction.SKIP, [], user_id
                continue
            _check_update(plan, facts, facts.existing[user_id])
        else:
            _check_create(plan, facts, email, email_taken=found is not None and not kept)
        if duplicate:
            _duplicate(plan, "email", key, first_email)
        values = plan.changes if plan.action == RowAction.UPDATE else (plan.user.values if plan.user else {})
        _duplicate(plan, "username", values.get("username"), first_username)
        _duplicate(plan, "external_id", values.get("external_id"), first_external_id)
    return plans


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Without the cyclic garbage collector for the call: a chunk allocates ~100 objects a row that live
    until it ends, and each of the collector's passes on the way would walk them all (and every row the
    caller holds) — a fifth of the time. Cycles made meanwhile are collected once it is back on."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _open_occupier(session: Session, occupier: Occupier, actor: Actor) -> None:
    """Permission, scope (an occupier admin: their own occupier) and an occupier that is not being
    decommissioned. Raises PermissionDenied, NotFound, OccupierDecommissioned."""
    require(actor, Perm.MANAGE_USERS)
    get_occupier(session, actor, occupier.id)
    service.ensure_occupier_open(occupier)


def check_new_users(
    session: Session,
    occupier: Occupier,
    rows: Sequence[NewUserRow],
    *,
    on_existing: OnExisting = "fail",
    actor: Actor,
) -> list[RowCheck]:
    """What :func:`create_users` would do with each row (the preview), in order; nothing is written.

    Every row is checked against the single actions' rules with all its errors at once (codes as they
    give them: ``required``, ``too_long``, ``invalid_email``, ``email_taken``, ``invalid_phone``,
    ``invalid_language``, ``username_taken``, ``external_id_taken``, ``unknown_group``,
    ``invalid_homesite``, ``invalid_device_limit``, ``wifi_username_taken``, ``invalid_role``,
    ``app_not_offered``, ``action_in_progress``…), plus ``duplicate_in_file`` for an email, username or
    external id that an earlier row already has, and the errors found reading the row. A few queries per
    5,000 rows. Raises PermissionDenied, NotFound (an occupier outside the actor's scope),
    OccupierDecommissioned.
    """
    _open_occupier(session, occupier, actor)
    if not rows:
        return []
    with _collector_paused():
        return [plan.check() for plan in _plan(session, occupier, rows, on_existing)]


# --- the writes -------------------------------------------------------------------------------------

_USERS = table_of(OccupierUser)
_USER_COLUMNS = (
    "id",
    "operator_id",
    "occupier_id",
    "first_name",
    "last_name",
    "email",
    "email_key",
    "job_title",
    "mobile",
    "direct_line",
    "language",
    "employee_number",
    "username",
    "external_id",
    "status",
    "sort_key",
    "search_text",
    "busy_owner",
    "busy_until",
    "version_id",
    "created_at",
    "updated_at",
)
_SEARCH_TRIGGER = "occupier_users_fts_ai"
# COPY runs on the driver's cursor: its errors reach us unwrapped.
_UNIQUE_VIOLATIONS = (IntegrityError, psycopg.IntegrityError)


def create_users(
    session: Session,
    occupier: Occupier,
    rows: Sequence[NewUserRow],
    *,
    on_existing: OnExisting = "fail",
    actor: Actor,
) -> list[RowResult]:
    """Create (or, by ``on_existing``, skip or update) a user per row, as the add-user wizard does: the
    user (ACTIVE) in their groups, then their Wi-Fi account (PROVISIONING, the user busy until RADIUS has
    it, the password emailed in their language) and their app account (the role; invitations with a
    set-password link by email). Every change has its audit event, as the single actions record them.

    The rows are checked again first, as :func:`check_new_users` checks them; a row that fails is left
    untouched, with its errors, and the others proceed. Returns one result per row, in order. Nothing
    commits. Raises PermissionDenied, NotFound, OccupierDecommissioned (nothing written).
    """
    _open_occupier(session, occupier, actor)
    if not rows:
        return []
    with _collector_paused():
        return _create(session, occupier, rows, on_existing, actor=actor)


def _create(
    session: Session, occupier: Occupier, rows: Sequence[NewUserRow], on_existing: OnExisting, *, actor: Actor
) -> list[RowResult]:
    for attempt in range(2):
        plans = _plan(session, occupier, rows, on_existing)
        creates = [plan for plan in plans if plan.action == RowAction.CREATE and not plan.errors]
        try:
            with session.begin_nested():
                _write_new_users(session, occupier, creates, actor=actor)
        except _UNIQUE_VIOLATIONS:
            # Another transaction took an email, username or external id since the check: check again,
            # so that the row which lost the race fails with its error and the others are written.
            if attempt:
                raise
            continue
        break
    results = []
    for plan in plans:
        row = plan.row
        if plan.errors:
            results.append(RowResult(row.line, row.email or "", None, errors=tuple(plan.errors)))
        elif plan.action == RowAction.CREATE and plan.user is not None:
            results.append(RowResult(row.line, row.email or "", RowOutcome.CREATED, plan.user.id))
        elif plan.action == RowAction.SKIP:
            results.append(RowResult(row.line, row.email or "", RowOutcome.SKIPPED, plan.existing_id))
        else:
            results.append(_update(session, plan, actor=actor))
    return results


def _write_new_users(session: Session, occupier: Occupier, plans: Sequence[_Plan], *, actor: Actor) -> None:
    if not plans:
        return
    now = utcnow()
    user_ids = reserve_ids(session, _USERS, len(plans))
    with_wifi = [plan for plan in plans if plan.wifi is not None]
    wifi_ids = dict(
        zip(
            (id(plan) for plan in with_wifi),
            reserve_ids(session, table_of(WifiAccount), len(with_wifi)),
            strict=True,
        )
    )
    hold_until = wifi.provisioning_hold_until()
    rows = []
    for plan, user_id in zip(plans, user_ids, strict=True):
        assert plan.user is not None
        plan.user.id = user_id
        v = plan.user.values
        sort_key, search_text = derived_keys(v["first_name"], v["last_name"], v["email"])
        account_id = wifi_ids.get(id(plan))
        rows.append(
            (
                user_id,
                occupier.operator_id,
                occupier.id,
                v["first_name"],
                v["last_name"],
                v["email"],
                v["email_key"],
                v["job_title"],
                v["mobile"],
                v["direct_line"],
                v["language"],
                v["employee_number"],
                v["username"],
                v["external_id"],
                UserStatus.ACTIVE.value,
                sort_key,
                search_text,
                # held for its new Wi-Fi account until RADIUS has it, as create_wifi_account holds a user
                None if account_id is None else wifi.provisioning_owner(account_id),
                None if account_id is None else hold_until,
                # the version the single path leaves: the user written, then held (a second version)
                1 if account_id is None else 2,
                now,
                now,
            )
        )
    _insert_users(session, rows, user_ids)
    memberships = [(group_id, plan.user.id) for plan in plans if plan.user for group_id in plan.group_ids]
    if memberships:
        groups.add_memberships_many(session, memberships)
    events: dict[tuple[str, ...], tuple[list[str], dict[str, Any]]] = {}
    targets = []
    for plan in plans:
        assert plan.user is not None
        fields, changes = service.created_event(plan.user.values, with_groups=bool(plan.group_ids))
        fields, changes = events.setdefault(tuple(fields), (fields, changes))  # one body per shape
        targets.append(Target(plan.user.id, occupier.id, fields, changes))
    record_many(session, actor=actor, action="user.created", target_type="occupier_user", targets=targets)
    # the wizard's order: the app account first (the Wi-Fi account leaves the user busy)
    accounts.create_accounts(
        session,
        [
            accounts.NewAppAccount(plan.user, plan.account[0], plan.account[1])
            for plan in plans
            if plan.user is not None and plan.account is not None
        ],
        actor=actor,
    )
    wifi_bulk.write_new_accounts(
        session,
        [
            wifi_bulk.NewWifiAccount(wifi_ids[id(plan)], plan.user, plan.wifi[0], plan.wifi[1])
            for plan in with_wifi
            if plan.user is not None and plan.wifi is not None
        ],
        actor=actor,
    )


def _insert_users(session: Session, rows: Sequence[tuple[Any, ...]], ids: Sequence[int]) -> None:
    """The user rows, and their search index entries.

    On SQLite the index (FTS5, migration 0002) follows inserts through a trigger that costs ~40 µs a row,
    ten times what filling the index for the whole batch afterwards costs. So the trigger is dropped for the
    insert and created again in the same transaction (SQLite has one writer: no other connection ever sees
    the table without it; a rollback restores it). PostgreSQL's trigram index takes COPY's rows as they
    come.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        insert_rows(session, _USERS, _USER_COLUMNS, rows)
        return
    trigger = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (_SEARCH_TRIGGER,)
    ).scalar()
    if trigger is None:
        insert_rows(session, _USERS, _USER_COLUMNS, rows)
        return
    session.flush()  # what the ORM still holds goes in under the trigger
    connection.exec_driver_sql(f"DROP TRIGGER {_SEARCH_TRIGGER}")
    insert_rows(session, _USERS, _USER_COLUMNS, rows)
    connection.exec_driver_sql(
        "INSERT INTO occupier_users_fts(rowid, search_text) "
        "SELECT id, search_text FROM occupier_users WHERE id >= ? AND id <= ?",
        (min(ids), max(ids)),
    )
    connection.exec_driver_sql(trigger)


def _update(session: Session, plan: _Plan, *, actor: Actor) -> RowResult:
    """An existing user, one row at a time through the single actions: the basic details the row fills
    in, the groups it names added, then an app account and a Wi-Fi account where the user has none yet
    (in the wizard's order: the Wi-Fi account leaves the user busy)."""
    row = plan.row
    assert plan.existing is not None
    try:
        with session.begin_nested():
            user = get_user(session, actor, plan.existing.id, for_update=True)
            if plan.changes:
                service.update_user(session, user, UserUpdate.model_validate(plan.changes), actor=actor)
            if plan.group_ids:
                current = groups.user_group_ids(session, user.id)
                if set(plan.group_ids) - set(current):
                    groups.set_user_groups(session, user, [*current, *plan.group_ids], actor=actor)
            if plan.account is not None and accounts.account_of(session, user) is None:
                role, apps = plan.account
                accounts.set_up_account(
                    session,
                    user,
                    role=role,
                    invite_portal=App.PORTAL in apps,
                    invite_mobile_app=App.MOBILE_APP in apps,
                    actor=actor,
                )
            if plan.wifi is not None and wifi.account_of(session, user) is None:
                homesite, limit = plan.wifi
                wifi.create_wifi_account(
                    session, user, homesite_id=homesite.id, device_limit=limit, actor=actor
                )
    except OccupantError as exc:
        return RowResult(row.line, row.email or "", None, errors=tuple(_row_error(exc)))
    return RowResult(row.line, row.email or "", RowOutcome.UPDATED, user.id)
