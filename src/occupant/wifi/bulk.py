"""Wi-Fi Secure accounts for many users in one call: what ``create_wifi_account`` does for each, set-based.

A bulk job creates accounts for up to 100,000 users. :func:`create_wifi_accounts` takes a batch of users
(of one operator, possibly of different occupiers), applies the single action's rules to each with a
fixed number of queries for the whole batch, and writes what the single action writes — the account,
RADIUS's rows, the password email, the audit event, the user's busy hold — with one bulk write per table
(:func:`write_new_accounts`; COPY on PostgreSQL), ids reserved ahead so that nothing is read back. A user
that breaks a rule gets the error the single action would raise and is left untouched; the others are
created. One after-commit hook asks the worker to confirm them all (:func:`confirm_provisioning_many`).
A bulk create of users (``users.bulk``) writes its new users' accounts with :func:`write_new_accounts`
directly, their holds in the user rows it inserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, cast

from sqlalchemy import ColumnElement, String, Table, exists, literal, or_, select, update
from sqlalchemy import cast as cast_
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from occupant.audit.service import Target, record_many
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, require, visible_user_ids
from occupant.kit.bulkwrite import among, insert_rows, reserve_ids
from occupant.kit.clock import utcnow
from occupant.kit.db import on_commit
from occupant.kit.errors import ActionInProgress, NotFound, OccupantError
from occupant.notify.service import Mail, queue_mails
from occupant.radius import sync
from occupant.radius.models import RadCheck
from occupant.sites.models import Site
from occupant.users.models import OccupierUser, UserFacts
from occupant.users.service import ensure_changeable
from occupant.wifi.models import WifiAccount, WifiStatus
from occupant.wifi.passwords import new_wifi_passwords, nt_hash
from occupant.wifi.service import (
    BUSY_PREFIX,
    created_event,
    max_devices,
    new_account_terms,
    password_mail_context,
    provisioning_hold_until,
    provisioning_owner,
)

# Users per lookup statement: the IN lists stay well under SQLite's (32,766) and PostgreSQL's (65,535)
# bound-parameter limits, so a batch of any size works; a bulk job's batches fit in one.
LOOKUP_CHUNK = 5_000


class WifiCreateRequest(NamedTuple):
    """One user's new account: the homesite, and the device limit (None: the occupier's default)."""

    user: OccupierUser
    homesite_id: int | None
    device_limit: int | None = None


@dataclass(frozen=True, slots=True)
class WifiCreateResult:
    """For one request, in order: the new account's id, or the error the single action would have raised.

    ``account`` reads the account when asked for (a bulk job needs only the id): the batch writes no ORM
    objects.
    """

    user: OccupierUser
    account_id: int | None = None
    error: OccupantError | None = None
    session: Session | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def account(self) -> WifiAccount | None:
        if self.account_id is None or self.session is None:
            return None
        return self.session.get(WifiAccount, self.account_id)


class _Accepted(NamedTuple):
    position: int
    user: OccupierUser
    homesite: Site
    limit: int


def create_wifi_accounts(
    session: Session,
    requests: Sequence[tuple[OccupierUser, int | None, int | None]],
    *,
    actor: Actor,
) -> list[WifiCreateResult]:
    """Give each user a Wi-Fi account, as ``create_wifi_account`` does: a new password by email, the
    account PROVISIONING and the user busy until the worker confirms RADIUS has it.

    ``requests`` are (user, homesite id, device limit or None) for users of the actor's operator. Returns
    one result per request, in order. A request that breaks a rule fails alone with the single action's
    error — ActionInProgress (also for a user asked for twice), OccupierDecommissioned,
    WifiAccountExists, InvalidState, FieldErrors, WifiUsernameTaken, or NotFound for a user outside the
    actor's scope — and writes nothing. Raises PermissionDenied (nothing written) when the actor may not
    manage users.
    """
    require(actor, Perm.MANAGE_USERS)
    if not requests:
        return []
    with_account, usernames = _existing(session, [user for user, _, _ in requests])
    visible = visible_user_ids(session, actor, [user.id for user, _, _ in requests], chunk=LOOKUP_CHUNK)
    maximum = max_devices(session, actor.operator_id)
    results: list[WifiCreateResult | None] = []
    accepted: list[_Accepted] = []
    accepted_users: set[int] = set()
    for index, (user, homesite_id, device_limit) in enumerate(requests):
        try:
            if user.id not in visible:
                raise NotFound()
            if user.id in accepted_users:  # one after the other, the first create leaves the user busy
                raise ActionInProgress()
            ensure_changeable(user)
            homesite, limit = new_account_terms(
                user,
                homesite_id,
                device_limit,
                has_account=user.id in with_account,
                username_taken=user.email_key in usernames,
                maximum=maximum,
            )
        except OccupantError as exc:
            results.append(WifiCreateResult(user, error=exc))
            continue
        results.append(None)
        accepted.append(_Accepted(index, user, homesite, limit))
        accepted_users.add(user.id)
        usernames.add(user.email_key)
    if accepted:
        ids = reserve_ids(session, _ACCOUNTS, len(accepted))
        new = [
            NewWifiAccount(i, item.user, item.homesite, item.limit)
            for i, item in zip(ids, accepted, strict=True)
        ]
        write_new_accounts(session, new, actor=actor)
        _hold_users(
            session, [(item.user, account_id) for item, account_id in zip(accepted, ids, strict=True)]
        )
        for item, account_id in zip(accepted, ids, strict=True):
            results[item.position] = WifiCreateResult(item.user, account_id=account_id, session=session)
    return [r for r in results if r is not None]


def _existing(session: Session, users: Sequence[OccupierUser]) -> tuple[set[int], set[str]]:
    """Which of these users have a Wi-Fi account, and which of their emails are Wi-Fi usernames already
    (instance-wide: RADIUS has one namespace)."""
    ids = sorted({u.id for u in users})
    keys = sorted({u.email_key for u in users})
    with_account: set[int] = set()
    usernames: set[str] = set()
    for start in range(0, max(len(ids), len(keys)), LOOKUP_CHUNK):
        stmt = select(WifiAccount.user_id, WifiAccount.username).where(
            or_(
                WifiAccount.user_id.in_(ids[start : start + LOOKUP_CHUNK]),
                WifiAccount.username.in_(keys[start : start + LOOKUP_CHUNK]),
            )
        )
        for user_id, username in session.execute(stmt):
            with_account.add(user_id)
            usernames.add(username)
    return with_account, usernames


def taken_usernames(session: Session, usernames: Sequence[str]) -> dict[str, int]:
    """Which of these are Wi-Fi usernames already (instance-wide), each with its account's user id."""
    keys = sorted(set(usernames))
    found: dict[str, int] = {}
    for start in range(0, len(keys), LOOKUP_CHUNK):
        stmt = select(WifiAccount.username, WifiAccount.user_id).where(
            among(session, WifiAccount.username, keys[start : start + LOOKUP_CHUNK])
        )
        found.update((username, user_id) for username, user_id in session.execute(stmt))
    return found


class NewWifiAccount(NamedTuple):
    """One account for :func:`write_new_accounts`: its id (``reserve_ids``), its user (who has no Wi-Fi
    account), the homesite and device limit that ``new_account_terms`` accepted."""

    account_id: int
    user: UserFacts
    homesite: Site
    limit: int


_ACCOUNT_COLUMNS = (
    "id",
    "operator_id",
    "occupier_id",
    "user_id",
    "username",
    "status",
    "homesite_id",
    "device_limit",
    "nt_hash",
    "password_changed_at",
    "provisioned_at",
    "suspended_with_user",
    "version_id",
    "created_at",
    "updated_at",
)


def write_new_accounts(session: Session, accounts: Sequence[NewWifiAccount], *, actor: Actor) -> None:
    """Write what ``create_wifi_account`` writes for each new account, one bulk write per table: the
    account (PROVISIONING, the username its user's email key), RADIUS's rows, the password email in the
    user's language, the ``wifi.created`` audit event, and after the commit one request to the worker to
    confirm them all. The rules are the caller's (``new_account_terms``); so is each user's busy hold
    (``provisioning_owner(account_id)`` until ``provisioning_hold_until()``), which the caller writes with
    the user's row or updates."""
    if not accounts:
        return
    now = utcnow()
    passwords = new_wifi_passwords(len(accounts))
    hashes = [nt_hash(password) for password in passwords]
    provisioning = WifiStatus.PROVISIONING.value
    insert_rows(
        session,
        _ACCOUNTS,
        _ACCOUNT_COLUMNS,
        (
            (
                a.account_id,
                a.user.operator_id,
                a.user.occupier_id,
                a.user.id,
                a.user.email_key,
                provisioning,
                a.homesite.id,
                a.limit,
                hashed,
                now,
                None,
                False,
                1,
                now,
                now,
            )
            for a, hashed in zip(accounts, hashes, strict=True)
        ),
    )
    sync.write_new_credentials(
        session,
        [
            sync.NewCredential(a.user.email_key, hashed, a.limit, a.homesite, sites=a.user.occupier.sites)
            for a, hashed in zip(accounts, hashes, strict=True)
        ],
    )
    queue_mails(
        session,
        [
            Mail(
                operator_id=a.user.operator_id,
                to=a.user.email,
                template="wifi_password",
                language=a.user.language,
                context=password_mail_context(a.user, a.user.email_key, a.limit, a.homesite, "created"),
                secrets={"password": password},
                user_id=a.user.id,
            )
            for a, password in zip(accounts, passwords, strict=True)
        ],
    )
    events: dict[tuple[int, int], tuple[list[str], dict[str, object]]] = {}
    targets = []
    for a in accounts:
        key = (a.homesite.id, a.limit)
        if key not in events:  # a few homesites and limits: one event body each
            events[key] = created_event(a.homesite, a.limit)
        fields, changes = events[key]
        targets.append(Target(a.user.id, a.user.occupier_id, fields, changes))
    record_many(session, actor=actor, action="wifi.created", target_type="occupier_user", targets=targets)
    account_ids = [a.account_id for a in accounts]
    on_commit(session, lambda: _enqueue_confirm(account_ids), key=("wifi.confirm_many", account_ids[0]))


_ACCOUNTS = cast(Table, WifiAccount.__table__)
_USERS = cast(Table, OccupierUser.__table__)


def _provisioning_owner_of(user_id: ColumnElement[int] | InstrumentedAttribute[int]) -> ColumnElement[str]:
    """``provisioning_owner`` of the user's Wi-Fi account, in SQL: the hold it puts on the user."""
    return (
        select(literal(BUSY_PREFIX) + cast_(WifiAccount.id, String))
        .where(WifiAccount.user_id == user_id)
        .scalar_subquery()
    )


def _hold_users(session: Session, holds: Sequence[tuple[OccupierUser, int]]) -> None:
    """Each user busy for its new account, as the single action holds it, with one UPDATE.

    (The flush would send one UPDATE per user: the rows are versioned.) Like the flush, it raises
    StaleDataError when another transaction changed a user since this session read it (the version
    written is then not the next one); the loaded users take the written values as committed state.
    """
    now = utcnow()
    until = provisioning_hold_until()
    owner = _provisioning_owner_of(_USERS.c.id)
    for start in range(0, len(holds), LOOKUP_CHUNK):
        chunk = holds[start : start + LOOKUP_CHUNK]
        read = {user.id: user.version_id for user, _ in chunk}
        stmt = (
            update(_USERS)
            .where(_USERS.c.id.in_(read))
            .values(busy_owner=owner, busy_until=until, version_id=_USERS.c.version_id + 1, updated_at=now)
            .returning(_USERS.c.id, _USERS.c.version_id)
        )
        written: dict[int, int] = {user_id: version for user_id, version in session.execute(stmt)}
        stale = [user_id for user_id, version in read.items() if written.get(user_id) != version + 1]
        if stale:
            raise StaleDataError(f"occupier_users: {len(stale)} rows changed since they were read")
        for user, account_id in chunk:
            set_committed_value(user, "busy_owner", provisioning_owner(account_id))
            set_committed_value(user, "busy_until", until)
            set_committed_value(user, "version_id", written[user.id])
            set_committed_value(user, "updated_at", now)


def _enqueue_confirm(account_ids: list[int]) -> None:
    from occupant.worker.tasks import enqueue_wifi_confirmations

    enqueue_wifi_confirmations(account_ids)


class Confirmed(NamedTuple):
    confirmed: list[int]  # now ACTIVE, their users freed
    not_live: list[int]  # still PROVISIONING: RADIUS has no NT-Password row for them (yet)


def confirm_provisioning_many(session: Session, account_ids: Sequence[int]) -> Confirmed:
    """``confirm_provisioning`` for many accounts, set-based: each PROVISIONING account whose NT-Password
    row RADIUS can read becomes ACTIVE, and its user is freed when the user's hold is still this account's.

    Accounts that are gone or no longer PROVISIONING are left alone; those RADIUS cannot see yet are
    returned as ``not_live`` (the worker retries them) while the others are confirmed.
    """
    ids = sorted(set(account_ids))
    confirmed: list[tuple[int, int]] = []
    not_live: list[int] = []
    in_radius = exists().where(RadCheck.username == WifiAccount.username, RadCheck.attribute == "NT-Password")
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start : start + LOOKUP_CHUNK]
        now = utcnow()
        rows = session.execute(
            update(WifiAccount)
            .where(WifiAccount.id.in_(chunk), WifiAccount.status == WifiStatus.PROVISIONING, in_radius)
            .values(
                status=WifiStatus.ACTIVE,
                provisioned_at=now,
                updated_at=now,
                version_id=WifiAccount.version_id + 1,
            )
            .returning(WifiAccount.id, WifiAccount.user_id)
            .execution_options(synchronize_session="fetch")
        ).all()
        confirmed += [(account_id, user_id) for account_id, user_id in rows]
        if len(rows) < len(chunk):
            not_live += session.scalars(
                select(WifiAccount.id).where(
                    WifiAccount.id.in_(chunk), WifiAccount.status == WifiStatus.PROVISIONING
                )
            )
    for start in range(0, len(confirmed), LOOKUP_CHUNK):
        user_ids = [user_id for _, user_id in confirmed[start : start + LOOKUP_CHUNK]]
        session.execute(
            update(OccupierUser)
            .where(
                OccupierUser.id.in_(user_ids),
                OccupierUser.busy_owner == _provisioning_owner_of(OccupierUser.id),
            )
            .values(busy_owner=None, busy_until=None)
            .execution_options(synchronize_session="fetch")
        )
    return Confirmed(sorted(account_id for account_id, _ in confirmed), sorted(not_live))
