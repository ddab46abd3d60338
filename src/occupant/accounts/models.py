"""App accounts: an occupier user's one credential for the portal and the mobile app.

``status`` follows NOT_INVITED → AWAITING_SIGN_IN → ACTIVE ⇄ DEACTIVATED. The portal and the mobile app
are invited separately (``portal`` and ``mobile_app``: NOT_INVITED, INVITED, SIGNED_IN) but share the
credential: the first invitation carries a set-password link, an invitation to the second app only
a notice. Links (invitation, password reset) and sessions are stored as hashes of random tokens.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from occupant.kit.clock import utcnow
from occupant.kit.db import Base, BigId, IdMixin, TimestampMixin


class AccountStatus(StrEnum):
    NOT_INVITED = "NOT_INVITED"
    AWAITING_SIGN_IN = "AWAITING_SIGN_IN"
    ACTIVE = "ACTIVE"
    DEACTIVATED = "DEACTIVATED"


class AccountRole(StrEnum):
    ADMIN = "admin"  # manages the occupier's users (Role.OCCUPIER_ADMIN)
    USER = "user"  # their own details (Role.OCCUPIER_USER)


class App(StrEnum):
    PORTAL = "portal"
    MOBILE_APP = "mobile_app"


class InviteState(StrEnum):
    NOT_INVITED = "NOT_INVITED"
    INVITED = "INVITED"
    SIGNED_IN = "SIGNED_IN"


class TokenPurpose(StrEnum):
    INVITATION = "invitation"
    PASSWORD_RESET = "password_reset"


class AppAccount(IdMixin, TimestampMixin, Base):
    __tablename__ = "app_accounts"

    operator_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    occupier_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("occupiers.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("occupier_users.id", ondelete="CASCADE"), unique=True
    )
    role: Mapped[AccountRole] = mapped_column(String(8), default=AccountRole.USER)
    status: Mapped[AccountStatus] = mapped_column(String(20), default=AccountStatus.NOT_INVITED)
    portal: Mapped[InviteState] = mapped_column(String(12), default=InviteState.NOT_INVITED)
    mobile_app: Mapped[InviteState] = mapped_column(String(12), default=InviteState.NOT_INVITED)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    invited_at: Mapped[datetime | None] = mapped_column(DateTime)
    first_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime)
    # DEACTIVATED because its user was: reactivating the user brings the account back.
    suspended_with_user: Mapped[bool] = mapped_column(Boolean, default=False)
    version_id: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version_id}


class AccountToken(IdMixin, Base):
    """A single-use, expiring link (invitation or password reset). Only its hash is stored."""

    __tablename__ = "account_tokens"

    account_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("app_accounts.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[TokenPurpose] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class AppSession(IdMixin, Base):
    """A signed-in portal browser (cookie) or mobile app (access + refresh token). Hashes only.

    Revoked at once by deactivation, deletion, an email change or a password change. A mobile session's
    refresh token is ``<refresh_family>.<secret>``: the family names the session, so that a refresh token
    presented again after it was rotated (a stolen copy, or the copy it was stolen from) is recognised
    and revokes the session.
    """

    __tablename__ = "app_sessions"
    __table_args__ = (Index("ix_app_sessions_account_open", "account_id", "revoked_at"),)

    account_id: Mapped[int] = mapped_column(BigId, ForeignKey("app_accounts.id", ondelete="CASCADE"))
    app: Mapped[App] = mapped_column(String(12))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    refresh_family: Mapped[str | None] = mapped_column(String(32), unique=True)
    csrf_token: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
