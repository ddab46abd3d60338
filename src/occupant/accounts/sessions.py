"""Signing in to the portal and the mobile app: passwords, single-use links, sessions.

One credential (email + password) opens both apps. A portal browser holds a cookie session; the mobile
app holds a short access token and a refresh token that rotates on every use. Only hashes of tokens
are stored. Failed sign-ins are counted per account key and per address (``kit.throttle``): callers
answer a NotAuthenticated or RateLimited *without re-raising it*, so that the request still commits the
count (as ``staff/pages.py`` does); the same goes for ``refresh`` (a reused refresh token revokes its
session) and for ``request_password_reset`` and ``set_password_with_link``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from occupant.accounts import mail
from occupant.accounts.errors import AppNotAvailable, LinkInvalid, PasswordChangeRequired
from occupant.accounts.models import (
    AccountRole,
    AccountStatus,
    AccountToken,
    App,
    AppAccount,
    AppSession,
    InviteState,
    TokenPurpose,
)
from occupant.audit.service import record
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.kit import signin, throttle
from occupant.kit.clock import utcnow
from occupant.kit.db import on_commit
from occupant.kit.errors import FieldErrors, NotAuthenticated
from occupant.kit.security import (
    hash_password,
    needs_rehash,
    new_token,
    token_hash,
    tokens_equal,
    verify_password,
)
from occupant.kit.settings import get_settings
from occupant.occupiers.models import Occupier
from occupant.users.models import OccupierUser, UserFacts, UserStatus

RESET_LIMIT_PER_EMAIL = 5
RESET_LIMIT_PER_ADDRESS = 20
RESET_WINDOW = timedelta(minutes=15)
LINK_LIMIT_PER_ADDRESS = 30
LINK_WINDOW = timedelta(minutes=15)
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
SEEN_EVERY = timedelta(minutes=5)
GENERIC_FAILURE = "Email or password is incorrect."


@dataclass(frozen=True)
class SignIn:
    """An opened session: ``token`` is the portal cookie or the mobile access token (shown once);
    ``refresh_token`` only for the mobile app. With ``must_change_password`` (portal only) the session
    may do nothing but choose a new password (``change_own_password``) or sign out."""

    account: AppAccount
    user: OccupierUser
    session_row: AppSession
    token: str
    refresh_token: str | None
    must_change_password: bool

    @property
    def expires_in(self) -> int:
        """Seconds until ``token`` expires (the mobile API's ``expires_in``)."""
        return max(0, int((self.session_row.expires_at - utcnow()).total_seconds()))


def actor_for_account(account: AppAccount, user: OccupierUser) -> Actor:
    """The actor of a signed-in occupier user: an occupier admin or an occupier user of their occupier."""
    return Actor(
        kind=ActorKind.OCCUPIER_USER,
        id=user.id,
        operator_id=user.operator_id,
        role=Role.OCCUPIER_ADMIN if account.role == AccountRole.ADMIN else Role.OCCUPIER_USER,
        occupier_id=user.occupier_id,
    )


def email_key(email: str | None) -> str:
    return (email or "").strip().lower()


def check_new_password(password: str | None, email: str, field: str = "password") -> str:
    """The password rules: at least 10 characters, not the email address. Raises FieldErrors
    (``too_short``, ``too_long``, ``password_is_email``)."""
    value = password or ""
    if len(value) < MIN_PASSWORD:
        raise FieldErrors.single(field, "too_short", f"Use at least {MIN_PASSWORD} characters.")
    if len(value) > MAX_PASSWORD:
        raise FieldErrors.single(field, "too_long", f"Use at most {MAX_PASSWORD} characters.")
    if value.strip().lower() == email_key(email):
        raise FieldErrors.single(field, "password_is_email", "The password cannot be your email address.")
    return value


def _set_password(account: AppAccount, password: str) -> None:
    account.password_hash = hash_password(password)
    account.password_changed_at = utcnow()
    account.must_change_password = False


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    user: OccupierUser,
    fields: Sequence[str] = (),
    changes: dict[str, list[object]] | None = None,
) -> None:
    record(
        session,
        actor=actor,
        action=f"app_account.{action}",
        target_type="occupier_user",
        target_id=user.id,
        occupier_id=user.occupier_id,
        fields=fields,
        changes=changes,
    )


def app_state(account: AppAccount, app: App) -> InviteState:
    return InviteState(getattr(account, app.value))


def app_offered_by(occupier: Occupier, app: App) -> bool:
    """The occupier offers this app to its users (else nobody there can be invited to it or sign in)."""
    return occupier.portal_offered if app == App.PORTAL else occupier.mobile_app_offered


def app_offered(user: UserFacts, app: App) -> bool:
    return app_offered_by(user.occupier, app)


def invited_apps(account: AppAccount) -> list[App]:
    return [app for app in App if app_state(account, app) != InviteState.NOT_INVITED]


# --- links (invitation, password reset) -----------------------------------------------------------


def issue_link(session: Session, account: AppAccount, purpose: TokenPurpose) -> str:
    """A new single-use link token for the account; the account's pending links of that purpose die."""
    revoke_links(session, account.id, purpose)
    token = new_token()
    now = utcnow()
    session.add(
        AccountToken(
            account_id=account.id,
            purpose=purpose,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + timedelta(hours=get_settings().invitation_hours),
        )
    )
    return token


def revoke_links(session: Session, account_id: int, purpose: TokenPurpose | None = None) -> None:
    """Pending (unused, unrevoked) links of the account die: of one purpose, or all."""
    stmt = (
        update(AccountToken)
        .where(
            AccountToken.account_id == account_id,
            AccountToken.used_at.is_(None),
            AccountToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    if purpose is not None:
        stmt = stmt.where(AccountToken.purpose == purpose)
    session.execute(stmt)


def _find_link(
    session: Session, token: str | None, purposes: Sequence[TokenPurpose]
) -> tuple[AccountToken, AppAccount, OccupierUser]:
    if not token:
        raise LinkInvalid("unknown")
    row = session.execute(
        select(AccountToken, AppAccount, OccupierUser)
        .join(AppAccount, AppAccount.id == AccountToken.account_id)
        .join(OccupierUser, OccupierUser.id == AppAccount.user_id)
        .where(AccountToken.token_hash == token_hash(token), AccountToken.purpose.in_(purposes))
    ).first()
    if row is None:
        raise LinkInvalid("unknown")
    link, account, user = row
    if link.used_at is not None:
        raise LinkInvalid("used")
    if link.revoked_at is not None:  # replaced by a newer link, or the account was deactivated
        raise LinkInvalid("unknown")
    if link.expires_at <= utcnow():
        raise LinkInvalid("expired")
    if account.status == AccountStatus.DEACTIVATED or user.status == UserStatus.DEACTIVATED:
        raise LinkInvalid("unknown")
    return link, account, user


def check_link(session: Session, token: str | None, purpose: TokenPurpose) -> AccountToken:
    """The link behind ``token`` if it can still be used (the page shows the set-password form).

    Raises LinkInvalid (reason ``expired``, ``used`` or ``unknown``).
    """
    link, _, _ = _find_link(session, token, [purpose])
    return link


def link_holder(session: Session, link: AccountToken) -> tuple[AppAccount, OccupierUser]:
    """Whose link it is (to greet them on the set-password page)."""
    account = session.get(AppAccount, link.account_id)
    assert account is not None
    user = session.get(OccupierUser, account.user_id)
    assert user is not None
    return account, user


def set_password_with_link(
    session: Session, token: str | None, password: str | None, *, address: str | None
) -> tuple[AppAccount, OccupierUser]:
    """Set the password through an invitation or reset link: the link is used up, every other pending
    link of the account dies, the account becomes ACTIVE, a forced reset is satisfied and every open
    session ends. The caller then signs the user in with the new password.

    Raises LinkInvalid, FieldErrors (``too_short``, ``too_long``, ``password_is_email``), RateLimited
    (too many invalid links from one address; invalid links are counted when the request commits).
    """
    keys = [f"link:{address}"] if address else []
    throttle.check(session, keys, limit=LINK_LIMIT_PER_ADDRESS, window=LINK_WINDOW)
    try:
        link, account, user = _find_link(session, token, list(TokenPurpose))
    except LinkInvalid:
        throttle.fail(session, keys, window=LINK_WINDOW)
        raise
    check_new_password(password, user.email)
    now = utcnow()
    used = session.execute(
        update(AccountToken)
        .where(AccountToken.id == link.id, AccountToken.used_at.is_(None), AccountToken.revoked_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]  # another request used it a moment ago
        raise LinkInvalid("used")
    session.refresh(link)
    revoke_links(session, account.id)
    old_status = account.status
    _set_password(account, password or "")
    account.status = AccountStatus.ACTIVE
    revoke_sessions(session, account.id)
    session.flush()
    _audit(
        session,
        actor_for_account(account, user),
        "password_set",
        user,
        ["password"],
        {"status": [old_status, account.status]} if old_status != account.status else None,
    )
    return account, user


def request_password_reset(
    session: Session, *, email: str | None, operator_id: int | None, address: str | None
) -> None:
    """Self-service "Forgot password": a reset link by email to each ACTIVE account with this address
    (of one operator, or of every operator). The caller shows one generic message whatever happens:
    nothing is sent for an unknown address or an account that is not active.

    Every request counts against the address and the email (the caller commits even on RateLimited).
    Raises RateLimited.
    """
    key = email_key(email)
    email_keys = [f"reset:{key}"]
    address_keys = [f"reset-addr:{address}"] if address else []
    throttle.check(session, email_keys, limit=RESET_LIMIT_PER_EMAIL, window=RESET_WINDOW)
    throttle.check(session, address_keys, limit=RESET_LIMIT_PER_ADDRESS, window=RESET_WINDOW)
    throttle.fail(session, email_keys + address_keys, window=RESET_WINDOW)
    if not key:
        return
    stmt = (
        select(AppAccount, OccupierUser)
        .join(OccupierUser, OccupierUser.id == AppAccount.user_id)
        .where(
            OccupierUser.email_key == key,
            AppAccount.status == AccountStatus.ACTIVE,
            OccupierUser.status != UserStatus.DEACTIVATED,
        )
        .order_by(AppAccount.id)
    )
    if operator_id is not None:
        stmt = stmt.where(OccupierUser.operator_id == operator_id)
    for account, user in session.execute(stmt).all():
        send_reset_link(session, account, user, actor=actor_for_account(account, user))


def send_reset_link(session: Session, account: AppAccount, user: OccupierUser, *, actor: Actor) -> None:
    """A new password-reset link by email (the previous one dies); audited as ``password_reset_sent``."""
    token = issue_link(session, account, TokenPurpose.PASSWORD_RESET)
    mail.send(session, mail.password_reset(user, token))
    session.flush()
    _audit(session, actor, "password_reset_sent", user)


# --- sign-in and sessions ---------------------------------------------------------------------------


def _may_sign_in(account: AppAccount, user: OccupierUser) -> bool:
    return (
        account.status in (AccountStatus.ACTIVE, AccountStatus.AWAITING_SIGN_IN)
        and user.status != UserStatus.DEACTIVATED
    )


def sign_in(
    session: Session,
    *,
    email: str | None,
    password: str | None,
    app: App,
    address: str | None,
    user_agent: str | None = None,
) -> SignIn:
    """Check the email and password and open a session for the portal or the mobile app.

    One email may have an account under two operators: the one whose password matches is signed in.
    The first sign-in through an app marks it SIGNED_IN. Unknown email, wrong password, no password yet,
    a deactivated account or user: all the same NotAuthenticated("Email or password is incorrect."),
    counted against the account key and the address. Raises RateLimited (``details.retry_after``
    seconds) after 10 failures for the account, or 100 for the address, in 15 minutes (kit.signin),
    NotAuthenticated, AppNotAvailable (right password, but
    not invited to this app or the app is no longer offered) and, for the mobile app,
    PasswordChangeRequired when an administrator forced a password reset.
    """
    key = email_key(email)
    account_key, address_key = f"app:{key}", (f"addr:{address}" if address else None)
    with_password = (
        select(AppAccount.id, AppAccount.password_hash)
        .join(OccupierUser, OccupierUser.id == AppAccount.user_id)
        .where(OccupierUser.email_key == key, AppAccount.password_hash.is_not(None))
    )
    # The slow password check runs outside this transaction (kit.signin): only what matched is read here.
    matched = signin.matching_hashes(
        session,
        with_password if key else None,
        password or "",
        account_key=account_key,
        address_key=address_key,
    )
    candidates = (
        session.execute(
            select(AppAccount, OccupierUser)
            .join(OccupierUser, OccupierUser.id == AppAccount.user_id)
            .where(AppAccount.id.in_([account_id for account_id, _ in matched]))
            .order_by(AppAccount.id)
        ).all()
        if matched
        else []
    )
    usable = [(a, u) for a, u in candidates if (a.id, a.password_hash) in matched and _may_sign_in(a, u)]
    if not usable:
        signin.record_failure(session, account_key, address_key)
        raise NotAuthenticated(GENERIC_FAILURE)
    account, user = usable[0]
    throttle.clear(session, account_key)
    if app_state(account, app) == InviteState.NOT_INVITED or not app_offered(user, app):
        raise AppNotAvailable()
    if account.must_change_password and app == App.MOBILE_APP:
        raise PasswordChangeRequired()
    if account.password_hash and needs_rehash(account.password_hash):
        account.password_hash = hash_password(password or "")
    row, token, refresh_token = _open_session(session, account, app)
    now = utcnow()
    changes: dict[str, list[object]] = {}
    if app_state(account, app) != InviteState.SIGNED_IN:
        changes[app.value] = [app_state(account, app), InviteState.SIGNED_IN]
        setattr(account, app.value, InviteState.SIGNED_IN)
    if account.status != AccountStatus.ACTIVE:
        changes["status"] = [account.status, AccountStatus.ACTIVE]
        account.status = AccountStatus.ACTIVE
    account.first_sign_in_at = account.first_sign_in_at or now
    account.last_sign_in_at = now
    session.flush()
    _audit(session, actor_for_account(account, user), "signed_in", user, [app.value], changes or None)
    return SignIn(account, user, row, token, refresh_token, account.must_change_password)


def _open_session(session: Session, account: AppAccount, app: App) -> tuple[AppSession, str, str | None]:
    settings = get_settings()
    now = utcnow()
    token = new_token()
    row = AppSession(
        account_id=account.id, app=app, token_hash=token_hash(token), created_at=now, last_seen_at=now
    )
    refresh_token = None
    if app == App.PORTAL:
        row.csrf_token = new_token(nbytes=24)
        row.expires_at = now + timedelta(hours=settings.session_hours)
    else:
        row.expires_at = now + timedelta(minutes=settings.mobile_access_minutes)
        row.refresh_family = secrets.token_urlsafe(12)
        refresh_token = _rotate_refresh(row, now)
    session.add(row)
    return row, token, refresh_token


def _rotate_refresh(row: AppSession, now: datetime) -> str:
    refresh_token = f"{row.refresh_family}.{new_token()}"
    row.refresh_hash = token_hash(refresh_token)
    row.refresh_expires_at = now + timedelta(days=get_settings().mobile_refresh_days)
    return refresh_token


def refresh(session: Session, refresh_token: str | None) -> SignIn:
    """Mobile app: a new access token and a new refresh token for a valid refresh token (which dies).

    A refresh token presented again after it was rotated means that two parties hold it: the session is
    revoked (the caller must commit the request even though this raises). Raises NotAuthenticated
    (unknown, expired, reused, the account or user no longer active, the app no longer offered) and
    PasswordChangeRequired.
    """
    family, _, _ = (refresh_token or "").partition(".")
    row = None
    if family:
        row = session.scalars(
            select(AppSession).where(AppSession.refresh_family == family, AppSession.app == App.MOBILE_APP)
        ).first()
    now = utcnow()
    if row is None or row.revoked_at is not None or row.refresh_hash is None:
        raise NotAuthenticated("Sign in again.")
    if not tokens_equal(row.refresh_hash, token_hash(refresh_token or "")):
        row.revoked_at = now
        session.flush()
        raise NotAuthenticated("This refresh token was already used; sign in again.")
    if row.refresh_expires_at is None or row.refresh_expires_at <= now:
        raise NotAuthenticated("Sign in again.")
    account = session.get(AppAccount, row.account_id)
    user = session.get(OccupierUser, account.user_id) if account else None
    if (
        account is None
        or user is None
        or account.status != AccountStatus.ACTIVE
        or not _may_sign_in(account, user)
        or not app_offered(user, App.MOBILE_APP)
    ):
        raise NotAuthenticated("Sign in again.")
    if account.must_change_password:
        raise PasswordChangeRequired()
    token = new_token()
    row.token_hash = token_hash(token)
    row.expires_at = now + timedelta(minutes=get_settings().mobile_access_minutes)
    row.last_seen_at = now
    new_refresh = _rotate_refresh(row, now)
    session.flush()
    return SignIn(account, user, row, token, new_refresh, False)


def resolve_session(
    session: Session, token: str | None, app: App
) -> tuple[AppAccount, OccupierUser, AppSession] | None:
    """Who holds this portal cookie or mobile access token, or None (unknown, expired, revoked, the
    account or user no longer active, the app no longer offered by the occupier; a mobile session while a
    new password is required).

    A portal session of an account with ``must_change_password`` is returned: the portal lets it only
    choose a new password or sign out.
    """
    if not token:
        return None
    found = session.execute(
        select(AppSession, AppAccount, OccupierUser)
        .join(AppAccount, AppAccount.id == AppSession.account_id)
        .join(OccupierUser, OccupierUser.id == AppAccount.user_id)
        .where(AppSession.token_hash == token_hash(token), AppSession.app == app)
    ).first()
    if found is None:
        return None
    row, account, user = found
    now = utcnow()
    if row.revoked_at is not None or row.expires_at <= now:
        return None
    if account.status != AccountStatus.ACTIVE or user.status == UserStatus.DEACTIVATED:
        return None
    if not app_offered(user, app):  # the occupier stopped offering the app: its sessions end with it
        return None
    if app == App.MOBILE_APP and account.must_change_password:
        return None
    if now - row.last_seen_at > SEEN_EVERY:
        # Written after the request in its own short transaction: read-only requests stay read-only.
        row_id = row.id
        on_commit(session, lambda: _touch(row_id, now), key=("app_session.touch", row_id))
    return account, user, row


def _touch(row_id: int, when: datetime) -> None:
    from occupant.kit.db import transaction
    from occupant.kit.runtime import get_session_factory

    with transaction(get_session_factory()) as session:
        session.execute(update(AppSession).where(AppSession.id == row_id).values(last_seen_at=when))


def sign_out(session: Session, row: AppSession) -> None:
    """End this session (the cookie or tokens are worthless from now on). A no-op when already ended."""
    if row.revoked_at is not None:
        return
    row.revoked_at = utcnow()
    account = session.get(AppAccount, row.account_id)
    user = session.get(OccupierUser, account.user_id) if account else None
    session.flush()
    if account is not None and user is not None:
        _audit(session, actor_for_account(account, user), "signed_out", user, [App(row.app).value])


def revoke_sessions(session: Session, account_id: int, *, except_id: int | None = None) -> None:
    """End the account's open sessions at once (all, or all but ``except_id``)."""
    stmt = (
        update(AppSession)
        .where(AppSession.account_id == account_id, AppSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if except_id is not None:
        stmt = stmt.where(AppSession.id != except_id)
    session.execute(stmt)


def change_own_password(
    session: Session,
    account: AppAccount,
    *,
    current: str | None,
    new: str | None,
    keep_session_id: int | None,
) -> AppAccount:
    """A signed-in user chooses a new password; their other sessions end, this one is kept.

    ``current`` is required, except in the forced "choose a new password" step (``must_change_password``:
    the user has just signed in with it). The new password must differ from the current one. Raises
    FieldErrors (``current_password``: ``required``/``incorrect``; ``new_password``: ``too_short``,
    ``too_long``, ``password_is_email``, ``password_unchanged``) and RateLimited (wrong current
    passwords count like failed sign-ins).
    """
    user = session.get(OccupierUser, account.user_id)
    assert user is not None
    keys = [f"app:{user.email_key}"]
    throttle.check(session, keys, limit=signin.ACCOUNT_LIMIT, window=signin.WINDOW)
    if current is None and not account.must_change_password:
        raise FieldErrors.single("current_password", "required", "Enter your current password.")
    if current is not None and not verify_password(account.password_hash, current):
        throttle.fail(session, keys, window=signin.WINDOW)
        raise FieldErrors.single("current_password", "incorrect", "The current password is incorrect.")
    value = check_new_password(new, user.email, "new_password")
    if verify_password(account.password_hash, value):
        raise FieldErrors.single(
            "new_password", "password_unchanged", "Choose a password different from the current one."
        )
    _set_password(account, value)
    revoke_sessions(session, account.id, except_id=keep_session_id)
    session.flush()
    _audit(session, actor_for_account(account, user), "password_set", user, ["password"])
    return account
