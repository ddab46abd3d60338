from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from occupant.kit.db import Base, BigId, IdMixin, TimestampMixin
from occupant.sites.models import Site


class OccupierState(StrEnum):
    ACTIVE = "ACTIVE"
    DECOMMISSION_PENDING = "DECOMMISSION_PENDING"
    DECOMMISSIONED = "DECOMMISSIONED"
    DECOMMISSION_FAILED = "DECOMMISSION_FAILED"


occupier_sites = Table(
    "occupier_sites",
    Base.metadata,
    Column("occupier_id", BigId, ForeignKey("occupiers.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", BigId, ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Occupier(IdMixin, TimestampMixin, Base):
    """A tenant company of the operator, with access to one or more sites."""

    __tablename__ = "occupiers"
    __table_args__ = (UniqueConstraint("operator_id", "name"),)

    operator_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    sort_key: Mapped[str] = mapped_column(String(200), index=True)
    state: Mapped[OccupierState] = mapped_column(String(32), default=OccupierState.ACTIVE)
    telephony_managed: Mapped[bool] = mapped_column(Boolean, default=False)
    portal_offered: Mapped[bool] = mapped_column(Boolean, default=True)
    mobile_app_offered: Mapped[bool] = mapped_column(Boolean, default=True)
    primary_site_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("sites.id", ondelete="SET NULL"))
    default_wifi_device_limit: Mapped[int] = mapped_column(Integer, default=2)
    decommission_error: Mapped[str | None] = mapped_column(Text)
    decommission_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    decommissioned_at: Mapped[datetime | None] = mapped_column(DateTime)
    version_id: Mapped[int] = mapped_column(Integer, default=1)

    sites: Mapped[list[Site]] = relationship(secondary=occupier_sites, lazy="selectin", order_by=Site.code)
    primary_site: Mapped[Site | None] = relationship(foreign_keys=[primary_site_id], lazy="joined")

    __mapper_args__ = {"version_id_col": version_id}

    @property
    def is_decommissioning(self) -> bool:
        return self.state != OccupierState.ACTIVE

    @property
    def apps_offered(self) -> bool:
        return self.portal_offered or self.mobile_app_offered

    @property
    def default_region(self) -> str | None:
        """Country of the primary site (else the first site): the default region for phone numbers."""
        site = self.primary_site or (self.sites[0] if self.sites else None)
        return site.country if site else None
