"""Operator staff: the first admin, sign-in with server-side sessions, and API keys."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from occupant.audit.service import record
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.authz.scope import Perm, require
from occupant.kit import signin, throttle
from occupant.kit.clock import utcnow
from occupant.kit.db import on_commit
from occupant.kit.errors import FieldErrors, NotAuthenticated, NotFound
from occupant.kit.security import generate_password, hash_password, new_token, token_hash
from occupant.kit.settings import get_settings
from occupant.kit.validation import normalize_email
from occupant.operators.models import Operator
from occupant.sites.models import Site
from occupant.staff.models import ApiKey, StaffSession, StaffUser

MIN_PASSWORD = 10


def actor_for_staff(staff: StaffUser) -> Actor:
    return Actor(
        kind=ActorKind.STAFF,
        id=staff.id,
        operator_id=staff.operator_id,
        role=Role(staff.role),
        site_ids=frozenset(s.id for s in staff.sites),
    )


def actor_for_api_key(key: ApiKey) -> Actor:
    return Actor(
        kind=ActorKind.API_KEY,
        id=key.id,
        operator_id=key.operator_id,
        role=Role(key.role),
        occupier_id=key.occupier_id,
    )


def check_password_strength(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD:
        raise FieldErrors.single(field, "too_short", f"Use at least {MIN_PASSWORD} characters.")


def has_any_staff(session: Session) -> bool:
    return session.scalar(select(StaffUser.id).limit(1)) is not None


def create_first_admin(
    session: Session, *, email: str, name: str, password: str | None, operator_name: str = "My workspace"
) -> tuple[StaffUser, str | None]:
    """Create an operator admin; on an empty database, create the operator too.

    Returns the staff user and the generated password when none was given (shown once, never stored).
    """
    email, key = normalize_email(email)
    if session.scalar(select(StaffUser.id).where(StaffUser.email_key == key)):
        raise FieldErrors.single("email", "email_taken", "A staff member with this email already exists.")
    generated = None
    if not password:
        password = generated = generate_password(20)
    check_password_strength(password)
    operator = session.scalars(select(Operator).order_by(Operator.id)).first()
    if operator is None:
        operator = Operator(name=operator_name)
        session.add(operator)
        session.flush()
    staff = StaffUser(
        operator_id=operator.id,
        email=email,
        email_key=key,
        name=name.strip() or email,
        password_hash=hash_password(password),
        role=Role.OPERATOR_ADMIN,
    )
    session.add(staff)
    session.flush()
    record(
        session,
        actor=Actor.system(operator.id),
        action="staff.created",
        target_type="staff_user",
        target_id=staff.id,
        fields=["email", "name", "role"],
        changes={"role": [None, staff.role]},
    )
    return staff, generated


def create_staff(
    session: Session, *, actor: Actor, email: str, name: str, role: Role, site_ids: list[int], password: str
) -> StaffUser:
    """An operator admin adds a colleague: another admin, or a site manager of some sites."""
    require(actor, Perm.MANAGE_STAFF)
    email, key = normalize_email(email)
    if session.scalar(select(StaffUser.id).where(StaffUser.email_key == key)):
        raise FieldErrors.single("email", "email_taken", "A staff member with this email already exists.")
    check_password_strength(password)
    sites = list(
        session.scalars(select(Site).where(Site.operator_id == actor.operator_id, Site.id.in_(site_ids)))
    )
    if role is Role.SITE_MANAGER and not sites:
        raise FieldErrors.single("site_ids", "required", "A site manager manages at least one site.")
    staff = StaffUser(
        operator_id=actor.operator_id,
        email=email,
        email_key=key,
        name=name.strip() or email,
        password_hash=hash_password(password),
        role=role,
    )
    staff.sites = sites if role is Role.SITE_MANAGER else []
    session.add(staff)
    session.flush()
    record(
        session,
        actor=actor,
        action="staff.created",
        target_type="staff_user",
        target_id=staff.id,
        fields=["email", "name", "role", "sites"],
        changes={"role": [None, role]},
    )
    return staff


def sign_in(
    session: Session, *, email: str, password: str, address: str | None, user_agent: str | None = None
) -> tuple[StaffSession, str]:
    """Check the password and open a session. The same generic error whether or not the account exists.

    Raises RateLimited after too many failures for the account or the address, NotAuthenticated otherwise.
    """
    key = (email or "").strip().lower()
    account_key, address_key = f"staff:{key}", (f"addr:{address}" if address else None)
    candidate = select(StaffUser.id, StaffUser.password_hash).where(StaffUser.email_key == key)
    matched = signin.matching_hashes(
        session, candidate, password or "", account_key=account_key, address_key=address_key
    )
    staff = session.scalars(select(StaffUser).where(StaffUser.email_key == key)).first() if matched else None
    if staff is None or (staff.id, staff.password_hash) not in matched or not staff.active:
        signin.record_failure(session, account_key, address_key)
        raise NotAuthenticated("Email or password is incorrect.")
    throttle.clear(session, account_key)
    token = new_token()
    settings = get_settings()
    staff_session = StaffSession(
        staff_user_id=staff.id,
        token_hash=token_hash(token),
        csrf_token=new_token(nbytes=24),
        expires_at=utcnow() + timedelta(hours=settings.session_hours),
    )
    staff.last_sign_in_at = utcnow()
    session.add(staff_session)
    session.flush()
    record(
        session,
        actor=actor_for_staff(staff),
        action="staff.signed_in",
        target_type="staff_user",
        target_id=staff.id,
    )
    return staff_session, token


def resolve_session(session: Session, token: str | None) -> tuple[StaffUser, StaffSession] | None:
    if not token:
        return None
    row = session.scalars(select(StaffSession).where(StaffSession.token_hash == token_hash(token))).first()
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    staff = session.get(StaffUser, row.staff_user_id)
    if staff is None or not staff.active:
        return None
    return staff, row


def sign_out(session: Session, staff_session: StaffSession, *, actor: Actor) -> None:
    staff_session.revoked_at = utcnow()
    session.flush()
    record(session, actor=actor, action="staff.signed_out", target_type="staff_user", target_id=actor.id)


def revoke_sessions(session: Session, staff_id: int) -> None:
    session.execute(
        update(StaffSession)
        .where(StaffSession.staff_user_id == staff_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def create_api_key(session: Session, *, actor: Actor, name: str) -> tuple[ApiKey, str]:
    """Create an operator-scoped API key. The key is returned once; only its hash is kept."""
    require(actor, Perm.MANAGE_API_KEYS)
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise FieldErrors.single("name", "invalid", "Give the key a name of at most 120 characters.")
    token = new_token("occ_", 32)
    key = ApiKey(
        operator_id=actor.operator_id,
        name=name,
        prefix=token[:10],
        token_hash=token_hash(token),
        role=Role.OPERATOR_ADMIN,
        created_by_staff_id=actor.id if actor.kind is ActorKind.STAFF else None,
    )
    session.add(key)
    session.flush()
    record(
        session,
        actor=actor,
        action="api_key.created",
        target_type="api_key",
        target_id=key.id,
        fields=["name"],
    )
    return key, token


def revoke_api_key(session: Session, key_id: int, *, actor: Actor) -> ApiKey:
    require(actor, Perm.MANAGE_API_KEYS)
    key = session.get(ApiKey, key_id)
    if key is None or key.operator_id != actor.operator_id:
        raise NotFound()
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
        record(session, actor=actor, action="api_key.revoked", target_type="api_key", target_id=key.id)
    return key


def resolve_api_key(session: Session, token: str) -> ApiKey | None:
    key = session.scalars(select(ApiKey).where(ApiKey.token_hash == token_hash(token))).first()
    if key is None or key.revoked_at is not None:
        return None
    now = utcnow()
    if key.last_used_at is None or (now - key.last_used_at) > timedelta(minutes=1):
        # Recorded after the request, in its own short transaction, at most once a minute per key:
        # read-only requests stay read-only.
        key_id = key.id
        on_commit(session, lambda: _touch_api_key(key_id, now), key=("api_key.touch", key_id))
    return key


def _touch_api_key(key_id: int, when: datetime) -> None:
    from occupant.kit.db import transaction
    from occupant.kit.runtime import get_session_factory

    with transaction(get_session_factory()) as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))
