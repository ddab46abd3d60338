"""Wi-Fi Secure accounts following many users' own lifecycle at once: what the hooks of
:mod:`occupant.wifi.service` (``on_user_deactivated``, ``on_user_reactivated``, ``on_user_deleted``) do for
one user, set-based, for ``users.bulk_lifecycle``.

A fixed number of statements per 5,000 users: one lookup of the accounts, one write per table (accounts,
RADIUS's rows, password mails, holds). The users' own rows and audit events are the caller's. Nothing
commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, cast

from sqlalchemy import String, Table, bindparam, delete, inspect, literal, select, update
from sqlalchemy import cast as cast_
from sqlalchemy.orm import Session

from occupant.kit.clock import utcnow
from occupant.kit.db import on_commit
from occupant.kit.idlists import one_of
from occupant.notify.service import Mail, queue_mails
from occupant.radius import sync
from occupant.sites.models import Site
from occupant.users.models import OccupierUser
from occupant.wifi.models import WifiAccount, WifiStatus
from occupant.wifi.passwords import new_wifi_passwords, nt_hash
from occupant.wifi.service import (
    BUSY_PREFIX,
    password_mail_context,
    provisioning_hold_until,
    provisioning_owner,
)

# Users per statement: the IN lists stay well under SQLite's (32,766) and PostgreSQL's (65,535) limits.
LOOKUP_CHUNK = 5_000

_ACCOUNTS = cast(Table, WifiAccount.__table__)
_USERS = cast(Table, OccupierUser.__table__)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), LOOKUP_CHUNK):
        yield items[start : start + LOOKUP_CHUNK]


def on_users_deactivated(session: Session, users: Sequence[OccupierUser]) -> None:
    """``on_user_deactivated`` for each user: a live account is DEACTIVATED (``suspended_with_user``, so
    that it returns with its user) and RADIUS refuses it from the next request on; the account's own
    provisioning hold on the user, if any, ends with it."""
    by_id = {user.id: user for user in users}
    live: list[tuple[int, int, str]] = []  # (account id, user id, username)
    now = utcnow()
    for chunk in _chunks(sorted(by_id)):
        switched_off = session.execute(
            update(_ACCOUNTS)
            .where(one_of(session, _ACCOUNTS.c.user_id, chunk), _ACCOUNTS.c.status != WifiStatus.DEACTIVATED)
            .values(
                status=WifiStatus.DEACTIVATED,
                nt_hash=None,
                suspended_with_user=True,
                version_id=_ACCOUNTS.c.version_id + 1,
                updated_at=now,
            )
            .returning(_ACCOUNTS.c.id, _ACCOUNTS.c.user_id, _ACCOUNTS.c.username)
        )
        found = [(account_id, user_id, username) for account_id, user_id, username in switched_off]
        sync.clear_credential(session, [username for _, _, username in found])
        live += found
    _expire_loaded(session, [account_id for account_id, _, _ in live])
    ended = [
        user_id
        for account_id, user_id, _ in live
        if by_id[user_id].busy_owner == provisioning_owner(account_id)
    ]
    _set_holds(session, [(by_id[user_id], None) for user_id in ended])


class _Suspended(NamedTuple):
    """An account suspended with its user, as read for its return."""

    id: int
    user_id: int
    username: str
    homesite_id: int
    device_limit: int


def on_users_reactivated(session: Session, users: Sequence[OccupierUser]) -> list[int]:
    """``on_user_reactivated`` for each user: an account suspended with its user comes back with a new
    password by email (``wifi_password``, reason ``activated``), PROVISIONING until the worker confirms
    RADIUS has it, the user busy meanwhile (held by the account). Returns the accounts' ids."""
    by_id = {user.id: user for user in users}
    suspended: list[_Suspended] = []
    for chunk in _chunks(sorted(by_id)):
        stmt = select(
            WifiAccount.id,
            WifiAccount.user_id,
            WifiAccount.username,
            WifiAccount.homesite_id,
            WifiAccount.device_limit,
        ).where(one_of(session, WifiAccount.user_id, chunk), WifiAccount.suspended_with_user.is_(True))
        suspended += [_Suspended(*row) for row in session.execute(stmt)]
    if not suspended:
        return []
    homesite_ids = {account.homesite_id for account in suspended}
    sites = {site.id: site for site in session.scalars(select(Site).where(Site.id.in_(homesite_ids)))}
    passwords = new_wifi_passwords(len(suspended))
    hashes = [nt_hash(password) for password in passwords]
    now = utcnow()
    # One UPDATE run for every account (executemany): each gets its own hash.
    rehash = (
        update(_ACCOUNTS)
        .where(_ACCOUNTS.c.id == bindparam("account_id"))
        .values(
            nt_hash=bindparam("hash"),
            password_changed_at=now,
            status=WifiStatus.PROVISIONING,
            provisioned_at=None,
            suspended_with_user=False,
            version_id=_ACCOUNTS.c.version_id + 1,
            updated_at=now,
        )
    )
    for chunk in _chunks(list(zip(suspended, hashes, strict=True))):
        session.execute(rehash, [{"account_id": account.id, "hash": hashed} for account, hashed in chunk])
        sync.clear_credential(session, [account.username for account, _ in chunk])
    _expire_loaded(session, [account.id for account in suspended])
    credentials: list[sync.NewCredential] = []
    mails: list[Mail] = []
    for account, password, hashed in zip(suspended, passwords, hashes, strict=True):
        user, homesite = by_id[account.user_id], sites[account.homesite_id]
        credentials.append(
            sync.NewCredential(account.username, hashed, account.device_limit, homesite, user.occupier.sites)
        )
        context = password_mail_context(user, account.username, account.device_limit, homesite, "activated")
        mails.append(
            Mail(
                operator_id=user.operator_id,
                to=user.email,
                template="wifi_password",
                language=user.language,
                context=context,
                secrets={"password": password},
                user_id=user.id,
            )
        )
    sync.write_new_credentials(session, credentials)
    queue_mails(session, mails)
    _set_holds(session, [(by_id[account.user_id], provisioning_owner(account.id)) for account in suspended])
    account_ids = [account.id for account in suspended]
    on_commit(session, lambda: _enqueue_confirm(account_ids), key=("wifi.confirm_many", account_ids[0]))
    return account_ids


def on_users_deleted(session: Session, user_ids: Sequence[int]) -> None:
    """``on_user_deleted`` for each user: the account goes, with every RADIUS row of its username —
    credential, groups, sessions and sign-in history (``sync.purge``)."""
    for chunk in _chunks(sorted(set(user_ids))):
        gone = session.execute(
            delete(_ACCOUNTS)
            .where(one_of(session, _ACCOUNTS.c.user_id, chunk))
            .returning(_ACCOUNTS.c.id, _ACCOUNTS.c.username)
        ).all()
        ended = {account_id for account_id, _ in gone}
        for obj in list(session.identity_map.values()):
            if type(obj) is WifiAccount and obj.id in ended:
                session.expunge(obj)
        sync.purge(session, [username for _, username in gone])


def _set_holds(session: Session, holds: Sequence[tuple[OccupierUser, str | None]]) -> None:
    """Each user held by its own Wi-Fi account's provisioning (``provisioning_owner``) until the hold's
    expiry, or freed (None), one UPDATE per 5,000 users of each kind.

    No new version of the user: the caller's change of the user's status made one in this transaction.
    """
    until = provisioning_hold_until()
    freed = [user.id for user, owner in holds if owner is None]
    held = [user.id for user, owner in holds if owner is not None]
    for chunk in _chunks(freed):
        session.execute(
            update(_USERS).where(one_of(session, _USERS.c.id, chunk)).values(busy_owner=None, busy_until=None)
        )
    own_account = (
        select(literal(BUSY_PREFIX) + cast_(WifiAccount.id, String))
        .where(WifiAccount.user_id == _USERS.c.id)
        .scalar_subquery()
    )
    for chunk in _chunks(held):
        session.execute(
            update(_USERS)
            .where(one_of(session, _USERS.c.id, chunk))
            .values(busy_owner=own_account, busy_until=until)
        )
    for user, owner in holds:  # as committed state (the flush before the UPDATE left nothing pending)
        inspect(user).dict.update(busy_owner=owner, busy_until=None if owner is None else until)


def _expire_loaded(session: Session, account_ids: Sequence[int]) -> None:
    """Accounts this session holds as objects were changed behind its back: they reload when next read."""
    wanted = set(account_ids)
    for obj in list(session.identity_map.values()):
        if type(obj) is WifiAccount and obj.id in wanted:
            session.expire(obj)


def _enqueue_confirm(account_ids: list[int]) -> None:
    from occupant.worker.tasks import enqueue_wifi_confirmations

    enqueue_wifi_confirmations(account_ids)
