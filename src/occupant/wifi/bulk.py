"""Wi-Fi Secure accounts for many users in one call: what ``create_wifi_account`` does for each, set-based.

A bulk job creates accounts for up to 100,000 users. :func:`create_wifi_accounts` takes a batch of users
(of one operator, possibly of different occupiers), applies the single action's rules to each with a
fixed number of queries for the whole batch, and writes what the single action writes — the account,
RADIUS's rows, the password email, the audit event, the user's busy hold — with one multi-row INSERT per
table. A user that breaks a rule gets the error the single action would raise and is left untouched;
the others are created. One after-commit hook asks the worker to confirm them all
(:func:`confirm_provisioning_many`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

from sqlalchemy import ColumnElement, String, Table, exists, insert, literal, or_, select, update
from sqlalchemy import cast as cast_
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from occupant.audit.service import Target, record_many
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, require, visible_user_ids
from occupant.kit.clock import utcnow
from occupant.kit.db import on_commit
from occupant.kit.errors import ActionInProgress, NotFound, OccupantError
from occupant.notify.service import Mail, queue_mails
from occupant.radius import sync
from occupant.radius.models import RadCheck
from occupant.sites.models import Site
from occupant.users.models import OccupierUser
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
    """For one request, in order: the new account, or the error the single action would have raised."""

    user: OccupierUser
    account: WifiAccount | None = None
    error: OccupantError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


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
        for item, account in zip(accepted, _create(session, accepted, actor=actor), strict=True):
            results[item.position] = WifiCreateResult(item.user, account=account)
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


def _create(session: Session, accepted: Sequence[_Accepted], *, actor: Actor) -> list[WifiAccount]:
    now = utcnow()
    passwords = new_wifi_passwords(len(accepted))
    hashes = [nt_hash(password) for password in passwords]
    rows = [
        {
            "operator_id": item.user.operator_id,
            "occupier_id": item.user.occupier_id,
            "user_id": item.user.id,
            "username": item.user.email_key,
            "homesite_id": item.homesite.id,
            "device_limit": item.limit,
            "status": WifiStatus.PROVISIONING,
            "nt_hash": hashed,
            "password_changed_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for item, hashed in zip(accepted, hashes, strict=True)
    ]
    # A plain multi-row INSERT, then the new rows read back by user id: cheaper than INSERT .. RETURNING,
    # which SQLAlchemy sends in smaller statements (and on SQLite row by row when asked for order).
    session.execute(insert(_ACCOUNTS), rows)
    user_ids = [item.user.id for item in accepted]
    created: dict[int, WifiAccount] = {}
    for start in range(0, len(user_ids), LOOKUP_CHUNK):
        stmt = select(WifiAccount).where(WifiAccount.user_id.in_(user_ids[start : start + LOOKUP_CHUNK]))
        created.update((account.user_id, account) for account in session.scalars(stmt))
    accounts = [created[user_id] for user_id in user_ids]
    sync.write_new_credentials(
        session,
        [
            sync.NewCredential(
                item.user.email_key, hashed, item.limit, item.homesite, sites=item.user.occupier.sites
            )
            for item, hashed in zip(accepted, hashes, strict=True)
        ],
    )
    queue_mails(
        session,
        [
            Mail(
                operator_id=item.user.operator_id,
                to=item.user.email,
                template="wifi_password",
                language=item.user.language,
                context=password_mail_context(item.user, account, item.homesite, "created"),
                secrets={"password": password},
                user_id=item.user.id,
            )
            for item, account, password in zip(accepted, accounts, passwords, strict=True)
        ],
    )
    _hold_users(session, [(item.user, account) for item, account in zip(accepted, accounts, strict=True)])
    targets = []
    for item in accepted:
        fields, changes = created_event(item.homesite, item.limit)
        targets.append(Target(item.user.id, item.user.occupier_id, fields, changes))
    record_many(session, actor=actor, action="wifi.created", target_type="occupier_user", targets=targets)
    account_ids = [account.id for account in accounts]
    on_commit(session, lambda: _enqueue_confirm(account_ids), key=("wifi.confirm_many", account_ids[0]))
    return accounts


_ACCOUNTS = cast(Table, WifiAccount.__table__)
_USERS = cast(Table, OccupierUser.__table__)


def _provisioning_owner_of(user_id: ColumnElement[int] | InstrumentedAttribute[int]) -> ColumnElement[str]:
    """``provisioning_owner`` of the user's Wi-Fi account, in SQL: the hold it puts on the user."""
    return (
        select(literal(BUSY_PREFIX) + cast_(WifiAccount.id, String))
        .where(WifiAccount.user_id == user_id)
        .scalar_subquery()
    )


def _hold_users(session: Session, holds: Sequence[tuple[OccupierUser, WifiAccount]]) -> None:
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
        for user, account in chunk:
            set_committed_value(user, "busy_owner", provisioning_owner(account.id))
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
