"""Actions on occupier users: one function per state change.

Each checks permission, locks and re-checks the user, changes the database, writes the audit event
and queues any mail, all in the caller's transaction (services flush; the caller commits).
"""

from __future__ import annotations

from collections.abc import Collection
from types import ModuleType
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from occupant.accounts.bulk_lifecycle import forget_failures
from occupant.audit.service import record
from occupant.authz.actor import Actor, ActorKind
from occupant.authz.scope import Perm, require
from occupant.groups import service as groups
from occupant.kit.db import flush_in_savepoint, holder_of
from occupant.kit.errors import (
    ActionInProgress,
    EmailTaken,
    FieldErrors,
    InvalidState,
    OccupierDecommissioned,
    PermissionDenied,
    PreconditionFailed,
)
from occupant.kit.validation import check_language, normalize_email, normalize_phone
from occupant.notify.service import cancel_for_user, queue_mail
from occupant.occupiers.models import Occupier
from occupant.users.models import OccupierUser, UserStatus
from occupant.users.schemas import OwnDetailsUpdate, UserCreate, UserUpdate

# Fields whose values may appear in the audit log (the others are personal: names only are logged).
_NON_PERSONAL = {"status", "language"}
_UNIQUE_FIELDS = {"email_key": "email", "external_id": "external_id", "username": "username"}


def _wifi() -> ModuleType:
    """The Wi-Fi actions, which build on these (imported late: they import this module)."""
    from occupant.wifi import service

    return service


def _accounts() -> ModuleType:
    """The app-account actions, which build on these (imported late: they import this module)."""
    from occupant.accounts import service

    return service


def _bulk() -> ModuleType:
    """The bulk engine, whose job items name users (imported late: it imports this module)."""
    from occupant.bulk import engine

    return engine


def ensure_changeable(user: OccupierUser) -> None:
    """Refuse changes to users of a decommissioning occupier, and to busy users (but for the holder the
    session works for: a bulk job's own items, ``kit.db.working_for``)."""
    ensure_occupier_open(user.occupier)
    if user.is_busy and (user.busy_owner is None or user.busy_owner != holder_of(object_session(user))):
        raise ActionInProgress()


def ensure_occupier_open(occupier: Occupier) -> None:
    if occupier.is_decommissioning:
        raise OccupierDecommissioned()


def check_version(user: OccupierUser, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != user.version_id:
        raise PreconditionFailed()


def _clean_fields(values: dict[str, Any], region: str | None, errors: list[dict[str, str]]) -> dict[str, Any]:
    """Normalise phones and language, collecting every field error instead of stopping at the first."""
    cleaned = dict(values)
    for field in ("mobile", "direct_line"):
        if field in cleaned:
            try:
                cleaned[field] = normalize_phone(cleaned[field], region, field)
            except FieldErrors as exc:
                errors.extend(exc.errors)
    if "language" in cleaned:
        try:
            cleaned["language"] = check_language(cleaned["language"])
        except FieldErrors as exc:
            errors.extend(exc.errors)
    for field in ("job_title", "employee_number", "username", "external_id"):
        if field in cleaned and cleaned[field] == "":
            cleaned[field] = None
    return cleaned


def _flush_unique(
    session: Session, *, new: OccupierUser | None = None, changed: OccupierUser | None = None
) -> None:
    """Flush inside a savepoint, turning a unique-constraint race into the matching field error."""
    try:
        flush_in_savepoint(session, *([new] if new else []), changed=(changed,) if changed else ())
    except IntegrityError as exc:
        text = str(exc.orig).lower()
        if "email_key" in text:
            raise EmailTaken() from exc
        for column, field in _UNIQUE_FIELDS.items():
            if column in text:
                raise FieldErrors.single(
                    field, f"{field}_taken", f"{field.replace('_', ' ').capitalize()} is already in use."
                ) from exc
        raise


def check_new_details(
    values: dict[str, Any], region: str | None, errors: list[dict[str, str]]
) -> dict[str, Any]:
    """The rules of a new user's details that need no database, on a :class:`UserCreate`'s values (without
    ``group_ids``): the email normalised, with its uniqueness key ``email_key``; phones in E.164 with the
    occupier's region as the default; the language; blank identifiers None. Every field error is added to
    ``errors``; a field that is missing from ``values`` is not checked. Shared by :func:`create_user` and the
    bulk create (``users.bulk``)."""
    values = dict(values)
    if "email" in values:
        try:
            values["email"], values["email_key"] = normalize_email(values["email"])
        except FieldErrors as exc:
            errors.extend(exc.errors)
    return _clean_fields(values, region, errors)


def taken_errors(taken: Collection[str]) -> list[dict[str, str]]:
    """The field errors for unique values already in use (``email``: within the operator; ``external_id``,
    ``username``: within the occupier), in the order the fields are checked."""
    errors = []
    for field in ("email", "external_id", "username"):
        if field not in taken:
            continue
        if field == "email":
            errors.append(
                {
                    "field": "email",
                    "code": "email_taken",
                    "message": "Email must be unique within the operator.",
                }
            )
        else:
            errors.append(
                {
                    "field": field,
                    "code": f"{field}_taken",
                    "message": f"{field.replace('_', ' ').capitalize()} is already in use.",
                }
            )
    return errors


def _precheck_unique(
    session: Session,
    occupier: Occupier,
    values: dict[str, Any],
    errors: list[dict[str, str]],
    exclude_id: int | None,
) -> None:
    checks = []
    if values.get("email_key"):
        checks.append(
            (
                "email",
                OccupierUser.operator_id == occupier.operator_id,
                OccupierUser.email_key == values["email_key"],
            )
        )
    for field in ("external_id", "username"):
        if values.get(field):
            checks.append(
                (
                    field,
                    OccupierUser.occupier_id == occupier.id,
                    getattr(OccupierUser, field) == values[field],
                )
            )
    taken = []
    for field, scope, match in checks:
        stmt = select(OccupierUser.id).where(scope, match)
        if exclude_id is not None:
            stmt = stmt.where(OccupierUser.id != exclude_id)
        if session.scalar(stmt.limit(1)) is not None:
            taken.append(field)
    errors.extend(taken_errors(taken))


def _raise_collected(errors: list[dict[str, str]]) -> None:
    if not errors:
        return
    if len(errors) == 1 and errors[0]["code"] == "email_taken":
        raise EmailTaken()
    raise FieldErrors(errors)


def created_event(values: dict[str, Any], *, with_groups: bool) -> tuple[list[str], dict[str, Any]]:
    """The ``user.created`` audit event's fields (the names of the details given) and changes."""
    fields = [k for k, v in values.items() if v not in (None, "") and k != "email_key"]
    return fields + (["groups"] if with_groups else []), {"status": [None, UserStatus.ACTIVE]}


def create_user(session: Session, occupier: Occupier, data: UserCreate, *, actor: Actor) -> OccupierUser:
    """Create an occupier user (status ACTIVE) and add them to the chosen groups.

    Raises FieldErrors (every invalid field at once), EmailTaken, OccupierDecommissioned.
    """
    require(actor, Perm.MANAGE_USERS)
    ensure_occupier_open(occupier)
    errors: list[dict[str, str]] = []
    values = check_new_details(data.model_dump(exclude={"group_ids"}), occupier.default_region, errors)
    _precheck_unique(session, occupier, values, errors, exclude_id=None)
    group_list = []
    if data.group_ids:
        try:
            group_list = groups.resolve_groups_for(session, occupier, data.group_ids)
        except FieldErrors as exc:
            errors.extend(exc.errors)
    _raise_collected(errors)

    user = OccupierUser(
        operator_id=occupier.operator_id, occupier_id=occupier.id, status=UserStatus.ACTIVE, **values
    )
    user.occupier = occupier
    user.refresh_derived()
    _flush_unique(session, new=user)
    if group_list:
        groups.add_memberships(session, user, group_list)
    fields, changes = created_event(values, with_groups=bool(group_list))
    record(
        session,
        actor=actor,
        action="user.created",
        target_type="occupier_user",
        target_id=user.id,
        occupier_id=occupier.id,
        fields=fields,
        changes=changes,
    )
    return user


def update_user(
    session: Session,
    user: OccupierUser,
    changes: UserUpdate,
    *,
    actor: Actor,
    expected_version: int | None = None,
) -> OccupierUser:
    """Change a user's basic details; only the fields that were set. An email change notifies both addresses.

    Raises FieldErrors, EmailTaken, PreconditionFailed (stale version), ActionInProgress,
    OccupierDecommissioned.
    """
    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)
    check_version(user, expected_version)
    values = changes.model_dump(exclude_unset=True)
    new_email = values.pop("email", None)
    _apply_details(session, user, values, actor=actor)
    if new_email is not None:
        change_email(session, user, new_email, actor=actor)
    return user


def update_own_details(
    session: Session,
    user: OccupierUser,
    data: OwnDetailsUpdate,
    *,
    actor: Actor,
    expected_version: int | None = None,
) -> OccupierUser:
    """An occupier user changes their own name, job title, phones or language (not their email), with
    the same rules as :func:`update_user`.

    Raises PermissionDenied (anyone but that user), FieldErrors, PreconditionFailed, ActionInProgress,
    OccupierDecommissioned.
    """
    if actor.kind is not ActorKind.OCCUPIER_USER or actor.id != user.id:
        raise PermissionDenied("Only the user can change their own details here.")
    ensure_changeable(user)
    check_version(user, expected_version)
    _apply_details(session, user, data.model_dump(exclude_unset=True), actor=actor)
    return user


def _apply_details(session: Session, user: OccupierUser, values: dict[str, Any], *, actor: Actor) -> None:
    """Validate (every field error at once), change and audit the given basic details."""
    errors: list[dict[str, str]] = []
    for required in ("first_name", "last_name"):
        if required in values and values[required] is None:
            errors.append({"field": required, "code": "required", "message": "This field is required."})
    if "language" in values and values["language"] is None:
        values.pop("language")
    values = _clean_fields(values, user.occupier.default_region, errors)
    _precheck_unique(session, user.occupier, values, errors, exclude_id=user.id)
    _raise_collected(errors)

    changed = [k for k, v in values.items() if getattr(user, k) != v]
    audit_changes = {k: [getattr(user, k), values[k]] for k in changed if k in _NON_PERSONAL}
    for key in changed:
        setattr(user, key, values[key])
    if changed:
        user.refresh_derived()
        _flush_unique(session, changed=user)
        record(
            session,
            actor=actor,
            action="user.updated",
            target_type="occupier_user",
            target_id=user.id,
            occupier_id=user.occupier_id,
            fields=changed,
            changes=audit_changes,
        )


def change_email(session: Session, user: OccupierUser, new_email: str, *, actor: Actor) -> OccupierUser:
    """Operator staff change a user's email. Both the old and the new address are notified.

    Raises PermissionDenied (occupier roles), FieldErrors, EmailTaken, ActionInProgress,
    OccupierDecommissioned.
    """
    require(actor, Perm.CHANGE_EMAIL)
    ensure_changeable(user)
    email, key = normalize_email(new_email)
    if email == user.email:
        return user
    if key != user.email_key:
        errors: list[dict[str, str]] = []
        _precheck_unique(session, user.occupier, {"email_key": key}, errors, exclude_id=user.id)
        _raise_collected(errors)
    old_email, old_key = user.email, user.email_key
    user.email, user.email_key = email, key
    user.refresh_derived()
    _flush_unique(session, changed=user)
    forget_failures(session, [old_key])  # the old address no longer signs in: it leaves the throttles
    _wifi().on_email_changed(session, user)
    record(
        session,
        actor=actor,
        action="user.email_changed",
        target_type="occupier_user",
        target_id=user.id,
        occupier_id=user.occupier_id,
        fields=["email"],
    )
    for to, template, context in (
        (old_email, "email_changed_old", {"first_name": user.first_name, "new_email": email}),
        (email, "email_changed_new", {"first_name": user.first_name, "old_email": old_email}),
    ):
        queue_mail(
            session,
            operator_id=user.operator_id,
            to=to,
            template=template,
            language=user.language,
            context=context,
            user_id=user.id,
        )
    _accounts().on_email_changed(session, user, actor=actor)
    return user


def deactivate_user(session: Session, user: OccupierUser, *, actor: Actor) -> OccupierUser:
    """Suspend all of the user's access and keep the profile. A no-op when already deactivated."""
    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)
    if user.status == UserStatus.DEACTIVATED:
        return user
    old = user.status
    user.status = UserStatus.DEACTIVATED
    _wifi().on_user_deactivated(session, user)
    _accounts().on_user_deactivated(session, user)
    session.flush()
    record(
        session,
        actor=actor,
        action="user.deactivated",
        target_type="occupier_user",
        target_id=user.id,
        occupier_id=user.occupier_id,
        fields=["status"],
        changes={"status": [old, user.status]},
    )
    return user


def reactivate_user(session: Session, user: OccupierUser, *, actor: Actor) -> OccupierUser:
    """Restore a deactivated user's access. Raises InvalidState when the user is not deactivated."""
    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)
    if user.status != UserStatus.DEACTIVATED:
        raise InvalidState("Only a deactivated user can be reactivated.")
    user.status = UserStatus.ACTIVE
    _wifi().on_user_reactivated(session, user)
    _accounts().on_user_reactivated(session, user)
    session.flush()
    record(
        session,
        actor=actor,
        action="user.reactivated",
        target_type="occupier_user",
        target_id=user.id,
        occupier_id=user.occupier_id,
        fields=["status"],
        changes={"status": [UserStatus.DEACTIVATED, UserStatus.ACTIVE]},
    )
    return user


def delete_user(
    session: Session, user: OccupierUser, *, actor: Actor, expected_version: int | None = None
) -> None:
    """Delete a user permanently, with every trace of their personal data.

    Group memberships go, the Wi-Fi and app accounts go (app sessions end), undelivered mail is cancelled
    and wiped; the audit log keeps only the id. Raises ActionInProgress, OccupierDecommissioned,
    PreconditionFailed, PermissionDenied (yourself; CannotDeleteAdmin: an occupier admin deleting a user
    whose app role is admin).
    """
    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)
    check_version(user, expected_version)
    purge_user(session, user, actor=actor)


def ensure_not_self(actor: Actor, user: OccupierUser) -> None:
    """Nobody deletes themselves (an occupier admin in the portal). Raises PermissionDenied."""
    if actor.role.value.startswith("occupier") and actor.id == user.id:
        raise PermissionDenied("You cannot delete yourself.")


def purge_user(session: Session, user: OccupierUser, *, actor: Actor) -> None:
    """The delete cascade itself, shared by user deletion and occupier decommissioning."""
    ensure_not_self(actor, user)
    _accounts().ensure_may_delete(session, user, actor=actor)
    user_id, occupier_id = user.id, user.occupier_id
    _wifi().on_user_deleted(session, user)
    _accounts().on_user_deleted(session, user)
    groups.remove_all_memberships(session, user_id)
    cancel_for_user(session, user_id)
    _bulk().forget_users(session, [user_id])
    session.execute(delete(OccupierUser).where(OccupierUser.id == user_id))
    session.expunge(user)
    forget_failures(session, [user.email_key])
    record(
        session,
        actor=actor,
        action="user.deleted",
        target_type="occupier_user",
        target_id=user_id,
        occupier_id=occupier_id,
    )
