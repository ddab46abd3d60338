"""Who is acting: a staff member, an API key, a SCIM client, an occupier user or the system."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ActorKind(StrEnum):
    STAFF = "staff"
    API_KEY = "api_key"
    SCIM = "scim"
    OCCUPIER_USER = "occupier_user"
    SYSTEM = "system"


class Role(StrEnum):
    OPERATOR_ADMIN = "operator_admin"
    SITE_MANAGER = "site_manager"
    OCCUPIER_ADMIN = "occupier_admin"
    OCCUPIER_USER = "occupier_user"


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: int | None
    operator_id: int
    role: Role
    site_ids: frozenset[int] = field(default_factory=frozenset)
    occupier_id: int | None = None

    @property
    def is_operator_admin(self) -> bool:
        return self.role is Role.OPERATOR_ADMIN

    @property
    def is_operator_staff(self) -> bool:
        return self.role in (Role.OPERATOR_ADMIN, Role.SITE_MANAGER)

    @property
    def audit_id(self) -> str | None:
        return None if self.id is None else str(self.id)

    @classmethod
    def system(cls, operator_id: int) -> Actor:
        return cls(kind=ActorKind.SYSTEM, id=None, operator_id=operator_id, role=Role.OPERATOR_ADMIN)
