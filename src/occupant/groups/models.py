from __future__ import annotations

from sqlalchemy import Column, ForeignKey, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from occupant.kit.db import Base, BigId, IdMixin, TimestampMixin

group_members = Table(
    "access_group_members",
    Base.metadata,
    Column("group_id", BigId, ForeignKey("access_groups.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "user_id", BigId, ForeignKey("occupier_users.id", ondelete="CASCADE"), primary_key=True, index=True
    ),
)


class AccessGroup(IdMixin, TimestampMixin, Base):
    """An operator group of a site (door access, say) or an occupier's own group.

    Exactly one of ``site_id`` / ``occupier_id`` is set; ``scope_key`` makes names unique per scope.
    """

    __tablename__ = "access_groups"
    __table_args__ = (UniqueConstraint("operator_id", "scope_key", "name"),)

    operator_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    occupier_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("occupiers.id", ondelete="CASCADE"), index=True
    )
    scope_key: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(String(500))
    external_id: Mapped[str | None] = mapped_column(String(255))

    @property
    def kind(self) -> str:
        return "site" if self.site_id is not None else "occupier"
