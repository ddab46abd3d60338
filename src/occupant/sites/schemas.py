from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Code = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_upper=True,
        min_length=1,
        max_length=20,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
    ),
]
Nas = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Vlan = Annotated[int, Field(ge=1, le=4094, description="An IEEE 802.1Q VLAN id, 1 to 4094.")]


class SiteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    country: Annotated[
        str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=2, max_length=2)
    ]
    nas_identifiers: list[Nas] = Field(default_factory=list)
    wifi_vlan: Vlan = Field(default=100, description="The Wi-Fi Secure VLAN of users whose homesite this is.")
    guest_vlan: Vlan = Field(default=900, description="The VLAN of users whose homesite is elsewhere.")


class SiteUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    country: (
        Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=2, max_length=2)]
        | None
    ) = None
    nas_identifiers: list[Nas] | None = None
    wifi_vlan: Vlan | None = None
    guest_vlan: Vlan | None = None


class SiteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    country: str
    nas_identifiers: list[str]
    wifi_vlan: int
    guest_vlan: int
