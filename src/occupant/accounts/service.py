"""App-account actions: invite to the portal and the mobile app, resend, change role, deactivate,
activate, password resets, welcome email; and the hooks that follow the user's own lifecycle.

Every action checks permission, refuses busy users and decommissioning occupiers, changes the account
in the caller's transaction, writes an ``app_account.<verb>`` audit event (never a password or a link)
and queues its email, whose link travels sealed as a secret. Callers resolve the user through
``authz.scope.get_user`` (another tenant's user is not found). Signing in, sessions and links live in
:mod:`occupant.accounts.sessions`; their functions are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import NamedTuple, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from occupant.accounts import mail
from occupant.accounts.errors import (
    AppNotAvailable,
    AppNotOffered,
    CannotDeleteAdmin,
    LinkInvalid,
    PasswordChangeRequired,
)
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
from occupant.accounts.sessions import (
    SignIn,
    _audit,
    actor_for_account,
    app_offered,
    app_offered_by,
    app_state,
    change_own_password,
    check_link,
    check_new_password,
    invited_apps,
    issue_link,
    link_holder,
    refresh,
    request_password_reset,
    resolve_session,
    revoke_links,
    revoke_sessions,
    send_reset_link,
    set_password_with_link,
    sign_in,
    sign_out,
)
from occupant.audit.service import Target, record_many
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.authz.scope import Perm, require, visible_user_ids
from occupant.kit.bulkwrite import insert_rows, reserve_ids
from occupant.kit.clock import utcnow
from occupant.kit.db import flush_in_savepoint
from occupant.kit.errors import FieldErrors, InvalidState, NotFound, OccupantError, PreconditionFailed
from occupant.kit.security import new_token, token_hash
from occupant.kit.settings import get_settings
from occupant.notify.service import Mail, queue_mails
from occupant.users.models import OccupierUser, UserFacts, UserStatus
from occupant.users.service import ensure_changeable

__all__ = [
    "AccountResult",
    "AppNotAvailable",
    "AppNotOffered",
    "CannotDeleteAdmin",
    "LinkInvalid",
    "PasswordChangeRequired",
    "SignIn",
    "account_of",
    "activate_account",
    "actor_for_account",
    "app_offered_by",
    "change_own_password",
    "change_role",
    "check_link",
    "check_new_password",
    "deactivate_account",
    "force_password_reset",
    "invite",
    "invite_many",
    "link_holder",
    "on_email_changed",
    "on_user_deactivated",
    "on_user_deleted",
    "on_user_reactivated",
    "refresh",
    "request_password_reset",
    "resend_invitation",
    "resolve_session",
    "revoke_sessions",
    "send_password_reset",
    "send_welcome",
    "set_password_with_link",
    "set_up_account",
    "sign_in",
    "sign_out",
]

# Accounts per lookup statement in the many-user variants: well under both databases' parameter limits.
LOOKUP_CHUNK = 5_000
_APPS = tuple(App)


def account_of(session: Session, user: OccupierUser, *, for_update: bool = False) -> AppAccount | None:
    """The user's app account, or None (NOT_INVITED, no role)."""
    stmt = select(AppAccount).where(AppAccount.user_id == user.id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def invite_field(app: App) -> str:
    """The input field that asks for an invitation to ``app`` (FieldErrors name it)."""
    return f"invite_{app.value}"


def role_terms(value: AccountRole | str) -> AccountRole:
    """The role asked for, or FieldErrors ``invalid_role`` (shared with the bulk create)."""
    return _role(value)


def _role(value: AccountRole | str) -> AccountRole:
    try:
        return AccountRole(value)
    except ValueError:
        raise FieldErrors.single("role", "invalid_role", "The role must be admin or user.") from None


def _is_self(actor: Actor, user: OccupierUser) -> bool:
    return actor.kind is ActorKind.OCCUPIER_USER and actor.id == user.id


def _check(actor: Actor, user: OccupierUser) -> None:
    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)


def _require_account(session: Session, user: OccupierUser) -> AppAccount:
    account = account_of(session, user, for_update=True)
    if account is None:
        raise InvalidState("This user has not been invited to the apps.")
    return account


# --- invitations ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _InvitePlan:
    new_apps: list[App]  # NOT_INVITED -> INVITED
    first: bool  # a set-password link by ``app_invitation``; else an ``app_second_invitation`` per app


def invite_terms(
    user: UserFacts, account: AppAccount | None, apps: Sequence[App], *, has_pending_link: bool
) -> _InvitePlan:
    """The invitation rules, on facts already read (shared by the single and the many-user path).

    Apps already invited are left as they are. The first invitation — no password yet and no link
    pending — carries a set-password link; any later one only a notice. Raises AppNotOffered (every app
    asked for that the occupier does not offer), InvalidState (a deactivated user or account).
    """
    new_apps = [
        app
        for app in _APPS
        if app in apps and (account is None or app_state(account, app) == InviteState.NOT_INVITED)
    ]
    not_offered = [invite_field(app) for app in new_apps if not app_offered(user, app)]
    if not_offered:
        raise AppNotOffered(not_offered)
    if new_apps and user.status == UserStatus.DEACTIVATED:
        raise InvalidState("The user is deactivated; reactivate the user first.")
    if new_apps and account is not None and account.status == AccountStatus.DEACTIVATED:
        raise InvalidState("The app account is deactivated; activate it first.")
    first = bool(new_apps) and (account is None or (account.password_hash is None and not has_pending_link))
    return _InvitePlan(new_apps, first)


def _accounts_with_pending_invitation(session: Session, account_ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    now = utcnow()
    for start in range(0, len(account_ids), LOOKUP_CHUNK):
        found.update(
            session.scalars(
                select(AccountToken.account_id)
                .where(
                    AccountToken.account_id.in_(account_ids[start : start + LOOKUP_CHUNK]),
                    AccountToken.purpose == TokenPurpose.INVITATION,
                    AccountToken.used_at.is_(None),
                    AccountToken.revoked_at.is_(None),
                    AccountToken.expires_at > now,
                )
                .distinct()
            )
        )
    return found


def _has_pending_invitation(session: Session, account: AppAccount | None) -> bool:
    if account is None or account.password_hash is not None:
        return False
    return bool(_accounts_with_pending_invitation(session, [account.id]))


def _new_account(session: Session, user: OccupierUser, role: AccountRole) -> AppAccount:
    account = AppAccount(
        operator_id=user.operator_id,
        occupier_id=user.occupier_id,
        user_id=user.id,
        role=role,
        status=AccountStatus.NOT_INVITED,
        portal=InviteState.NOT_INVITED,
        mobile_app=InviteState.NOT_INVITED,
        must_change_password=False,
        suspended_with_user=False,
    )
    try:
        flush_in_savepoint(session, account)
    except IntegrityError as exc:  # another request created it a moment ago
        raise PreconditionFailed() from exc
    return account


def _apply_invitation(
    session: Session,
    user: OccupierUser,
    account: AppAccount,
    plan: _InvitePlan,
    *,
    actor: Actor,
    created: bool,
) -> None:
    changes: dict[str, list[object]] = {}
    if created:
        changes["role"] = [None, account.role]
    for app in plan.new_apps:
        changes[app.value] = [InviteState.NOT_INVITED, InviteState.INVITED]
        setattr(account, app.value, InviteState.INVITED)
    if plan.first:
        if account.status != AccountStatus.AWAITING_SIGN_IN:
            changes["status"] = [account.status, AccountStatus.AWAITING_SIGN_IN]
        account.status = AccountStatus.AWAITING_SIGN_IN
        account.invited_at = utcnow()
        token = issue_link(session, account, TokenPurpose.INVITATION)
        mail.send(session, mail.invitation(user, invited_apps(account), token, resent=False))
    else:
        for app in plan.new_apps:
            mail.send(
                session, mail.second_invitation(user, app, password_set=account.password_hash is not None)
            )
    session.flush()
    _audit(session, actor, "invited", user, [app.value for app in plan.new_apps], changes)


def _ensure_may_change_role(actor: Actor, user: OccupierUser) -> None:
    if _is_self(actor, user):
        raise InvalidState("You cannot change your own role; ask another admin.")


def _set_role(
    session: Session, user: OccupierUser, account: AppAccount, role: AccountRole, *, actor: Actor
) -> None:
    old = account.role
    account.role = role
    session.flush()
    _audit(session, actor, "role_changed", user, ["role"], {"role": [old, role]})


def set_up_account(
    session: Session,
    user: OccupierUser,
    *,
    role: AccountRole | str,
    invite_portal: bool = False,
    invite_mobile_app: bool = False,
    actor: Actor,
) -> AppAccount:
    """Set the user's app role and invite them to the newly ticked apps (apps already invited are left
    as they are). Creates the account on first use. The first invitation emails a set-password link
    (``app_invitation``); an invitation to the other app only a notice (``app_second_invitation``).

    Raises PermissionDenied, ActionInProgress, OccupierDecommissioned, AppNotOffered, FieldErrors
    (``invalid_role``), InvalidState (a deactivated user or account; an occupier admin changing their own
    role), PreconditionFailed (another request created the account a moment ago).
    """
    _check(actor, user)
    role = _role(role)
    apps = [
        app for app, ticked in ((App.PORTAL, invite_portal), (App.MOBILE_APP, invite_mobile_app)) if ticked
    ]
    account = account_of(session, user, for_update=True)
    plan = invite_terms(user, account, apps, has_pending_link=_has_pending_invitation(session, account))
    if account is not None and account.role != role:
        _ensure_may_change_role(actor, user)
    created = account is None
    if account is None:
        account = _new_account(session, user, role)
    elif account.role != role:
        _set_role(session, user, account, role, actor=actor)
    if plan.new_apps:
        _apply_invitation(session, user, account, plan, actor=actor, created=created)
    elif created:
        _audit(session, actor, "role_changed", user, ["role"], {"role": [None, role]})
    return account


def invite(session: Session, user: OccupierUser, app: App, *, actor: Actor) -> AppAccount:
    """Invite the user to one app (the account is created with role ``user`` when there is none). A
    no-op when already invited to it. Mails and raises as :func:`set_up_account`."""
    _check(actor, user)
    account = account_of(session, user, for_update=True)
    plan = invite_terms(user, account, [App(app)], has_pending_link=_has_pending_invitation(session, account))
    created = account is None
    if account is None:
        account = _new_account(session, user, AccountRole.USER)
    if plan.new_apps:
        _apply_invitation(session, user, account, plan, actor=actor, created=created)
    return account


def resend_invitation(session: Session, user: OccupierUser, *, actor: Actor) -> AppAccount:
    """Email the invitation again with a new link (``app_invitation``, ``resent``); the old link dies.

    Raises InvalidState unless the account is AWAITING_SIGN_IN, and what :func:`set_up_account` raises.
    """
    _check(actor, user)
    account = _require_account(session, user)
    resend_terms(account)
    _resend(session, user, account, actor=actor)
    return account


def resend_terms(account: AppAccount) -> None:
    """The resend rule, on the account already read (shared with the many-user path): only while awaiting
    the first sign-in. Raises InvalidState."""
    if account.status != AccountStatus.AWAITING_SIGN_IN:
        raise InvalidState("Only an account awaiting its first sign-in can be sent its invitation again.")


def _resend(session: Session, user: OccupierUser, account: AppAccount, *, actor: Actor) -> None:
    token = issue_link(session, account, TokenPurpose.INVITATION)
    account.invited_at = utcnow()
    mail.send(session, mail.invitation(user, invited_apps(account), token, resent=True))
    session.flush()
    _audit(session, actor, "invitation_resent", user)


@dataclass(frozen=True, slots=True)
class AccountResult:
    """For one user of a many-user action (:func:`invite_many`, ``accounts.bulk``), in order: the account's
    id, or the error the single-user action would raise. ``account`` reads the account when asked for (a
    bulk job needs only the id): the many-user actions write no ORM objects."""

    user: OccupierUser
    account_id: int | None = None
    error: OccupantError | None = None
    session: Session | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def account(self) -> AppAccount | None:
        if self.account_id is None or self.session is None:
            return None
        return self.session.get(AppAccount, self.account_id)


@dataclass(frozen=True, slots=True)
class _Accepted:
    position: int
    user: OccupierUser
    account: AppAccount | None
    first: bool


def invite_many(
    session: Session, users: Sequence[OccupierUser], app: App, *, actor: Actor
) -> list[AccountResult]:
    """Invite each user to ``app`` as :func:`invite` does, set-based: a fixed number of statements for
    the whole batch (accounts, links, mails and audit events each written with one bulk write).

    Returns one result per user, in order. A user that breaks a rule fails alone with the error
    ``invite`` would raise — ActionInProgress, OccupierDecommissioned, AppNotOffered, InvalidState, or
    NotFound for a user outside the actor's scope (operator, sites, occupier) — and is left untouched; a
    user already invited (or listed twice) is an ok no-op. Raises PermissionDenied (nothing written).
    """
    require(actor, Perm.MANAGE_USERS)
    app = App(app)
    if not users:
        return []
    accounts = _accounts_by_user(session, sorted({u.id for u in users}))
    pending = _accounts_with_pending_invitation(
        session, sorted(a.id for a in accounts.values() if a.password_hash is None)
    )
    results: list[AccountResult | None] = []
    accepted: list[_Accepted] = []
    seen: set[int] = set()
    visible = visible_user_ids(session, actor, [u.id for u in users], chunk=LOOKUP_CHUNK)
    for position, user in enumerate(users):
        account = accounts.get(user.id)
        try:
            if user.id not in visible:
                raise NotFound()
            ensure_changeable(user)
            if user.id in seen:
                plan = _InvitePlan([], False)
            else:
                plan = invite_terms(
                    user, account, [app], has_pending_link=account is not None and account.id in pending
                )
        except OccupantError as exc:
            results.append(AccountResult(user, error=exc))
            continue
        seen.add(user.id)
        if not plan.new_apps:
            results.append(AccountResult(user, account.id if account else None, session=session))
            continue
        results.append(None)
        accepted.append(_Accepted(position, user, account, plan.first))
    if accepted:
        done = _invite_accepted(session, accepted, app, actor=actor)
        for item in accepted:
            results[item.position] = AccountResult(item.user, done[item.user.id], session=session)
    final = [r for r in results if r is not None]
    by_user = {r.user.id: r.account_id for r in final if r.account_id is not None}
    return [AccountResult(r.user, by_user.get(r.user.id), r.error, session) if r.ok else r for r in final]


def _accounts_by_user(session: Session, user_ids: Sequence[int]) -> dict[int, AppAccount]:
    found: dict[int, AppAccount] = {}
    for start in range(0, len(user_ids), LOOKUP_CHUNK):
        stmt = select(AppAccount).where(AppAccount.user_id.in_(user_ids[start : start + LOOKUP_CHUNK]))
        found.update((account.user_id, account) for account in session.scalars(stmt))
    return found


_ACCOUNTS = cast(Table, AppAccount.__table__)
_TOKENS = cast(Table, AccountToken.__table__)


class NewAppAccount(NamedTuple):
    """One account for :func:`create_accounts`: a user who has none, the role, and the apps to invite them
    to (``invite_terms``' new apps; none: the account holds the role alone, NOT_INVITED)."""

    user: UserFacts
    role: AccountRole
    apps: Sequence[App]


_ACCOUNT_COLUMNS = (
    "id",
    "operator_id",
    "occupier_id",
    "user_id",
    "role",
    "status",
    "portal",
    "mobile_app",
    "password_hash",
    "password_changed_at",
    "must_change_password",
    "invited_at",
    "first_sign_in_at",
    "last_sign_in_at",
    "suspended_with_user",
    "version_id",
    "created_at",
    "updated_at",
)
_TOKEN_COLUMNS = ("account_id", "purpose", "token_hash", "created_at", "expires_at", "used_at", "revoked_at")


def _created_event(role: AccountRole, apps: Sequence[App]) -> tuple[list[str], dict[str, object]]:
    """The audit event of a new account, as :func:`set_up_account` records it: ``app_account.invited``'s
    fields and changes with apps, ``app_account.role_changed``'s without."""
    if not apps:
        return ["role"], {"role": [None, role]}
    changes: dict[str, object] = {"role": [None, role]}
    changes.update((app.value, [InviteState.NOT_INVITED, InviteState.INVITED]) for app in apps)
    changes["status"] = [AccountStatus.NOT_INVITED, AccountStatus.AWAITING_SIGN_IN]
    return [app.value for app in apps], changes


def create_accounts(session: Session, items: Sequence[NewAppAccount], *, actor: Actor) -> list[int]:
    """Create the accounts as :func:`set_up_account` creates a user's first one, one bulk write per table
    (accounts, links, mails, audit events; COPY on PostgreSQL), ids reserved ahead so that nothing is read
    back. Returns the new accounts' ids, in order.

    With apps: AWAITING_SIGN_IN, invited to them, one set-password link by ``app_invitation`` naming them,
    ``app_account.invited``. Without: NOT_INVITED with the role, ``app_account.role_changed``. The rules
    (``role_terms``, ``invite_terms``, scope, changeable users) are the caller's.
    """
    if not items:
        return []
    now = utcnow()
    ids = reserve_ids(session, _ACCOUNTS, len(items))
    not_invited, invited = InviteState.NOT_INVITED.value, InviteState.INVITED.value
    rows = []
    for account_id, item in zip(ids, items, strict=True):
        asked = bool(item.apps)
        rows.append(
            (
                account_id,
                item.user.operator_id,
                item.user.occupier_id,
                item.user.id,
                AccountRole(item.role).value,
                (AccountStatus.AWAITING_SIGN_IN if asked else AccountStatus.NOT_INVITED).value,
                invited if App.PORTAL in item.apps else not_invited,
                invited if App.MOBILE_APP in item.apps else not_invited,
                None,
                None,
                False,
                now if asked else None,
                None,
                None,
                False,
                # what the single action leaves: the account written, then its invitation (a second version)
                2 if asked else 1,
                now,
                now,
            )
        )
    insert_rows(session, _ACCOUNTS, _ACCOUNT_COLUMNS, rows)
    firsts = [(account_id, item) for account_id, item in zip(ids, items, strict=True) if item.apps]
    tokens = [new_token() for _ in firsts]
    if firsts:
        expires = now + timedelta(hours=get_settings().invitation_hours)
        purpose = TokenPurpose.INVITATION.value
        insert_rows(
            session,
            _TOKENS,
            _TOKEN_COLUMNS,
            (
                (account_id, purpose, token_hash(token), now, expires, None, None)
                for (account_id, _), token in zip(firsts, tokens, strict=True)
            ),
        )
    queue_mails(
        session,
        [
            mail.invitation(item.user, item.apps, token, resent=False)
            for (_, item), token in zip(firsts, tokens, strict=True)
        ],
    )
    invitations: list[Target] = []
    roles: list[Target] = []
    events: dict[tuple[str, tuple[App, ...]], tuple[list[str], dict[str, object]]] = {}
    for item in items:
        key = (AccountRole(item.role).value, tuple(app for app in _APPS if app in item.apps))
        if key not in events:  # a few roles and sets of apps: one event body each
            events[key] = _created_event(AccountRole(key[0]), key[1])
        fields, changes = events[key]
        target = Target(item.user.id, item.user.occupier_id, fields, changes)
        (invitations if key[1] else roles).append(target)
    record_many(
        session, actor=actor, action="app_account.invited", target_type="occupier_user", targets=invitations
    )
    record_many(
        session, actor=actor, action="app_account.role_changed", target_type="occupier_user", targets=roles
    )
    return ids


def _invite_accepted(
    session: Session, accepted: Sequence[_Accepted], app: App, *, actor: Actor
) -> dict[int, int]:
    """Invite the accepted users to ``app``; returns each user's account id."""
    now = utcnow()
    column = getattr(AppAccount, app.value)
    new = [item for item in accepted if item.account is None]
    existing = [item for item in accepted if item.account is not None]
    created = create_accounts(
        session, [NewAppAccount(item.user, AccountRole.USER, [app]) for item in new], actor=actor
    )
    done = {item.user.id: account_id for item, account_id in zip(new, created, strict=True)}
    if not existing:
        return done
    old_state = {item.user.id: item.account.status for item in existing if item.account is not None}
    existing_ids = [item.account.id for item in existing if item.account is not None]
    first_ids = [item.account.id for item in existing if item.account is not None and item.first]
    for start in range(0, len(existing_ids), LOOKUP_CHUNK):
        chunk = existing_ids[start : start + LOOKUP_CHUNK]
        session.execute(
            update(AppAccount)
            .where(AppAccount.id.in_(chunk))
            .values({column: InviteState.INVITED, "version_id": AppAccount.version_id + 1, "updated_at": now})
            .execution_options(synchronize_session="fetch")
        )
    for start in range(0, len(first_ids), LOOKUP_CHUNK):
        chunk = first_ids[start : start + LOOKUP_CHUNK]
        session.execute(
            update(AppAccount)
            .where(AppAccount.id.in_(chunk))
            .values(status=AccountStatus.AWAITING_SIGN_IN, invited_at=now)
            .execution_options(synchronize_session="fetch")
        )
        session.execute(
            update(AccountToken)
            .where(
                AccountToken.account_id.in_(chunk),
                AccountToken.purpose == TokenPurpose.INVITATION,
                AccountToken.used_at.is_(None),
                AccountToken.revoked_at.is_(None),
            )
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
    firsts = [item for item in existing if item.first and item.account is not None]
    tokens = {item.user.id: new_token() for item in firsts}
    if firsts:
        expires = now + timedelta(hours=get_settings().invitation_hours)
        purpose = TokenPurpose.INVITATION.value
        insert_rows(
            session,
            _TOKENS,
            _TOKEN_COLUMNS,
            [
                (item.account.id, purpose, token_hash(tokens[item.user.id]), now, expires, None, None)
                for item in firsts
                if item.account is not None
            ],
        )
    mails: list[Mail] = []
    targets: list[Target] = []
    for item in existing:
        account = item.account
        assert account is not None
        done[item.user.id] = account.id
        if item.first:
            mails.append(
                mail.invitation(item.user, invited_apps(account), tokens[item.user.id], resent=False)
            )
        else:
            mails.append(
                mail.second_invitation(item.user, app, password_set=account.password_hash is not None)
            )
        changes: dict[str, object] = {app.value: [InviteState.NOT_INVITED, InviteState.INVITED]}
        if item.first and old_state[item.user.id] != AccountStatus.AWAITING_SIGN_IN:
            changes["status"] = [old_state[item.user.id], AccountStatus.AWAITING_SIGN_IN]
        targets.append(Target(item.user.id, item.user.occupier_id, [app.value], changes))
    queue_mails(session, mails)
    record_many(
        session, actor=actor, action="app_account.invited", target_type="occupier_user", targets=targets
    )
    return done


# --- role, deactivation, passwords, welcome -----------------------------------------------------------


def change_role(session: Session, user: OccupierUser, role: AccountRole | str, *, actor: Actor) -> AppAccount:
    """Make the user an admin (manages the occupier's users) or a user (own details). Creates the
    account (NOT_INVITED) when there is none. Raises InvalidState (an occupier admin's own role),
    PermissionDenied, ActionInProgress, OccupierDecommissioned."""
    _check(actor, user)
    role = _role(role)
    account = account_of(session, user, for_update=True)
    if account is None:
        account = _new_account(session, user, role)
        _audit(session, actor, "role_changed", user, ["role"], {"role": [None, role]})
        return account
    if account.role == role:
        return account
    _ensure_may_change_role(actor, user)
    _set_role(session, user, account, role, actor=actor)
    return account


def deactivate_account(session: Session, user: OccupierUser, *, actor: Actor) -> AppAccount:
    """Refuse the user's sign-in to both apps: open sessions and pending links end at once.

    A no-op when already deactivated (an account suspended with its user now stays off when the user
    returns). Raises InvalidState (never invited; an occupier admin's own account), PermissionDenied,
    ActionInProgress, OccupierDecommissioned.
    """
    _check(actor, user)
    account = _require_account(session, user)
    if _is_self(actor, user):
        raise InvalidState("You cannot deactivate your own account; ask another admin.")
    if account.status == AccountStatus.DEACTIVATED:
        if account.suspended_with_user:
            account.suspended_with_user = False
            session.flush()
            _audit(session, actor, "deactivated", user, ["status"])
        return account
    if account.status == AccountStatus.NOT_INVITED:
        raise InvalidState("This user has not been invited to the apps.")
    old = account.status
    account.status = AccountStatus.DEACTIVATED
    revoke_sessions(session, account.id)
    revoke_links(session, account.id)
    session.flush()
    _audit(session, actor, "deactivated", user, ["status"], {"status": [old, account.status]})
    return account


def _restored_status(account: AppAccount) -> AccountStatus:
    return AccountStatus.ACTIVE if account.password_hash is not None else AccountStatus.AWAITING_SIGN_IN


def activate_account(session: Session, user: OccupierUser, *, actor: Actor) -> AppAccount:
    """Allow sign-in again: ACTIVE when a password is set, else AWAITING_SIGN_IN (no email is sent; a
    resend gives a new link). A no-op when not deactivated. Raises InvalidState (no account; a
    deactivated user), PermissionDenied, ActionInProgress, OccupierDecommissioned."""
    _check(actor, user)
    account = _require_account(session, user)
    if account.status != AccountStatus.DEACTIVATED:
        return account
    if user.status == UserStatus.DEACTIVATED:
        raise InvalidState("The user is deactivated; reactivate the user first.")
    account.status = _restored_status(account)
    account.suspended_with_user = False
    session.flush()
    _audit(
        session, actor, "activated", user, ["status"], {"status": [AccountStatus.DEACTIVATED, account.status]}
    )
    return account


def send_password_reset(session: Session, user: OccupierUser, *, actor: Actor) -> AppAccount:
    """Email the user a link to choose a new password. An ACTIVE account gets a password-reset link
    (``password_reset``; the previous reset link dies, the current password keeps working until a new one
    is set). An account invited whose link was not used yet (AWAITING_SIGN_IN) gets its invitation again,
    as :func:`resend_invitation` sends it (a new link; the old one dies). Raises InvalidState (not invited,
    or deactivated), PermissionDenied, ActionInProgress, OccupierDecommissioned."""
    _check(actor, user)
    account = _require_account(session, user)
    if account.status == AccountStatus.AWAITING_SIGN_IN:
        _resend(session, user, account, actor=actor)
        return account
    if account.status != AccountStatus.ACTIVE:
        raise InvalidState("Only an active or invited account can be sent a password reset.")
    send_reset_link(session, account, user, actor=actor)
    return account


def force_password_reset(session: Session, user: OccupierUser, *, actor: Actor) -> AppAccount:
    """Every session ends now, and the next sign-in leads only to choosing a new password (the mobile
    app answers ``password_change_required``). No email. Raises InvalidState unless ACTIVE,
    PermissionDenied, ActionInProgress, OccupierDecommissioned."""
    _check(actor, user)
    account = _require_account(session, user)
    force_reset_terms(account)
    changes: dict[str, list[object]] | None = (
        {"must_change_password": [False, True]} if not account.must_change_password else None
    )
    account.must_change_password = True
    revoke_sessions(session, account.id)
    session.flush()
    _audit(session, actor, "password_reset_forced", user, ["must_change_password"], changes)
    return account


def force_reset_terms(account: AppAccount) -> None:
    """The forced-reset rule (shared with the many-user path): only an ACTIVE account has a password to
    reset. Raises InvalidState."""
    if account.status != AccountStatus.ACTIVE:
        raise InvalidState("Only an active account has a password to reset.")


def send_welcome(session: Session, user: OccupierUser, *, actor: Actor) -> AppAccount:
    """Email the welcome message (``welcome``, with the portal's address). Raises InvalidState unless
    ACTIVE or AWAITING_SIGN_IN, PermissionDenied, ActionInProgress, OccupierDecommissioned."""
    _check(actor, user)
    account = _require_account(session, user)
    welcome_terms(account)
    mail.send(session, mail.welcome(user, invited_apps(account)))
    session.flush()
    _audit(session, actor, "welcome_sent", user)
    return account


def welcome_terms(account: AppAccount) -> None:
    """The welcome rule (shared with the many-user path): an invited account that is not deactivated.
    Raises InvalidState."""
    if account.status not in (AccountStatus.ACTIVE, AccountStatus.AWAITING_SIGN_IN):
        raise InvalidState("Only an invited, not deactivated account can be sent the welcome email.")


# --- hooks for the user's own lifecycle (called by users.service) ---------------------------------


def ensure_may_delete(session: Session, user: OccupierUser, *, actor: Actor) -> None:
    """Occupier admins cannot delete a user whose app role is admin (operator staff can; or demote first).

    Raises CannotDeleteAdmin.
    """
    if actor.role is not Role.OCCUPIER_ADMIN:
        return
    account = account_of(session, user)
    if account is not None and account.role == AccountRole.ADMIN:
        raise CannotDeleteAdmin()


def on_user_deactivated(session: Session, user: OccupierUser) -> None:
    """The user is suspended: so is the account (it comes back with the user); sessions and links end."""
    account = account_of(session, user)
    if account is None:
        return
    if account.status in (AccountStatus.ACTIVE, AccountStatus.AWAITING_SIGN_IN):
        account.status = AccountStatus.DEACTIVATED
        account.suspended_with_user = True
    revoke_sessions(session, account.id)
    revoke_links(session, account.id)


def on_user_reactivated(session: Session, user: OccupierUser) -> None:
    """An account suspended with its user returns: ACTIVE, or AWAITING_SIGN_IN without a password."""
    account = account_of(session, user)
    if account is None or not account.suspended_with_user:
        return
    account.status = _restored_status(account)
    account.suspended_with_user = False


def on_user_deleted(session: Session, user: OccupierUser) -> None:
    """The account, its links and sessions go with the user."""
    account = account_of(session, user)
    if account is None:
        return
    session.execute(delete(AppSession).where(AppSession.account_id == account.id))
    session.execute(delete(AccountToken).where(AccountToken.account_id == account.id))
    session.execute(delete(AppAccount).where(AppAccount.id == account.id))


def on_email_changed(session: Session, user: OccupierUser, *, actor: Actor) -> None:
    """Sessions end (the user signs in again with the new address) and links sent to the old address
    die. An account still awaiting its first sign-in gets its invitation again at the new address."""
    account = account_of(session, user)
    if account is None:
        return
    revoke_sessions(session, account.id)
    revoke_links(session, account.id)
    if account.status == AccountStatus.AWAITING_SIGN_IN:
        token = issue_link(session, account, TokenPurpose.INVITATION)
        account.invited_at = utcnow()
        mail.send(session, mail.invitation(user, invited_apps(account), token, resent=True))
        session.flush()
        _audit(session, actor, "invitation_resent", user)
