"""Counting failed attempts per key (an account, an address) in the database, so every process agrees."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import DateTime, Integer, String, delete
from sqlalchemy.orm import Mapped, Session, mapped_column

from occupant.kit.clock import utcnow
from occupant.kit.db import Base
from occupant.kit.errors import RateLimited


class Throttle(Base):
    __tablename__ = "throttles"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)


def check(session: Session, keys: list[str], *, limit: int, window: timedelta) -> None:
    """Raise RateLimited (with seconds to wait) if any key has ``limit`` failures in its window."""
    now = utcnow()
    for key in keys:
        row = session.get(Throttle, key)
        if row and row.window_start + window > now and row.failures >= limit:
            wait = int((row.window_start + window - now).total_seconds()) + 1
            raise RateLimited(details={"retry_after": wait})


def fail(session: Session, keys: list[str], *, window: timedelta) -> None:
    now = utcnow()
    for key in keys:
        row = session.get(Throttle, key)
        if row is None:
            session.add(Throttle(key=key, window_start=now, failures=1))
        elif row.window_start + window <= now:
            row.window_start, row.failures = now, 1
        else:
            row.failures += 1
    session.flush()


def clear(session: Session, key: str) -> None:
    session.execute(delete(Throttle).where(Throttle.key == key))
