"""Deleting, deactivating and reactivating many users at once, and matching a deactivation file's rows to
users: what :func:`occupant.users.service.delete_user`, ``deactivate_user`` and ``reactivate_user`` do for
each user, set-based, for the bulk engine's chunks (2,000-5,000 users per call and transaction).

Each action applies the single action's rules to every user — permission, the actor's scope,
``ensure_changeable`` (a bulk job's own holds pass, ``kit.db.working_for``) and the action's own — and then
writes for all the accepted users at once, through the set-based hooks of Wi-Fi
(:mod:`occupant.wifi.bulk_lifecycle`), app accounts (:mod:`occupant.accounts.bulk_lifecycle`), groups
and the outbox: a fixed number of statements per 5,000 users, whatever the batch size. A user that breaks
a rule fails alone with the single action's error and is left untouched; a user listed twice is handled
once (both positions get the same result). Results come back one per user, in order. Nothing commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, cast

from sqlalchemy import Table, delete, inspect, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from occupant.accounts import bulk_lifecycle as accounts
from occupant.audit.service import Target, record_many
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, require, user_filter, visible_user_ids
from occupant.groups import service as groups
from occupant.kit.clock import utcnow
from occupant.kit.errors import FieldErrors, InvalidState, NotFound, OccupantError
from occupant.kit.idlists import one_of
from occupant.kit.validation import normalize_email
from occupant.notify.service import cancel_for_users
from occupant.users.models import OccupierUser, UserStatus
from occupant.users.service import ensure_changeable, ensure_not_self
from occupant.wifi import bulk_lifecycle as wifi

# Users per statement: the IN lists stay well under SQLite's (32,766) and PostgreSQL's (65,535) limits.
LOOKUP_CHUNK = 5_000

_USERS = cast(Table, OccupierUser.__table__)


class Outcome(StrEnum):
    """What happened to a user (a bulk item's ``outcome``)."""

    DELETED = "deleted"
    DEACTIVATED = "deactivated"
    REACTIVATED = "reactivated"
    UNCHANGED = "unchanged"  # already deactivated (and nothing else asked for): the single action's no-op
    GROUPS_REMOVED = "groups_removed"  # already deactivated; only the group memberships went


@dataclass(frozen=True, slots=True)
class UserResult:
    """For one user of a many-user action, in order: what happened, or the error the single action would
    raise (its ``code`` is stable; nothing was changed for that user)."""

    user_id: int
    outcome: Outcome | None = None
    error: OccupantError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), LOOKUP_CHUNK):
        yield items[start : start + LOOKUP_CHUNK]


def _sort_out(
    session: Session,
    users: Sequence[OccupierUser],
    terms: Callable[[OccupierUser], None],
    *,
    actor: Actor,
) -> tuple[dict[int, UserResult], list[OccupierUser]]:
    """The failures by user id, and the users the action applies to (once each, in order): in the actor's
    scope, changeable, accepted by the action's own ``terms``. Raises PermissionDenied."""
    require(actor, Perm.MANAGE_USERS)
    visible = visible_user_ids(session, actor, [u.id for u in users], chunk=LOOKUP_CHUNK)
    failed: dict[int, UserResult] = {}
    accepted: dict[int, OccupierUser] = {}
    for user in users:
        if user.id in failed or user.id in accepted:
            continue
        try:
            if user.id not in visible:
                raise NotFound()
            ensure_changeable(user)
            terms(user)
        except OccupantError as exc:
            failed[user.id] = UserResult(user.id, error=exc)
            continue
        accepted[user.id] = user
    return failed, list(accepted.values())


def _in_order(
    users: Sequence[OccupierUser], failed: dict[int, UserResult], done: dict[int, Outcome]
) -> list[UserResult]:
    return [failed.get(u.id) or UserResult(u.id, outcome=done[u.id]) for u in users]


def _write_users(session: Session, users: Sequence[OccupierUser], values: dict[str, Any]) -> None:
    """Change these users' rows, a new version each, with one UPDATE per 5,000 users (a flush would send one
    per user: the rows are versioned); the loaded users take the written values as committed state.

    Like the flush, raises StaleDataError when another transaction changed a user since this session read
    it (the bulk engine then redoes the chunk item by item).
    """
    now = utcnow()
    for chunk in _chunks(users):
        read = {user.id: user.version_id for user in chunk}
        rows = session.execute(
            update(_USERS)
            .where(one_of(session, _USERS.c.id, read))
            .values(**values, version_id=_USERS.c.version_id + 1, updated_at=now)
            .returning(_USERS.c.id, _USERS.c.version_id)
        )
        written: dict[int, int] = {user_id: version for user_id, version in rows}
        stale = [user_id for user_id, version in read.items() if written.get(user_id) != version + 1]
        if stale:
            raise StaleDataError(f"occupier_users: {len(stale)} rows changed since they were read")
        for user in chunk:  # as committed state (the flush before the UPDATE left nothing pending)
            inspect(user).dict.update(values, version_id=written[user.id], updated_at=now)


# --- delete -------------------------------------------------------------------------------------------

IndexPurge = Literal["now", "deferred"]


def delete_users(
    session: Session,
    users: Sequence[OccupierUser],
    *,
    actor: Actor,
    index_purge: IndexPurge = "now",
) -> list[UserResult]:
    """Delete each user permanently, with every trace of their personal data, as ``delete_user`` does:
    the Wi-Fi account and all of RADIUS's rows for its username (RADIUS refuses it from the next request;
    sessions and sign-in history go too), the app account with its sessions and links, group memberships,
    the sign-in throttles naming the address, the bulk job items' names and data; undelivered mail is
    cancelled and every message wiped (files in the mail folder removed after the commit). The audit log
    keeps one ``user.deleted`` event per user, with the opaque id only.

    Failures, each alone: NotFound (outside the actor's scope), ActionInProgress, OccupierDecommissioned,
    PermissionDenied ("You cannot delete yourself."), CannotDeleteAdmin (an occupier admin deleting a user
    whose app role is admin). Raises PermissionDenied (nothing written) when the actor may not manage
    users; StaleDataError when a user changed since it was read.

    ``index_purge`` (SQLite's search index; PostgreSQL has nothing to do): ``"now"`` removes the deleted
    users' entries from the index's pages at once (``secure-delete``, ~0.3-1 ms a user); ``"deferred"``
    marks them deleted (search never finds them again; ~10 µs a user) and leaves their removal from the
    pages to :func:`purge_search_index`, which the caller must run once after its last batch (a bulk
    job, when it finishes).
    """
    ids = [user.id for user in users]
    admins = accounts.admins_among(session, actor, ids)

    def terms(user: OccupierUser) -> None:
        ensure_not_self(actor, user)
        accounts.ensure_may_delete(user, admins)

    failed, accepted = _sort_out(session, users, terms, actor=actor)
    if accepted:
        _purge(session, accepted, actor=actor, index_purge=index_purge)
    return _in_order(users, failed, {user.id: Outcome.DELETED for user in accepted})


def _purge(session: Session, users: Sequence[OccupierUser], *, actor: Actor, index_purge: IndexPurge) -> None:
    ids = [user.id for user in users]
    targets = [Target(user.id, user.occupier_id) for user in users]
    email_keys = [user.email_key for user in users]
    wifi.on_users_deleted(session, ids)
    accounts.on_users_deleted(session, ids)
    groups.remove_memberships_of(session, ids)
    cancel_for_users(session, ids)
    _forget_job_items(session, ids)
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite and index_purge == "deferred":
        _secure_delete(session, False)
    for chunk in _chunks(ids):
        # "fetch": the loaded users leave the session (as ``purge_user`` expunges its user), in one go
        session.execute(
            delete(OccupierUser)
            .where(one_of(session, OccupierUser.id, chunk))
            .execution_options(synchronize_session="fetch")
        )
    if sqlite and index_purge == "deferred":
        _secure_delete(session, True)
    accounts.forget_failures(session, email_keys)
    record_many(session, actor=actor, action="user.deleted", target_type="occupier_user", targets=targets)


def _forget_job_items(session: Session, user_ids: Sequence[int]) -> None:
    from occupant.bulk import engine  # imported late: it imports the users' actions

    engine.forget_users(session, user_ids)


_FTS = "occupier_users_fts"  # migration 0002: SQLite's trigram index of ``search_text``


def _secure_delete(session: Session, on: bool) -> None:
    """Whether the index's delete trigger removes a row's entries from the index pages at once (``on``, the
    default) or writes delete markers that the next merge drops. A setting in the index's own config table,
    so a rollback restores it."""
    session.execute(text(f"INSERT INTO {_FTS}({_FTS}, rank) VALUES ('secure-delete', {int(on)})"))


def purge_search_index(session: Session) -> None:
    """After deletions with ``index_purge="deferred"``: rewrite SQLite's search index without the deleted
    users' entries (FTS5 ``optimize``: time grows with the index, ~0.3 s at 100,000 users, ~3 s at a
    million, holding the write lock). Nothing to do on PostgreSQL, whose deleted rows VACUUM reclaims."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text(f"INSERT INTO {_FTS}({_FTS}) VALUES ('optimize')"))


# --- deactivate and reactivate --------------------------------------------------------------------------


def deactivate_users(
    session: Session,
    users: Sequence[OccupierUser],
    *,
    remove_from_groups: bool = False,
    actor: Actor,
) -> list[UserResult]:
    """Suspend each user's access and keep the profile, as ``deactivate_user`` does: status DEACTIVATED; a
    live Wi-Fi account is deactivated with its user (RADIUS refuses it from the next request); the app
    account is suspended with its user, its sessions and pending links end at once. One ``user.deactivated``
    event per user (``status``: old → DEACTIVATED). An already deactivated user is the single action's
    no-op (outcome ``unchanged``).

    With ``remove_from_groups`` (a deactivation file's ``remove_from_group`` y/Y) each user also leaves every
    group, recorded as ``groups.set_user_groups(user, [])`` records it: ``user.groups_changed`` with the
    group ids removed — an already deactivated user too (outcome ``groups_removed`` when it was in any).

    Failures, each alone: NotFound (outside the actor's scope), ActionInProgress, OccupierDecommissioned.
    Raises PermissionDenied (nothing written); StaleDataError when a user changed since it was read.
    """
    failed, accepted = _sort_out(session, users, lambda user: None, actor=actor)
    changing = [user for user in accepted if user.status != UserStatus.DEACTIVATED]
    old = {user.id: user.status for user in changing}
    left = groups.remove_memberships_of(session, [user.id for user in accepted]) if remove_from_groups else {}
    _write_users(session, changing, {"status": UserStatus.DEACTIVATED})
    _write_users(session, [u for u in accepted if u.id in left and u.id not in old], {})
    wifi.on_users_deactivated(session, changing)
    accounts.on_users_deactivated(session, [user.id for user in changing])
    record_many(
        session,
        actor=actor,
        action="user.deactivated",
        target_type="occupier_user",
        targets=[
            Target(u.id, u.occupier_id, ["status"], {"status": [old[u.id], UserStatus.DEACTIVATED]})
            for u in changing
        ],
    )
    record_many(
        session,
        actor=actor,
        action="user.groups_changed",
        target_type="occupier_user",
        targets=[
            Target(u.id, u.occupier_id, ["groups"], {"added": [], "removed": left[u.id]})
            for u in accepted
            if u.id in left
        ],
    )
    done = {
        user.id: Outcome.DEACTIVATED
        if user.id in old
        else Outcome.GROUPS_REMOVED
        if user.id in left
        else Outcome.UNCHANGED
        for user in accepted
    }
    return _in_order(users, failed, done)


def _deactivated(user: OccupierUser) -> None:
    if user.status != UserStatus.DEACTIVATED:
        raise InvalidState("Only a deactivated user can be reactivated.")


def reactivate_users(session: Session, users: Sequence[OccupierUser], *, actor: Actor) -> list[UserResult]:
    """Restore each deactivated user's access, as ``reactivate_user`` does: status ACTIVE; a Wi-Fi account
    deactivated with its user gets a new password by email (``wifi_password``, reason ``activated``) and is
    PROVISIONING until the worker confirms RADIUS has it (the user busy meanwhile); an app account
    suspended with its user returns (ACTIVE, or AWAITING_SIGN_IN without a password). One
    ``user.reactivated`` event per user.

    Failures, each alone: NotFound, ActionInProgress, OccupierDecommissioned, InvalidState (not
    deactivated). Raises PermissionDenied (nothing written); StaleDataError when a user changed since read.
    """
    failed, accepted = _sort_out(session, users, _deactivated, actor=actor)
    _write_users(session, accepted, {"status": UserStatus.ACTIVE})
    wifi.on_users_reactivated(session, accepted)
    accounts.on_users_reactivated(session, [user.id for user in accepted])
    record_many(
        session,
        actor=actor,
        action="user.reactivated",
        target_type="occupier_user",
        targets=[
            Target(u.id, u.occupier_id, ["status"], {"status": [UserStatus.DEACTIVATED, UserStatus.ACTIVE]})
            for u in accepted
        ],
    )
    return _in_order(users, failed, {user.id: Outcome.REACTIVATED for user in accepted})


# --- matching a deactivation file's rows to users (seed 004) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class DeactivateRow:
    """One row of a deactivation file (or list), its cells as given: ``email`` finds the user; any other
    identifier filled in must match that user. ``occupier`` is the occupier's id, not its name.
    ``remove_from_group``: ``y`` or ``Y`` removes the user from their groups; blank (or ``n``) does not."""

    email: str | None = None
    user_id: str | int | None = None
    username: str | None = None
    external_id: str | None = None
    occupier: str | int | None = None
    remove_from_group: str | None = None


@dataclass(frozen=True, slots=True)
class MatchResult:
    """For one row, in order: the user it names (and whether to remove them from their groups), or why
    the row fails (nobody is deactivated for it)."""

    user_id: int | None = None
    remove_from_group: bool = False
    error: OccupantError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class EmailRequired(FieldErrors):
    code = "required"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(errors, "The email is required: it finds the user.")


class NoUserWithEmail(FieldErrors):
    code = "not_found"
    status = 404

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(errors, "No user has this email.")


class IdentifierMismatch(FieldErrors):
    code = "identifier_mismatch"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        fields = ", ".join(e["field"] for e in errors if e["code"] == "identifier_mismatch")
        super().__init__(errors, f"Does not match the user with this email: {fields}.")


_YES, _NO = {"y", "Y"}, {"", "n", "N"}


@dataclass(frozen=True, slots=True)
class _Candidate:
    id: int
    occupier_id: int
    username: str | None
    external_id: str | None


def match_deactivate_rows(session: Session, actor: Actor, rows: Sequence[DeactivateRow]) -> list[MatchResult]:
    """Find the user each row names, by its email within the actor's scope (case-insensitive: the
    operator's ``email_key``; one query per 5,000 emails), and check the row's other identifiers against
    that user: ``user_id``, ``username``, ``external_id`` (exactly, trimmed) and ``occupier`` (the
    occupier's id).

    A row fails — every problem in it reported, ``FieldErrors``-shaped — with, by the first that applies:
    ``required`` (blank email), ``validation_error`` (not an email address), ``not_found`` (no user with
    this email that the actor may see), ``identifier_mismatch`` (naming each field that does not match),
    ``validation_error`` (``remove_from_group`` neither y/Y, n/N nor blank). Raises PermissionDenied.
    """
    require(actor, Perm.MANAGE_USERS)
    keys: list[str | None] = []
    problems: list[list[dict[str, str]]] = []
    for row in rows:
        errors: list[dict[str, str]] = []
        key = None
        if not _cell(row.email):
            errors.append({"field": "email", "code": "required", "message": "The email is required."})
        else:
            try:
                key = normalize_email(_cell(row.email))[1]
            except FieldErrors as exc:
                errors += exc.errors
        keys.append(key)
        problems.append(errors)
    found = _users_by_email(session, actor, [key for key in keys if key is not None])
    results = []
    for row, key, errors in zip(rows, keys, problems, strict=True):
        user = found.get(key) if key is not None else None
        if key is not None and user is None:
            errors.append({"field": "email", "code": "not_found", "message": "No user has this email."})
        if user is not None:
            errors += _mismatches(row, user)
        remove = _cell(row.remove_from_group)
        if remove not in _YES | _NO:
            errors.append(
                {
                    "field": "remove_from_group",
                    "code": "invalid_choice",
                    "message": "Enter y or Y to remove the user from their groups, or leave it blank.",
                }
            )
        if errors:
            results.append(MatchResult(error=_row_error(errors)))
        else:
            assert user is not None
            results.append(MatchResult(user.id, remove_from_group=remove in _YES))
    return results


def _cell(value: str | int | None) -> str:
    return "" if value is None else str(value).strip()


def _users_by_email(session: Session, actor: Actor, keys: Sequence[str]) -> dict[str, _Candidate]:
    found: dict[str, _Candidate] = {}
    ordered = sorted(set(keys))
    for chunk in _chunks(ordered):
        stmt = select(
            OccupierUser.email_key,
            OccupierUser.id,
            OccupierUser.occupier_id,
            OccupierUser.username,
            OccupierUser.external_id,
        ).where(one_of(session, OccupierUser.email_key, chunk), user_filter(actor))
        for key, user_id, occupier_id, username, external_id in session.execute(stmt):
            found[key] = _Candidate(user_id, occupier_id, username, external_id)
    return found


def _mismatches(row: DeactivateRow, user: _Candidate) -> list[dict[str, str]]:
    errors = []

    def mismatch(field: str, message: str = "Does not match the user with this email.") -> None:
        errors.append({"field": field, "code": "identifier_mismatch", "message": message})

    user_id = _cell(row.user_id)
    if user_id and not (user_id.isdecimal() and int(user_id) == user.id):
        mismatch("user_id")
    for field in ("username", "external_id"):
        given = _cell(getattr(row, field))
        if given and given != (getattr(user, field) or ""):
            mismatch(field)
    occupier = _cell(row.occupier)
    if occupier and not occupier.isdecimal():
        mismatch("occupier", "The occupier must be given by its ID, not its name.")
    elif occupier and int(occupier) != user.occupier_id:
        mismatch("occupier")
    return errors


def _row_error(errors: list[dict[str, str]]) -> FieldErrors:
    codes = {error["code"] for error in errors}
    if "required" in codes:
        return EmailRequired(errors)
    if {"invalid_email", "too_long"} & codes:
        return FieldErrors(errors)
    if "not_found" in codes:
        return NoUserWithEmail(errors)
    if "identifier_mismatch" in codes:
        return IdentifierMismatch(errors)
    return FieldErrors(errors)
