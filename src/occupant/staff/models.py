from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from occupant.authz.actor import Role
from occupant.kit.clock import utcnow
from occupant.kit.db import Base, BigId, IdMixin, TimestampMixin
from occupant.sites.models import Site

staff_sites = Table(
    "staff_sites",
    Base.metadata,
    Column("staff_user_id", BigId, ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", BigId, ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True),
)


class StaffUser(IdMixin, TimestampMixin, Base):
    """Operator staff: an operator admin, or a site manager of some sites."""

    __tablename__ = "staff_users"

    operator_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(String(24), default=Role.OPERATOR_ADMIN)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime)
    version_id: Mapped[int] = mapped_column(Integer, default=1)

    sites: Mapped[list[Site]] = relationship(secondary=staff_sites, lazy="selectin")

    __mapper_args__ = {"version_id_col": version_id}


class StaffSession(IdMixin, Base):
    """A signed-in browser. The cookie holds a random token; the database holds its hash."""

    __tablename__ = "staff_sessions"

    staff_user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class ApiKey(IdMixin, Base):
    """A bearer key for the REST API, scoped to the operator (or, later, one occupier). Stored hashed."""

    __tablename__ = "api_keys"

    operator_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    occupier_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("occupiers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(String(24), default=Role.OPERATOR_ADMIN)
    created_by_staff_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
