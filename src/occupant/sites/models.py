from __future__ import annotations

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from occupant.kit.db import Base, BigId, IdMixin, TimestampMixin


class Site(IdMixin, TimestampMixin, Base):
    """A building. Its country is the default region for phone numbers of users there."""

    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("operator_id", "code"),)

    operator_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    wifi_vlan: Mapped[int] = mapped_column(Integer, default=100, server_default="100")
    guest_vlan: Mapped[int] = mapped_column(Integer, default=900, server_default="900")
    version_id: Mapped[int] = mapped_column(Integer, default=1)

    nas: Mapped[list[SiteNas]] = relationship(
        back_populates="site", cascade="all, delete-orphan", lazy="selectin", order_by="SiteNas.identifier"
    )

    __mapper_args__ = {"version_id_col": version_id}

    @property
    def nas_identifiers(self) -> list[str]:
        return [n.identifier for n in self.nas]


class SiteNas(IdMixin, Base):
    """A RADIUS NAS-Identifier (access point or controller) that belongs to a site.

    Unique across the installation, not per operator: one FreeRADIUS serves every operator and tells a
    request's site by its NAS-Identifier alone.
    """

    __tablename__ = "site_nas"
    __table_args__ = (UniqueConstraint("identifier"),)

    operator_id: Mapped[int] = mapped_column(BigId, ForeignKey("operators.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(BigId, ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    identifier: Mapped[str] = mapped_column(String(128))

    site: Mapped[Site] = relationship(back_populates="nas")
