from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from occupant.kit.clock import utcnow
from occupant.kit.db import Base, BigId, IdMixin


class AuditEvent(IdMixin, Base):
    """One state change. Append-only; holds opaque ids and field names, never personal values."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_operator_time", "operator_id", "id"),
        Index("ix_audit_events_target", "operator_id", "target_type", "target_id"),
        Index("ix_audit_events_occupier", "operator_id", "occupier_id", "id"),
    )

    operator_id: Mapped[int] = mapped_column(BigId, ForeignKey("operators.id", ondelete="CASCADE"))
    occurred_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    occupier_id: Mapped[int | None] = mapped_column(BigId)
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome: Mapped[str] = mapped_column(String(16), default="success")
    request_id: Mapped[str | None] = mapped_column(String(64))
