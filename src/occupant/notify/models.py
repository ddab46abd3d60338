from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from occupant.kit.clock import utcnow
from occupant.kit.db import Base, BigId, IdMixin


class MessageStatus(StrEnum):
    QUEUED = "QUEUED"
    SENT = "SENT"
    DEAD = "DEAD"
    CANCELLED = "CANCELLED"


class OutboxMessage(IdMixin, Base):
    """An email waiting to be delivered, written in the transaction of the change that caused it.

    Secrets (passwords, sign-in links) sit in ``sealed_secrets``, encrypted with the instance key.
    Once the message is sent, cancelled or dead, recipient, context and secrets are wiped.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    operator_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    occupier_user_id: Mapped[int | None] = mapped_column(BigId, index=True)
    to_address: Mapped[str] = mapped_column(String(254))
    template: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(5))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sealed_secrets: Mapped[str | None] = mapped_column(Text)
    status: Mapped[MessageStatus] = mapped_column(String(16), default=MessageStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
