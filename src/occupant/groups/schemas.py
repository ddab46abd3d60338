"""Input and output shapes for access groups and their members."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

GroupName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
RecordId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class GroupCreate(BaseModel):
    """A site's operator group (``site_id``) or an occupier's own group (``occupier_id``): exactly one."""

    model_config = ConfigDict(extra="forbid")

    name: GroupName
    site_id: RecordId | None = None
    occupier_id: RecordId | None = None
    description: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=500)] = None


class GroupRename(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: GroupName


class GroupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str = Field(description="`site` (an operator group of a site) or `occupier` (an occupier's own).")
    site_id: int | None
    occupier_id: int | None
    description: str | None
    external_id: str | None
    created_at: datetime
    updated_at: datetime


class GroupIds(BaseModel):
    """The complete list of a user's groups (PUT replaces it)."""

    model_config = ConfigDict(extra="forbid")

    group_ids: list[RecordId] = Field(max_length=1000)


class MemberIds(BaseModel):
    """The complete list of a group's members (PUT replaces those the caller can see)."""

    model_config = ConfigDict(extra="forbid")

    user_ids: list[RecordId] = Field(max_length=10000)


class UserGroupsOut(BaseModel):
    group_ids: list[int]


class MembersOut(BaseModel):
    user_ids: list[int]
