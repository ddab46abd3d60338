"""App accounts following many users' own lifecycle at once: what the hooks of
:mod:`occupant.accounts.service` (``ensure_may_delete``, ``on_user_deactivated``, ``on_user_reactivated``,
``on_user_deleted``) do for one user, set-based, for ``users.bulk_lifecycle``.

A fixed number of statements per 5,000 users, each naming the users' accounts through one subquery on
``app_accounts.user_id``. The users' own rows and audit events are the caller's. Nothing commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import Select, case, delete, select, update
from sqlalchemy.orm import Session

from occupant.accounts.errors import CannotDeleteAdmin
from occupant.accounts.models import AccountRole, AccountStatus, AccountToken, AppAccount, AppSession
from occupant.authz.actor import Actor, Role
from occupant.kit.clock import utcnow
from occupant.kit.idlists import one_of
from occupant.kit.throttle import Throttle
from occupant.users.models import OccupierUser

# Users per statement: the IN lists stay well under both databases' bound-parameter limits.
LOOKUP_CHUNK = 5_000


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        yield ordered[start : start + LOOKUP_CHUNK]


def _accounts_of(session: Session, user_ids: Sequence[int]) -> Select[int]:
    return select(AppAccount.id).where(one_of(session, AppAccount.user_id, user_ids))


def admins_among(session: Session, actor: Actor, user_ids: Sequence[int]) -> set[int]:
    """The users ``actor`` may not delete for their app role (``ensure_may_delete``): those whose role is
    admin when the actor is an occupier admin (operator staff may; or demote first). No query otherwise."""
    if actor.role is not Role.OCCUPIER_ADMIN:
        return set()
    found: set[int] = set()
    for chunk in _chunks(user_ids):
        found.update(
            session.scalars(
                select(AppAccount.user_id).where(
                    one_of(session, AppAccount.user_id, chunk), AppAccount.role == AccountRole.ADMIN
                )
            )
        )
    return found


def ensure_may_delete(user: OccupierUser, admins: set[int]) -> None:
    """Raises CannotDeleteAdmin for a user of :func:`admins_among`."""
    if user.id in admins:
        raise CannotDeleteAdmin()


def on_users_deactivated(session: Session, user_ids: Sequence[int]) -> None:
    """``on_user_deactivated`` for each user: an ACTIVE or AWAITING_SIGN_IN account is DEACTIVATED
    (``suspended_with_user``: it returns with its user); every open session and pending link of the
    user's account ends at once."""
    now = utcnow()
    for chunk in _chunks(user_ids):
        session.execute(
            update(AppAccount)
            .where(
                one_of(session, AppAccount.user_id, chunk),
                AppAccount.status.in_([AccountStatus.ACTIVE, AccountStatus.AWAITING_SIGN_IN]),
            )
            .values(
                status=AccountStatus.DEACTIVATED,
                suspended_with_user=True,
                version_id=AppAccount.version_id + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session="fetch")
        )
        session.execute(
            update(AppSession)
            .where(AppSession.account_id.in_(_accounts_of(session, chunk)), AppSession.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(AccountToken)
            .where(
                AccountToken.account_id.in_(_accounts_of(session, chunk)),
                AccountToken.used_at.is_(None),
                AccountToken.revoked_at.is_(None),
            )
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )


def on_users_reactivated(session: Session, user_ids: Sequence[int]) -> None:
    """``on_user_reactivated`` for each user: an account suspended with its user returns, ACTIVE with a
    password, else AWAITING_SIGN_IN (no mail: a resend gives a new link)."""
    now = utcnow()
    restored = case(
        (AppAccount.password_hash.is_not(None), AccountStatus.ACTIVE.value),
        else_=AccountStatus.AWAITING_SIGN_IN.value,
    )
    for chunk in _chunks(user_ids):
        session.execute(
            update(AppAccount)
            .where(one_of(session, AppAccount.user_id, chunk), AppAccount.suspended_with_user.is_(True))
            .values(
                status=restored,
                suspended_with_user=False,
                version_id=AppAccount.version_id + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session="fetch")
        )


def on_users_deleted(session: Session, user_ids: Sequence[int]) -> None:
    """``on_user_deleted`` for each user: the account goes, with its links and sessions."""
    for chunk in _chunks(user_ids):
        for model in (AppSession, AccountToken):
            session.execute(
                delete(model)
                .where(model.account_id.in_(_accounts_of(session, chunk)))
                .execution_options(synchronize_session=False)
            )
        session.execute(
            delete(AppAccount)
            .where(one_of(session, AppAccount.user_id, chunk))
            .execution_options(synchronize_session="fetch")
        )


def failure_keys(email_key: str) -> list[str]:
    """The throttle keys that name an email address: failed sign-ins (``sessions.sign_in``,
    ``change_own_password``) and password-reset requests (``sessions.request_password_reset``)."""
    return [f"app:{email_key}", f"reset:{email_key}"]


def forget_failures(session: Session, email_keys: Sequence[str]) -> None:
    """Deleted users' addresses leave the sign-in throttles, unless another user (of another operator)
    still has the address: one lookup and one DELETE per 5,000 addresses. Call after deleting the users."""
    keys = sorted(set(email_keys))
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
        in_use = set(
            session.scalars(
                select(OccupierUser.email_key).where(one_of(session, OccupierUser.email_key, chunk))
            )
        )
        gone = [throttle for key in chunk if key not in in_use for throttle in failure_keys(key)]
        if gone:
            session.execute(delete(Throttle).where(one_of(session, Throttle.key, gone)))
