"""Input and output shapes for app accounts: the staff API, and the mobile app's sign-in and own details.

Passwords, tokens' hashes and links never appear in an output; the mobile app's tokens appear once, in
the answer that issues them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from occupant.accounts.models import AccountStatus, AppAccount, InviteState
from occupant.users.models import OccupierUser
from occupant.wifi.schemas import SiteRef

if TYPE_CHECKING:
    from occupant.sites.models import Site
    from occupant.wifi.models import WifiAccount
    from occupant.wifi.queries import ConnectedDevice

RoleName = Literal["admin", "user"]


class AccountOut(BaseModel):
    """A user's app account (portal and mobile app). Without one: ``NOT_INVITED`` and no role."""

    user_id: int
    status: str = Field(description="`NOT_INVITED`, `AWAITING_SIGN_IN`, `ACTIVE` or `DEACTIVATED`.")
    role: RoleName | None = Field(
        description="`admin` manages the occupier's users in the portal; `user` sees their own details. "
        "Null without an account."
    )
    portal: str = Field(description="`NOT_INVITED`, `INVITED` or `SIGNED_IN` (signed in to the portal once).")
    mobile_app: str = Field(
        description="`NOT_INVITED`, `INVITED` or `SIGNED_IN` (signed in to the app once)."
    )
    must_change_password: bool = Field(
        description="A forced reset: the next sign-in must set a new password."
    )
    invited_at: datetime | None
    first_sign_in_at: datetime | None
    last_sign_in_at: datetime | None
    portal_offered: bool = Field(description="The occupier offers the portal (it can be invited to).")
    mobile_app_offered: bool = Field(description="The occupier offers the mobile app.")

    @classmethod
    def of(cls, user: OccupierUser, account: AppAccount | None) -> AccountOut:
        occupier = user.occupier
        common = {
            "user_id": user.id,
            "portal_offered": occupier.portal_offered,
            "mobile_app_offered": occupier.mobile_app_offered,
        }
        if account is None:
            return cls(
                **common,
                status=AccountStatus.NOT_INVITED.value,
                role=None,
                portal=InviteState.NOT_INVITED.value,
                mobile_app=InviteState.NOT_INVITED.value,
                must_change_password=False,
                invited_at=None,
                first_sign_in_at=None,
                last_sign_in_at=None,
            )
        return cls(
            **common,
            status=str(account.status),
            role=str(account.role),  # AccountRole values are the literals
            portal=str(account.portal),
            mobile_app=str(account.mobile_app),
            must_change_password=account.must_change_password,
            invited_at=account.invited_at,
            first_sign_in_at=account.first_sign_in_at,
            last_sign_in_at=account.last_sign_in_at,
        )


class AccountSetUp(BaseModel):
    """Set the role and invite to apps. Apps already invited stay as they are; unticking does not uninvite."""

    model_config = ConfigDict(extra="forbid")

    role: RoleName
    invite_portal: StrictBool = Field(default=False, description="Invite to the portal (if not yet invited).")
    invite_mobile_app: StrictBool = Field(
        default=False, description="Invite to the mobile app (if not yet invited)."
    )


# --- the mobile app -------------------------------------------------------------------------------------


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class TokenOut(BaseModel):
    """Send ``access_token`` as ``Authorization: Bearer …``; when it expires, trade ``refresh_token`` for a
    new pair at ``/auth/refresh`` (each refresh token works once)."""

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class MeAccountOut(BaseModel):
    role: RoleName
    status: str
    portal: str
    mobile_app: str


class MeDeviceOut(BaseModel):
    mac_address: str | None
    site: SiteRef | None = Field(description="Where the device is connected, when the access point is known.")
    started_at: datetime | None

    @classmethod
    def of(cls, device: ConnectedDevice) -> MeDeviceOut:
        site = SiteRef.model_validate(device.site) if device.site is not None else None
        return cls(mac_address=device.mac_address, site=site, started_at=device.started_at)


class MeWifiOut(BaseModel):
    status: str = Field(description="`PROVISIONING`, `ACTIVE` or `DEACTIVATED`.")
    username: str
    homesite: SiteRef | None
    device_limit: int
    devices: list[MeDeviceOut] = Field(description="Devices connected now, newest first.")

    @classmethod
    def of(cls, account: WifiAccount, homesite: Site | None, devices: list[ConnectedDevice]) -> MeWifiOut:
        return cls(
            status=str(account.status),
            username=account.username,
            homesite=SiteRef.model_validate(homesite) if homesite is not None else None,
            device_limit=account.device_limit,
            devices=[MeDeviceOut.of(d) for d in devices],
        )


class MeOut(BaseModel):
    """The signed-in user's own details, app account and Wi-Fi Secure account (``wifi`` null without one)."""

    id: int
    occupier_id: int
    occupier_name: str
    first_name: str
    last_name: str
    email: str
    job_title: str | None
    mobile: str | None
    direct_line: str | None
    language: str
    account: MeAccountOut
    wifi: MeWifiOut | None

    @classmethod
    def of(cls, user: OccupierUser, account: AppAccount, wifi: MeWifiOut | None) -> MeOut:
        return cls(
            id=user.id,
            occupier_id=user.occupier_id,
            occupier_name=user.occupier.name,
            first_name=user.first_name,
            last_name=user.last_name,
            email=user.email,
            job_title=user.job_title,
            mobile=user.mobile,
            direct_line=user.direct_line,
            language=user.language,
            account=MeAccountOut(
                role=str(account.role),
                status=str(account.status),
                portal=str(account.portal),
                mobile_app=str(account.mobile_app),
            ),
            wifi=wifi,
        )
