from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from occupant.kit.db import Base, BigId, IdMixin, TimestampMixin


class WifiStatus(StrEnum):
    PROVISIONING = "PROVISIONING"
    ACTIVE = "ACTIVE"
    DEACTIVATED = "DEACTIVATED"


class WifiAccount(IdMixin, TimestampMixin, Base):
    """A user's Wi-Fi Secure credential: homesite, device limit, and the NT hash RADIUS checks.

    The cleartext password is never stored: it is emailed (sealed in the outbox) and forgotten.
    ``username`` is the RADIUS User-Name (the user's email, lower-cased) and moves with it.
    ``suspended_with_user`` marks an account deactivated because its user was, so that reactivating
    the user brings it back.
    """

    __tablename__ = "wifi_accounts"

    operator_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("operators.id", ondelete="CASCADE"), index=True
    )
    occupier_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("occupiers.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("occupier_users.id", ondelete="CASCADE"), unique=True
    )
    username: Mapped[str] = mapped_column(String(254), unique=True)
    status: Mapped[WifiStatus] = mapped_column(String(16), default=WifiStatus.PROVISIONING)
    homesite_id: Mapped[int] = mapped_column(BigId, ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    device_limit: Mapped[int] = mapped_column(Integer)
    nt_hash: Mapped[str | None] = mapped_column(String(32))
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime)
    provisioned_at: Mapped[datetime | None] = mapped_column(DateTime)
    suspended_with_user: Mapped[bool] = mapped_column(Boolean, default=False)
    version_id: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version_id}
