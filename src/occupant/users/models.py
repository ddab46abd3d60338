from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

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


def derived_keys(first_name: str, last_name: str, email: str) -> tuple[str, str]:
    """The sort and search keys of a user with this name and email: (``sort_key``, ``search_text``)."""
    return f"{last_name} {first_name}".lower()[:210], f"{first_name} {last_name} {email}".lower()[:520]


class UserFacts(Protocol):
    """What the rules, mails and RADIUS rows of an action read about its user: an :class:`OccupierUser`,
    or a row that a bulk create is about to write (``users.bulk``), which has no ORM object."""

    @property
    def id(self) -> int: ...
    @property
    def operator_id(self) -> int: ...
    @property
    def occupier_id(self) -> int: ...
    @property
    def occupier(self) -> Occupier: ...
    @property
    def first_name(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def email_key(self) -> str: ...
    @property
    def language(self) -> str: ...
    @property
    def status(self) -> str: ...


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
        self.sort_key, self.search_text = derived_keys(self.first_name, self.last_name, self.email)
