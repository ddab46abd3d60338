"""Edit a selection of users (seed 000's dialog "move on to select the changes"): Wi-Fi and app account.

Only what the admin set is applied, through the single actions, in this order: Wi-Fi (create, or
deactivate / activate, homesite, device limit), then the app account (role, invitations, deactivate /
activate).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from occupant.accounts import service as accounts
from occupant.accounts.models import AccountRole
from occupant.authz.actor import Actor
from occupant.bulk.kinds.base import UserKind
from occupant.users.models import OccupierUser
from occupant.wifi import service as wifi
from occupant.wifi.models import WifiStatus


class EditParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wifi: Literal["create", "activate", "deactivate"] | None = None
    wifi_homesite_id: int | None = Field(default=None, ge=1)
    wifi_device_limit: int | None = Field(default=None, ge=1)
    role: AccountRole | None = None
    invite_portal: bool = False
    invite_mobile_app: bool = False
    account: Literal["activate", "deactivate"] | None = None

    @model_validator(mode="after")
    def _something_to_do(self) -> EditParams:
        if not (
            self.wifi
            or self.wifi_homesite_id
            or self.wifi_device_limit
            or self.role
            or self.invite_portal
            or self.invite_mobile_app
            or self.account
        ):
            raise ValueError("Choose at least one change to apply.")
        if self.wifi == "create" and self.wifi_homesite_id is None:
            raise ValueError("A new Wi-Fi account needs a homesite (wifi_homesite_id).")
        return self


class EditKind(UserKind):
    name = "edit"
    title = "Edit users"
    outcome = "updated"
    chunk_size = 500
    params_model: ClassVar[type[BaseModel] | None] = EditParams

    def each(self, session: Session, user: OccupierUser, params: Any, actor: Actor) -> object:
        p: EditParams = params
        if p.wifi == "create":
            wifi.create_wifi_account(
                session,
                user,
                homesite_id=p.wifi_homesite_id or 0,
                device_limit=p.wifi_device_limit,
                actor=actor,
            )
        elif p.wifi or p.wifi_homesite_id or p.wifi_device_limit:
            status = {"activate": WifiStatus.ACTIVE, "deactivate": WifiStatus.DEACTIVATED}.get(p.wifi or "")
            wifi.update_wifi_account(
                session,
                user,
                status=status,
                homesite_id=p.wifi_homesite_id,
                device_limit=p.wifi_device_limit,
                actor=actor,
            )
        if p.role or p.invite_portal or p.invite_mobile_app:
            current = accounts.account_of(session, user)
            role = p.role or (current.role if current is not None else AccountRole.USER)
            accounts.set_up_account(
                session,
                user,
                role=role,
                invite_portal=p.invite_portal,
                invite_mobile_app=p.invite_mobile_app,
                actor=actor,
            )
        if p.account == "deactivate":
            accounts.deactivate_account(session, user, actor=actor)
        elif p.account == "activate":
            accounts.activate_account(session, user, actor=actor)
        return "updated"
