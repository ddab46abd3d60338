"""App-account actions for many users at once, as the bulk engine issues them (up to 100,000 users in one
job): resend the invitation, send the welcome email, force a password reset. Invitations are
:func:`occupant.accounts.service.invite_many`.

Each does for every user what its single-user action does — the same rules (``service.*_terms``), mails,
audit events and errors — set-based: a fixed number of statements per 5,000 users (one lookup per table,
one multi-row write each for links, mails, audit events and account changes), whatever the batch size
below that. A user that breaks a rule fails alone with the error the single action would raise and is
left untouched; a user listed twice is handled once (both positions get the same result). Nothing commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import cast

from sqlalchemy import Table, insert, update
from sqlalchemy.orm import Session

from occupant.accounts import mail
from occupant.accounts.models import AccountToken, AppAccount, AppSession, TokenPurpose
from occupant.accounts.service import (
    LOOKUP_CHUNK,
    AccountResult,
    _accounts_by_user,
    force_reset_terms,
    resend_terms,
    welcome_terms,
)
from occupant.accounts.sessions import invited_apps
from occupant.audit.service import Target, record_many
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, require, visible_user_ids
from occupant.kit.clock import utcnow
from occupant.kit.errors import InvalidState, NotFound, OccupantError
from occupant.kit.security import new_token, token_hash
from occupant.kit.settings import get_settings
from occupant.notify.service import queue_mails
from occupant.users.models import OccupierUser
from occupant.users.service import ensure_changeable

__all__ = ["force_password_reset_many", "resend_invitation_many", "send_welcome_many"]

Accepted = list[tuple[OccupierUser, AppAccount]]

_TOKENS = cast(Table, AccountToken.__table__)


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), LOOKUP_CHUNK):
        yield ids[start : start + LOOKUP_CHUNK]


def _sort_out(
    session: Session,
    users: Sequence[OccupierUser],
    terms: Callable[[AppAccount], None],
    *,
    actor: Actor,
) -> tuple[list[AccountResult], Accepted]:
    """Each user's result, in order, and the (user, account) pairs the action applies to: in the actor's
    scope, changeable, with an account that ``terms`` accepts. Raises PermissionDenied."""
    require(actor, Perm.MANAGE_USERS)
    if not users:
        return [], []
    ids = [u.id for u in users]
    accounts = _accounts_by_user(session, sorted(set(ids)))
    visible = visible_user_ids(session, actor, ids, chunk=LOOKUP_CHUNK)
    by_user: dict[int, AccountResult] = {}
    accepted: Accepted = []
    for user in users:
        if user.id in by_user:
            continue
        account = accounts.get(user.id)
        try:
            if user.id not in visible:
                raise NotFound()
            ensure_changeable(user)
            if account is None:
                raise InvalidState("This user has not been invited to the apps.")
            terms(account)
        except OccupantError as exc:
            by_user[user.id] = AccountResult(user, error=exc)
            continue
        by_user[user.id] = AccountResult(user, account.id, session=session)
        accepted.append((user, account))
    return [by_user[u.id] for u in users], accepted


def _audit(session: Session, accepted: Accepted, verb: str, *, actor: Actor) -> None:
    """One ``app_account.<verb>`` event per user, as the single action records it."""
    targets = [Target(user.id, user.occupier_id) for user, _ in accepted]
    record_many(
        session, actor=actor, action=f"app_account.{verb}", target_type="occupier_user", targets=targets
    )


def resend_invitation_many(
    session: Session, users: Sequence[OccupierUser], *, actor: Actor
) -> list[AccountResult]:
    """:func:`service.resend_invitation` for each user: a new invitation link by email (``app_invitation``,
    ``resent``), the pending one dies; only accounts AWAITING_SIGN_IN (else InvalidState).

    Returns one result per user, in order; failures: NotFound (outside the actor's scope),
    ActionInProgress, OccupierDecommissioned, InvalidState. Raises PermissionDenied (nothing written).
    """
    results, accepted = _sort_out(session, users, resend_terms, actor=actor)
    if not accepted:
        return results
    now = utcnow()
    for chunk in _chunks([account.id for _, account in accepted]):
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
        session.execute(
            update(AppAccount)
            .where(AppAccount.id.in_(chunk))
            .values(invited_at=now, updated_at=now, version_id=AppAccount.version_id + 1)
            .execution_options(synchronize_session="fetch")
        )
    tokens = {account.id: new_token() for _, account in accepted}
    expires = now + timedelta(hours=get_settings().invitation_hours)
    session.execute(
        insert(_TOKENS),
        [
            {
                "account_id": account_id,
                "purpose": TokenPurpose.INVITATION,
                "token_hash": token_hash(token),
                "created_at": now,
                "expires_at": expires,
            }
            for account_id, token in tokens.items()
        ],
    )
    queue_mails(
        session,
        [
            mail.invitation(user, invited_apps(account), tokens[account.id], resent=True)
            for user, account in accepted
        ],
    )
    _audit(session, accepted, "invitation_resent", actor=actor)
    return results


def send_welcome_many(
    session: Session, users: Sequence[OccupierUser], *, actor: Actor
) -> list[AccountResult]:
    """:func:`service.send_welcome` for each user: the ``welcome`` email; accounts ACTIVE or
    AWAITING_SIGN_IN (else InvalidState). Results and errors as :func:`resend_invitation_many`."""
    results, accepted = _sort_out(session, users, welcome_terms, actor=actor)
    if accepted:
        queue_mails(session, [mail.welcome(user, invited_apps(account)) for user, account in accepted])
        _audit(session, accepted, "welcome_sent", actor=actor)
    return results


def force_password_reset_many(
    session: Session, users: Sequence[OccupierUser], *, actor: Actor
) -> list[AccountResult]:
    """:func:`service.force_password_reset` for each user: every session ends now and the next sign-in
    must choose a new password; ACTIVE accounts only (else InvalidState). No email. Results and errors as
    :func:`resend_invitation_many`."""
    results, accepted = _sort_out(session, users, force_reset_terms, actor=actor)
    if not accepted:
        return results
    already = {account.id for _, account in accepted if account.must_change_password}
    now = utcnow()
    for chunk in _chunks([account.id for _, account in accepted]):
        session.execute(
            update(AppAccount)
            .where(AppAccount.id.in_(chunk))
            .values(must_change_password=True, updated_at=now, version_id=AppAccount.version_id + 1)
            .execution_options(synchronize_session="fetch")
        )
        session.execute(
            update(AppSession)
            .where(AppSession.account_id.in_(chunk), AppSession.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
    record_many(
        session,
        actor=actor,
        action="app_account.password_reset_forced",
        target_type="occupier_user",
        targets=[
            Target(
                user.id,
                user.occupier_id,
                ["must_change_password"],
                None if account.id in already else {"must_change_password": [False, True]},
            )
            for user, account in accepted
        ],
    )
    return results
