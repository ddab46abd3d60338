from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from occupant.kit.clock import utcnow
from occupant.kit.db import Base, BigId, IdMixin, TimestampMixin
from occupant.occupiers.models import Occupier


class UserStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DEACTIVATED = "DEACTIVATED"
    SETUP_REQUIRED = "SETUP_REQUIRED"
    PASSWORD_REQUIRED = "PASSWORD_REQUIRED"


class OccupierUser(IdMixin, TimestampMixin, Base):
    """A person who works for an occupier.

    ``email_key`` (lower-cased email) is unique per operator: the database, not a check, decides
    which of two concurrent creates wins. ``search_text`` feeds the trigram search index.
    """

    __tablename__ = "occupier_users"
    __table_args__ = (
        UniqueConstraint("operator_id", "email_key"),
        UniqueConstraint("occupier_id", "external_id"),
        UniqueConstraint("occupier_id", "username"),
        Index("ix_occupier_users_occupier_sort", "occupier_id", "sort_key", "id"),
        Index("ix_occupier_users_operator_sort", "operator_id", "sort_key", "id"),
        # App sign-in finds a user by email alone: one email may have an account under two operators.
        Index("ix_occupier_users_email_key", "email_key"),
    )

    operator_id: Mapped[int] = mapped_column(BigId, ForeignKey("operators.id", ondelete="CASCADE"))
    occupier_id: Mapped[int] = mapped_column(BigId, ForeignKey("occupiers.id", ondelete="CASCADE"))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254))
    job_title: Mapped[str | None] = mapped_column(String(200))
    mobile: Mapped[str | None] = mapped_column(String(32))
    direct_line: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(5), default="en")
    employee_number: Mapped[str | None] = mapped_column(String(64))
    username: Mapped[str | None] = mapped_column(String(128))
    external_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[UserStatus] = mapped_column(String(24), default=UserStatus.ACTIVE)
    sort_key: Mapped[str] = mapped_column(String(210))
    search_text: Mapped[str] = mapped_column(String(520))
    busy_owner: Mapped[str | None] = mapped_column(String(64))
    busy_until: Mapped[datetime | None] = mapped_column(DateTime)
    version_id: Mapped[int] = mapped_column(Integer, default=1)

    occupier: Mapped[Occupier] = relationship(lazy="joined", innerjoin=True)

    __mapper_args__ = {"version_id_col": version_id}

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_busy(self) -> bool:
        return self.busy_until is not None and self.busy_until > utcnow()

    def refresh_derived(self) -> None:
        """Keep the sort and search keys in step with the name and email."""
        self.sort_key = f"{self.last_name} {self.first_name}".lower()[:210]
        self.search_text = f"{self.first_name} {self.last_name} {self.email}".lower()[:520]
