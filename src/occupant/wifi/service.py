"""Wi-Fi Secure actions: create, deactivate, activate, reset password, change homesite or device limit.

Every action checks permission, refuses busy users and decommissioning occupiers, changes the account
and FreeRADIUS's rows in the caller's transaction, writes the audit event and queues the password email.
A new credential is ``PROVISIONING`` (and its user busy) until a worker confirms it is live in RADIUS.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from occupant.audit.service import record
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, require
from occupant.kit.clock import utcnow
from occupant.kit.db import on_commit
from occupant.kit.errors import Conflict, FieldErrors, NotFound
from occupant.kit.settings import get_settings
from occupant.notify.service import queue_mail
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.radius import sync
from occupant.radius.models import RadAcct
from occupant.sites.models import Site
from occupant.users.models import OccupierUser, UserFacts, UserStatus
from occupant.users.service import ensure_changeable, ensure_occupier_open
from occupant.wifi.models import WifiAccount, WifiStatus
from occupant.wifi.passwords import new_wifi_password, nt_hash

BUSY_PREFIX = "wifi:"


class NoWifiAccount(Conflict):
    code = "no_wifi_account"
    default_message = "This user has no Wi-Fi account."


class WifiAccountExists(Conflict):
    code = "wifi_account_exists"
    default_message = "This user already has a Wi-Fi account."


class WifiUsernameTaken(Conflict):
    """RADIUS has one namespace of usernames for the whole instance, while emails are unique per operator."""

    code = "wifi_username_taken"
    default_message = (
        "This email address is already a Wi-Fi username on this service; the user needs another email "
        "address for Wi-Fi."
    )


def _existing_wifi(session: Session, user: OccupierUser) -> tuple[bool, bool]:
    """(the user has a Wi-Fi account, the user's email is already a Wi-Fi username), in one query."""
    rows = session.execute(
        select(WifiAccount.user_id, WifiAccount.username)
        .where(or_(WifiAccount.user_id == user.id, WifiAccount.username == user.email_key))
        .limit(2)
    ).all()
    return any(uid == user.id for uid, _ in rows), any(name == user.email_key for _, name in rows)


def _ensure_username_free(session: Session, username: str, account_id: int | None = None) -> None:
    stmt = select(WifiAccount.id).where(WifiAccount.username == username)
    if account_id is not None:
        stmt = stmt.where(WifiAccount.id != account_id)
    if session.scalar(stmt.limit(1)) is not None:
        raise WifiUsernameTaken()


def account_of(session: Session, user: OccupierUser) -> WifiAccount | None:
    return session.scalars(select(WifiAccount).where(WifiAccount.user_id == user.id)).first()


def _require_account(session: Session, user: OccupierUser) -> WifiAccount:
    account = account_of(session, user)
    if account is None:
        raise NoWifiAccount()
    return account


def _homesite(occupier: Occupier, homesite_id: int | None) -> Site:
    for site in occupier.sites:
        if site.id == homesite_id:
            return site
    raise FieldErrors.single(
        "homesite_id", "invalid_homesite", "The homesite must be one of the sites the occupier can access."
    )


def max_devices(session: Session, operator_id: int) -> int:
    """The operator's highest device limit."""
    operator = session.get(Operator, operator_id)
    return operator.wifi_max_devices if operator else 5


def _limit_in_range(occupier: Occupier, device_limit: int | None, maximum: int) -> int:
    limit = occupier.default_wifi_device_limit if device_limit is None else device_limit
    if not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise FieldErrors.single(
            "device_limit", "invalid_device_limit", f"The device limit must be between 1 and {maximum}."
        )
    return limit


def _check_limit(session: Session, occupier: Occupier, device_limit: int | None) -> int:
    return _limit_in_range(occupier, device_limit, max_devices(session, occupier.operator_id))


def _site(session: Session, site_id: int) -> Site:
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound()
    return site


def provisioning_owner(account_id: int) -> str:
    """Who holds the user (busy) while the account is PROVISIONING."""
    return f"{BUSY_PREFIX}{account_id}"


def provisioning_hold_until() -> datetime:
    """Until when the hold lasts at most: a crashed worker never leaves the user busy for good."""
    return utcnow() + timedelta(seconds=get_settings().busy_ttl_seconds)


def _mark_provisioning(session: Session, account: WifiAccount, user: OccupierUser) -> None:
    """PROVISIONING until a worker confirms the credential is live; the user is busy meanwhile."""
    account.status = WifiStatus.PROVISIONING
    account.provisioned_at = None
    user.busy_owner = provisioning_owner(account.id)
    user.busy_until = provisioning_hold_until()
    account_id = account.id
    on_commit(session, lambda: _enqueue_confirm(account_id), key=("wifi.confirm", account_id))


def _enqueue_confirm(account_id: int) -> None:
    from occupant.worker.tasks import enqueue_wifi_confirmation

    enqueue_wifi_confirmation(account_id)


def _issue_password(session: Session, account: WifiAccount, user: OccupierUser, reason: str) -> None:
    """A new random password: its NT hash goes to RADIUS, the cleartext only into the sealed email."""
    password = new_wifi_password()
    account.nt_hash = nt_hash(password)
    account.password_changed_at = utcnow()
    homesite = _site(session, account.homesite_id)
    sync.write_credential(
        session,
        account.username,
        nt_hash=account.nt_hash,
        device_limit=account.device_limit,
        homesite=homesite,
        sites=user.occupier.sites,
    )
    _queue_password_mail(session, account, user, homesite, password, reason)


def password_mail_context(
    user: UserFacts, username: str, device_limit: int, homesite: Site, reason: str
) -> dict[str, Any]:
    """What the password email says besides the password (which travels sealed, as a secret)."""
    return {
        "first_name": user.first_name,
        "username": username,
        "homesite": homesite.name,
        "reason": reason,
        "device_limit": device_limit,
    }


def _queue_password_mail(
    session: Session, account: WifiAccount, user: OccupierUser, homesite: Site, password: str, reason: str
) -> None:
    queue_mail(
        session,
        operator_id=user.operator_id,
        to=user.email,
        template="wifi_password",
        language=user.language,
        context=password_mail_context(user, account.username, account.device_limit, homesite, reason),
        secrets={"password": password},
        user_id=user.id,
    )


def new_account_terms(
    user: UserFacts,
    homesite_id: int | None,
    device_limit: int | None,
    *,
    has_account: bool,
    username_taken: bool,
    maximum: int,
) -> tuple[Site, int]:
    """The rules for a new account of a changeable user, on facts already read: its homesite and device
    limit, or the error the user would see (in this order: WifiAccountExists, InvalidState, FieldErrors
    with every invalid field, WifiUsernameTaken). Shared by the single and the many-user create."""
    if has_account:
        raise WifiAccountExists()
    _require_usable_user(user)
    errors = []
    homesite = limit = None
    try:
        homesite = _homesite(user.occupier, homesite_id)
    except FieldErrors as exc:
        errors += exc.errors
    try:
        limit = _limit_in_range(user.occupier, device_limit, maximum)
    except FieldErrors as exc:
        errors += exc.errors
    if errors or homesite is None or limit is None:
        raise FieldErrors(errors)
    if username_taken:
        raise WifiUsernameTaken()
    return homesite, limit


def created_event(homesite: Site, limit: int) -> tuple[list[str], dict[str, Any]]:
    """The audit event's fields and changes for a new account (``wifi.created``)."""
    return ["wifi_homesite", "wifi_device_limit"], {
        "wifi_status": [None, WifiStatus.PROVISIONING],
        "wifi_homesite": [None, homesite.code],
        "wifi_device_limit": [None, limit],
    }


def create_wifi_account(
    session: Session, user: OccupierUser, *, homesite_id: int, device_limit: int | None = None, actor: Actor
) -> WifiAccount:
    """Give the user a Wi-Fi account: a new password by email, PROVISIONING until RADIUS has it.

    Raises WifiAccountExists, FieldErrors (invalid_homesite, invalid_device_limit), ActionInProgress,
    OccupierDecommissioned, InvalidState (a deactivated user), WifiUsernameTaken (the email is another
    operator's Wi-Fi username).
    """
    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)
    has_account, username_taken = _existing_wifi(session, user)
    homesite, limit = new_account_terms(
        user,
        homesite_id,
        device_limit,
        has_account=has_account,
        username_taken=username_taken,
        maximum=max_devices(session, user.occupier.operator_id),
    )
    password = new_wifi_password()
    hashed = nt_hash(password)
    account = WifiAccount(
        operator_id=user.operator_id,
        occupier_id=user.occupier_id,
        user_id=user.id,
        username=user.email_key,
        homesite_id=homesite.id,
        device_limit=limit,
        status=WifiStatus.PROVISIONING,
        nt_hash=hashed,
        password_changed_at=utcnow(),
        provisioned_at=None,
    )
    session.add(account)
    session.flush()
    # A new username has no RADIUS rows yet: insert them, without deleting first.
    sync.write_new_credentials(
        session, [sync.NewCredential(account.username, hashed, limit, homesite, user.occupier.sites)]
    )
    _queue_password_mail(session, account, user, homesite, password, "created")
    _mark_provisioning(session, account, user)
    fields, changes = created_event(homesite, limit)
    record(
        session,
        actor=actor,
        action="wifi.created",
        target_type="occupier_user",
        target_id=user.id,
        occupier_id=user.occupier_id,
        fields=fields,
        changes=changes,
    )
    return account


def _require_usable_user(user: UserFacts) -> None:
    if user.status == UserStatus.DEACTIVATED:
        from occupant.kit.errors import InvalidState

        raise InvalidState("The user is deactivated; reactivate the user first.")


def deactivate_wifi(session: Session, user: OccupierUser, *, actor: Actor) -> WifiAccount:
    """RADIUS refuses the user from the next attempt; the account is kept. No-op when already deactivated."""
    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)
    account = _require_account(session, user)
    if account.status == WifiStatus.DEACTIVATED:
        if account.suspended_with_user:  # switched off with its user: now it stays off when the user returns
            account.suspended_with_user = False
            session.flush()
            record(
                session,
                actor=actor,
                action="wifi.deactivated",
                target_type="occupier_user",
                target_id=user.id,
                occupier_id=user.occupier_id,
                fields=["wifi_status"],
            )
        return account
    old = account.status
    account.status = WifiStatus.DEACTIVATED
    account.nt_hash = None
    sync.clear_credential(session, [account.username])
    session.flush()
    record(
        session,
        actor=actor,
        action="wifi.deactivated",
        target_type="occupier_user",
        target_id=user.id,
        occupier_id=user.occupier_id,
        fields=["wifi_status"],
        changes={"wifi_status": [old, account.status]},
    )
    return account


def activate_wifi(session: Session, user: OccupierUser, *, actor: Actor) -> WifiAccount:
    """Reactivate a deactivated account with a new password by email. A no-op when it is not deactivated."""
    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)
    account = _require_account(session, user)
    if account.status != WifiStatus.DEACTIVATED:
        return account
    _require_usable_user(user)
    _issue_password(session, account, user, "activated")
    _mark_provisioning(session, account, user)
    account.suspended_with_user = False
    session.flush()
    record(
        session,
        actor=actor,
        action="wifi.activated",
        target_type="occupier_user",
        target_id=user.id,
        occupier_id=user.occupier_id,
        fields=["wifi_status"],
        changes={"wifi_status": [WifiStatus.DEACTIVATED, account.status]},
    )
    return account


def _require_live(account: WifiAccount) -> None:
    if account.status == WifiStatus.DEACTIVATED:
        from occupant.kit.errors import InvalidState

        raise InvalidState("The Wi-Fi account is deactivated; activate it instead.")


def reset_wifi_password(session: Session, user: OccupierUser, *, actor: Actor) -> WifiAccount:
    """A new password by email; the old one is refused from the next attempt."""
    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)
    account = _require_account(session, user)
    _require_live(account)
    _issue_password(session, account, user, "reset")
    session.flush()
    record(
        session,
        actor=actor,
        action="wifi.password_reset",
        target_type="occupier_user",
        target_id=user.id,
        occupier_id=user.occupier_id,
        fields=["wifi_password"],
    )
    return account


def change_homesite(session: Session, user: OccupierUser, homesite_id: int, *, actor: Actor) -> WifiAccount:
    """Move the user's secure network to another site; a new password by email (when the account is live)."""
    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)
    account = _require_account(session, user)
    site = _homesite(user.occupier, homesite_id)
    if site.id == account.homesite_id:
        return account
    old = _site(session, account.homesite_id).code
    account.homesite_id = site.id
    if account.status != WifiStatus.DEACTIVATED:
        _issue_password(session, account, user, "homesite_changed")
    session.flush()
    record(
        session,
        actor=actor,
        action="wifi.homesite_changed",
        target_type="occupier_user",
        target_id=user.id,
        occupier_id=user.occupier_id,
        fields=["wifi_homesite"],
        changes={"wifi_homesite": [old, site.code]},
    )
    return account


def change_device_limit(
    session: Session, user: OccupierUser, device_limit: int, *, actor: Actor
) -> WifiAccount:
    """How many devices may be connected at once; the next one is refused."""
    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)
    account = _require_account(session, user)
    limit = _check_limit(session, user.occupier, device_limit)
    if limit == account.device_limit:
        return account
    old = account.device_limit
    account.device_limit = limit
    sync.set_device_limit(session, account.username, limit)
    session.flush()
    record(
        session,
        actor=actor,
        action="wifi.device_limit_changed",
        target_type="occupier_user",
        target_id=user.id,
        occupier_id=user.occupier_id,
        fields=["wifi_device_limit"],
        changes={"wifi_device_limit": [old, limit]},
    )
    return account


def update_wifi_account(
    session: Session,
    user: OccupierUser,
    *,
    status: WifiStatus | None = None,
    homesite_id: int | None = None,
    device_limit: int | None = None,
    actor: Actor,
) -> WifiAccount:
    """Several changes at once (API PATCH, the console's settings form, ``occupant wifi set``); None = keep.

    Every invalid field is reported together before anything changes. Deactivation runs first and
    activation last, so the user gets at most one new password by email, naming the new homesite and
    limit. Raises what the single actions raise (NoWifiAccount, FieldErrors, ActionInProgress, ...).
    """
    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)
    _require_account(session, user)
    errors: list[dict[str, str]] = []
    if homesite_id is not None:
        try:
            _homesite(user.occupier, homesite_id)
        except FieldErrors as exc:
            errors += exc.errors
    if device_limit is not None:
        try:
            _check_limit(session, user.occupier, device_limit)
        except FieldErrors as exc:
            errors += exc.errors
    if errors:
        raise FieldErrors(errors)
    if status == WifiStatus.DEACTIVATED:
        deactivate_wifi(session, user, actor=actor)
    if device_limit is not None:
        change_device_limit(session, user, device_limit, actor=actor)
    if homesite_id is not None:
        change_homesite(session, user, homesite_id, actor=actor)
    if status == WifiStatus.ACTIVE:
        activate_wifi(session, user, actor=actor)
    return _require_account(session, user)


def connected_devices(session: Session, user: OccupierUser) -> list[RadAcct]:
    """The user's open accounting sessions (devices connected now), newest first."""
    account = account_of(session, user)
    if account is None:
        return []
    stmt = (
        select(RadAcct)
        .where(RadAcct.username == account.username, RadAcct.acctstoptime.is_(None))
        .order_by(RadAcct.acctstarttime.desc())
    )
    return list(session.scalars(stmt))


def clear_session(session: Session, user: OccupierUser, radacct_id: int, *, actor: Actor) -> None:
    """Close a stale session (a device gone without an accounting Stop), freeing a place under the limit.

    Allowed while the user is busy (a stale session is what may be blocking them), not while the
    occupier is being decommissioned.
    """
    require(actor, Perm.MANAGE_USERS)
    ensure_occupier_open(user.occupier)
    account = _require_account(session, user)
    row = session.get(RadAcct, radacct_id)
    if row is None or row.username != account.username or row.acctstoptime is not None:
        raise NotFound("No such open session.")
    row.acctstoptime = utcnow()
    row.acctterminatecause = "Admin-Reset"
    session.flush()
    record(
        session,
        actor=actor,
        action="wifi.session_cleared",
        target_type="occupier_user",
        target_id=user.id,
        occupier_id=user.occupier_id,
        fields=["wifi_sessions"],
    )


# --- confirmation of provisioning (worker) ---------------------------------------------------------


class ProvisioningNotLive(Exception):
    """The account is PROVISIONING but RADIUS does not have its credential (yet): try again later."""


def confirm_provisioning(session: Session, account_id: int) -> bool:
    """PROVISIONING → ACTIVE once RADIUS's rows for the credential are committed; frees the user.

    Returns False when there is nothing to confirm (gone, or no longer PROVISIONING). Raises
    ProvisioningNotLive when RADIUS cannot see the credential, so that the worker retries.
    """
    from occupant.radius.models import RadCheck

    account = session.get(WifiAccount, account_id, with_for_update=True)
    if account is None or account.status != WifiStatus.PROVISIONING:
        return False
    live = session.scalar(
        select(RadCheck.id)
        .where(RadCheck.username == account.username, RadCheck.attribute == "NT-Password")
        .limit(1)
    )
    if live is None:
        raise ProvisioningNotLive(f"Wi-Fi account {account_id}: no NT-Password row in radcheck yet")
    account.status = WifiStatus.ACTIVE
    account.provisioned_at = utcnow()
    session.execute(
        update(OccupierUser)
        .where(OccupierUser.id == account.user_id, OccupierUser.busy_owner == f"{BUSY_PREFIX}{account.id}")
        .values(busy_owner=None, busy_until=None)
    )
    return True


def pending_provisioning(session: Session) -> list[int]:
    return list(session.scalars(select(WifiAccount.id).where(WifiAccount.status == WifiStatus.PROVISIONING)))


# --- hooks for the user's own lifecycle (called by users.service) ---------------------------------


def on_user_deactivated(session: Session, user: OccupierUser) -> None:
    account = account_of(session, user)
    if account is None or account.status == WifiStatus.DEACTIVATED:
        return
    account.status = WifiStatus.DEACTIVATED
    account.nt_hash = None
    account.suspended_with_user = True
    sync.clear_credential(session, [account.username])
    if user.busy_owner == f"{BUSY_PREFIX}{account.id}":
        user.busy_owner = user.busy_until = None


def on_user_reactivated(session: Session, user: OccupierUser) -> None:
    account = account_of(session, user)
    if account is None or not account.suspended_with_user:
        return
    account.suspended_with_user = False
    _issue_password(session, account, user, "activated")
    _mark_provisioning(session, account, user)


def on_user_deleted(session: Session, user: OccupierUser) -> None:
    account = account_of(session, user)
    if account is None:
        return
    sync.purge(session, [account.username])
    session.delete(account)


def on_email_changed(session: Session, user: OccupierUser) -> None:
    account = account_of(session, user)
    if account is None or account.username == user.email_key:
        return
    _ensure_username_free(session, user.email_key, account.id)
    old = account.username
    account.username = user.email_key
    sync.rename(session, old, account.username)


def on_occupier_sites_changed(session: Session, occupier: Occupier) -> None:
    """Guest groups follow the occupier's sites; a homesite the occupier lost falls back to the primary."""
    accounts = session.scalars(select(WifiAccount).where(WifiAccount.occupier_id == occupier.id)).all()
    site_ids = {s.id for s in occupier.sites}
    fallback = occupier.primary_site_id or (occupier.sites[0].id if occupier.sites else None)
    for account in accounts:
        if account.homesite_id not in site_ids and fallback is not None:
            account.homesite_id = fallback
        if account.status != WifiStatus.DEACTIVATED:
            sync.write_groups(
                session, account.username, homesite=_site(session, account.homesite_id), sites=occupier.sites
            )
