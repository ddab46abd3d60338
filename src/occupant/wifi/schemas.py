"""Input and output shapes for Wi-Fi Secure accounts. The password is never part of any of them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from occupant.sites.models import Site
from occupant.users.models import OccupierUser
from occupant.wifi.models import WifiAccount

if TYPE_CHECKING:
    from occupant.wifi.queries import ConnectedDevice


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # JSON true is not the number 1
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# Ranges are the actions' to check (the homesite among the occupier's sites, 1..the operator's maximum),
# so that every client gets the same codes: invalid_homesite, invalid_device_limit.
WholeNumber = Annotated[int, BeforeValidator(_not_bool)]


class WifiCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    homesite_id: WholeNumber = Field(description="One of the occupier's sites.")
    device_limit: WholeNumber | None = Field(
        default=None,
        description="Devices connected at once, 1 to the operator's maximum [default: the occupier's].",
    )


class WifiUpdate(BaseModel):
    """Only the fields that are set change; ``ACTIVE`` on a deactivated account emails a new password."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ACTIVE", "DEACTIVATED"] | None = None
    homesite_id: WholeNumber | None = Field(
        default=None, description="A new homesite: a new password is emailed (unless deactivated)."
    )
    device_limit: WholeNumber | None = None


class SiteRef(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str


class WifiAccountOut(BaseModel):
    status: str = Field(description="`PROVISIONING` until the network has the credential, then `ACTIVE`.")
    username: str = Field(description="What the user signs in to Wi-Fi Secure with (their email).")
    homesite_id: int
    homesite: SiteRef | None
    device_limit: int
    password_changed_at: datetime | None = Field(description="When the last password was emailed.")
    provisioned_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, account: WifiAccount, homesite: Site | None) -> WifiAccountOut:
        return cls(
            status=str(account.status),
            username=account.username,
            homesite_id=account.homesite_id,
            homesite=SiteRef.model_validate(homesite) if homesite is not None else None,
            device_limit=account.device_limit,
            password_changed_at=account.password_changed_at,
            provisioned_at=account.provisioned_at,
            created_at=account.created_at,
            updated_at=account.updated_at,
        )


class WifiOut(BaseModel):
    """A user's Wi-Fi Secure account, or ``wifi: null`` when they have none."""

    user_id: int
    busy: bool = Field(
        description="An action is in progress for the user (e.g. provisioning): changes answer "
        "409 `action_in_progress` until it ends."
    )
    wifi: WifiAccountOut | None

    @classmethod
    def of(cls, user: OccupierUser, account: WifiAccount | None, homesite: Site | None) -> WifiOut:
        wifi = WifiAccountOut.of(account, homesite) if account is not None else None
        return cls(user_id=user.id, busy=user.is_busy, wifi=wifi)


class WifiSessionOut(BaseModel):
    id: int = Field(description="The session's id, for clearing it.")
    mac_address: str | None = Field(description="The device's MAC address (Calling-Station-Id).")
    site: SiteRef | None = Field(description="The site of the access point, when a site lists it.")
    nas_identifier: str | None
    nas_ip_address: str
    started_at: datetime | None

    @classmethod
    def of(cls, device: ConnectedDevice) -> WifiSessionOut:
        return cls(
            id=device.id,
            mac_address=device.mac_address,
            site=SiteRef.model_validate(device.site) if device.site is not None else None,
            nas_identifier=device.nas_identifier,
            nas_ip_address=device.nas_ip_address,
            started_at=device.started_at,
        )


class WifiSessionsOut(BaseModel):
    """The user's devices connected now (open accounting sessions), newest first."""

    items: list[WifiSessionOut]
