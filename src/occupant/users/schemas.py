"""Input and output shapes for occupier users."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
OptText = Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=200)]
RecordId = Annotated[int, Field(ge=1, le=2**63 - 1)]  # within what either database can store


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: Name
    last_name: Name
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]
    job_title: OptText = None
    mobile: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=40)] = None
    direct_line: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=40)] = None
    language: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=5)] = "en"
    employee_number: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=64)] = None
    username: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=128)] = None
    external_id: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=255)] = None
    group_ids: list[RecordId] = Field(default_factory=list)


class UserUpdate(BaseModel):
    """Only the fields that are set are changed. ``email`` changes go through the email-change action."""

    model_config = ConfigDict(extra="forbid")

    first_name: Name | None = None
    last_name: Name | None = None
    email: Annotated[str | None, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)] = (
        None
    )
    job_title: OptText = None
    mobile: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=40)] = None
    direct_line: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=40)] = None
    language: Annotated[str | None, StringConstraints(strip_whitespace=True, to_lower=True, max_length=5)] = (
        None
    )
    employee_number: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=64)] = None
    username: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=128)] = None
    external_id: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=255)] = None


class OwnDetailsUpdate(BaseModel):
    """An occupier user edits their own details (portal, mobile app). Only the fields that are set change;
    the email is not theirs to change."""

    model_config = ConfigDict(extra="forbid")

    first_name: Name | None = None
    last_name: Name | None = None
    job_title: OptText = None
    mobile: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=40)] = None
    direct_line: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=40)] = None
    language: Annotated[str | None, StringConstraints(strip_whitespace=True, to_lower=True, max_length=5)] = (
        None
    )


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occupier_id: int
    first_name: str
    last_name: str
    email: str
    job_title: str | None
    mobile: str | None
    direct_line: str | None
    language: str
    employee_number: str | None
    username: str | None
    external_id: str | None
    status: str
    busy: bool = False
    wifi_status: str | None = Field(
        default=None, description="`PROVISIONING`, `ACTIVE` or `DEACTIVATED`; null without a Wi-Fi account."
    )
    wifi_homesite_id: int | None = None
    wifi_device_limit: int | None = None
    account_status: str = Field(
        default="NOT_INVITED",
        description="App account: `NOT_INVITED`, `AWAITING_SIGN_IN`, `ACTIVE` or `DEACTIVATED`.",
    )
    account_role: str | None = Field(default=None, description="`admin` or `user`; null without an account.")
    account_portal: str = Field(default="NOT_INVITED", description="`NOT_INVITED`, `INVITED` or `SIGNED_IN`.")
    account_mobile_app: str = Field(
        default="NOT_INVITED", description="`NOT_INVITED`, `INVITED` or `SIGNED_IN`."
    )
    created_at: datetime
    updated_at: datetime


class UserDetailOut(UserOut):
    """One user, with the access groups they belong to."""

    group_ids: list[int]


class EmailChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]
