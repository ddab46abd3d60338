from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from occupant.kit.db import Base, IdMixin, TimestampMixin


class Operator(IdMixin, TimestampMixin, Base):
    """A workspace operator: the tenant boundary. Nothing is read or written across operators."""

    __tablename__ = "operators"

    name: Mapped[str] = mapped_column(String(200))
    brand_color: Mapped[str] = mapped_column(String(7), default="#1f5fbf")
    support_email: Mapped[str | None] = mapped_column(String(254))
    wifi_max_devices: Mapped[int] = mapped_column(Integer, default=5)
