from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

OccName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
RecordId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # within what either database can store


class OccupierCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: OccName
    site_ids: list[RecordId] = Field(min_length=1)
    primary_site_id: RecordId | None = None
    telephony_managed: bool = False
    portal_offered: bool = True
    mobile_app_offered: bool = True
    default_wifi_device_limit: int = Field(default=2, ge=1, le=100)


class OccupierUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: OccName | None = None
    site_ids: list[RecordId] | None = Field(default=None, min_length=1)
    primary_site_id: RecordId | None = None
    telephony_managed: bool | None = None
    portal_offered: bool | None = None
    mobile_app_offered: bool | None = None
    default_wifi_device_limit: int | None = Field(default=None, ge=1, le=100)


class OccupierOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    state: str
    site_ids: list[int]
    primary_site_id: int | None
    telephony_managed: bool
    portal_offered: bool
    mobile_app_offered: bool
    default_wifi_device_limit: int
    decommission_error: str | None
    created_at: datetime
    updated_at: datetime
