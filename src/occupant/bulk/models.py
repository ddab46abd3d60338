"""Bulk jobs and their items: the database is the truth of every bulk operation.

A job is validated into items (PREVIEW), confirmed (QUEUED), worked through chunk by chunk (RUNNING) and
ends DONE, PARTIALLY_DONE, FAILED or CANCELLED. Each item is one row of a file, one entry of a list or
one selected user; its status and its effects commit together, so no item is applied twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from occupant.kit.clock import utcnow
from occupant.kit.db import Base, BigId, IdMixin


class JobState(StrEnum):
    PREVIEW = "PREVIEW"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    PARTIALLY_DONE = "PARTIALLY_DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


UNFINISHED = (JobState.QUEUED, JobState.RUNNING)
FINISHED = (JobState.DONE, JobState.PARTIALLY_DONE, JobState.FAILED, JobState.CANCELLED)


class ItemStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    EXCLUDED = "EXCLUDED"


class BulkJob(IdMixin, Base):
    __tablename__ = "bulk_jobs"
    __table_args__ = (
        Index("ix_bulk_jobs_operator_created", "operator_id", "created_at"),
        Index("ix_bulk_jobs_occupier_created", "occupier_id", "created_at"),
        Index("ix_bulk_jobs_state", "state"),
    )

    operator_id: Mapped[int] = mapped_column(BigId, ForeignKey("operators.id", ondelete="CASCADE"))
    # None: the job spans the operator (e.g. a deactivation file naming several occupiers).
    occupier_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("occupiers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    state: Mapped[JobState] = mapped_column(String(16), default=JobState.PREVIEW)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # How the items were chosen, for people: {"ids": n} | {"filter": {...}} | {"file": "users.csv"}.
    selection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requested_by_kind: Mapped[str] = mapped_column(String(16))
    requested_by_id: Mapped[str | None] = mapped_column(String(64))
    requested_by_name: Mapped[str | None] = mapped_column(String(200))
    # The role the job acts with (its items go through the actions as that actor).
    actor_role: Mapped[str] = mapped_column(String(20))
    actor_site_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    actor_occupier_id: Mapped[int | None] = mapped_column(BigId)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    succeeded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    excluded: Mapped[int] = mapped_column(Integer, default=0)
    retry_of_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("bulk_jobs.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)

    @property
    def holder(self) -> str:
        """The busy owner of the users this job holds."""
        return f"bulk:{self.id}"

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED

    @property
    def pending(self) -> int:
        """Items not worked on (yet, or ever: a cancelled job's)."""
        return self.total - self.processed


class BulkItem(IdMixin, Base):
    __tablename__ = "bulk_items"
    __table_args__ = (
        Index("ix_bulk_items_job_status_position", "job_id", "status", "position"),
        Index("ix_bulk_items_job_position", "job_id", "position"),
        Index("ix_bulk_items_user", "user_id"),
    )

    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("bulk_jobs.id", ondelete="CASCADE"))
    # A file's line number (the header is line 1), or the order of a list or a selection (from 1).
    position: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(BigId)
    identifier: Mapped[str | None] = mapped_column(String(300))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[ItemStatus] = mapped_column(String(10), default=ItemStatus.PENDING)
    outcome: Mapped[str | None] = mapped_column(String(20))
    code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    errors: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
