"""The one place that turns "who is asking" into query filters and permission checks.

Every read of a tenant object goes through these helpers; an object outside the actor's scope is
reported as not found, never as forbidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, select
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor, Role
from occupant.kit.errors import NotFound, PermissionDenied
from occupant.kit.idlists import one_of
from occupant.occupiers.models import Occupier, occupier_sites
from occupant.sites.models import Site
from occupant.users.models import OccupierUser


class Perm(StrEnum):
    MANAGE_SITES = "manage_sites"
    MANAGE_OCCUPIERS = "manage_occupiers"
    DECOMMISSION = "decommission"
    MANAGE_USERS = "manage_users"
    EXPORT_USERS = "export_users"
    CHANGE_EMAIL = "change_email"
    MANAGE_OPERATOR_GROUPS = "manage_operator_groups"
    MANAGE_OCCUPIER_GROUPS = "manage_occupier_groups"
    VIEW_AUDIT = "view_audit"
    MANAGE_API_KEYS = "manage_api_keys"
    MANAGE_STAFF = "manage_staff"
    VIEW_MAILBOX = "view_mailbox"


_GRANTS: dict[Role, frozenset[Perm]] = {
    Role.OPERATOR_ADMIN: frozenset(Perm),
    Role.SITE_MANAGER: frozenset(
        {
            Perm.MANAGE_USERS,
            Perm.EXPORT_USERS,
            Perm.CHANGE_EMAIL,
            Perm.MANAGE_OCCUPIER_GROUPS,
            Perm.VIEW_AUDIT,
        }
    ),
    Role.OCCUPIER_ADMIN: frozenset(
        {Perm.MANAGE_USERS, Perm.EXPORT_USERS, Perm.MANAGE_OCCUPIER_GROUPS, Perm.VIEW_AUDIT}
    ),
    Role.OCCUPIER_USER: frozenset(),
}


def can(actor: Actor, perm: Perm) -> bool:
    return perm in _GRANTS[actor.role]


def require(actor: Actor, perm: Perm) -> None:
    if not can(actor, perm):
        raise PermissionDenied()


def occupier_filter(actor: Actor) -> ColumnElement[bool]:
    """Occupiers the actor may see."""
    clause = Occupier.operator_id == actor.operator_id
    if actor.role is Role.SITE_MANAGER:
        if not actor.site_ids:
            return false()
        at_my_sites = select(occupier_sites.c.occupier_id).where(occupier_sites.c.site_id.in_(actor.site_ids))
        return and_(clause, Occupier.id.in_(at_my_sites))
    if actor.role in (Role.OCCUPIER_ADMIN, Role.OCCUPIER_USER):
        return and_(clause, Occupier.id == actor.occupier_id)
    return clause


def user_filter(actor: Actor) -> ColumnElement[bool]:
    """Occupier users the actor may see."""
    clause = OccupierUser.operator_id == actor.operator_id
    if actor.role is Role.SITE_MANAGER:
        if not actor.site_ids:
            return false()
        at_my_sites = select(occupier_sites.c.occupier_id).where(occupier_sites.c.site_id.in_(actor.site_ids))
        return and_(clause, OccupierUser.occupier_id.in_(at_my_sites))
    if actor.role is Role.OCCUPIER_ADMIN:
        return and_(clause, OccupierUser.occupier_id == actor.occupier_id)
    if actor.role is Role.OCCUPIER_USER:
        return and_(clause, OccupierUser.id == actor.id)
    return clause


def site_filter(actor: Actor) -> ColumnElement[bool]:
    clause = Site.operator_id == actor.operator_id
    if actor.role is Role.SITE_MANAGER:
        return and_(clause, Site.id.in_(actor.site_ids or [-1]))
    return clause


def _one(session: Session, stmt: Select[Any], for_update: bool) -> Any:
    if for_update:
        # Lock only the row asked for: PostgreSQL refuses FOR UPDATE on the outer-joined eager loads.
        stmt = stmt.with_for_update(of=stmt.column_descriptions[0]["entity"])
    obj = session.scalars(stmt).first()
    if obj is None:
        raise NotFound()
    return obj


def get_occupier(session: Session, actor: Actor, occupier_id: int, *, for_update: bool = False) -> Occupier:
    stmt = select(Occupier).where(Occupier.id == occupier_id, occupier_filter(actor))
    return _one(session, stmt, for_update)


def get_user(session: Session, actor: Actor, user_id: int, *, for_update: bool = False) -> OccupierUser:
    stmt = select(OccupierUser).where(OccupierUser.id == user_id, user_filter(actor))
    return _one(session, stmt, for_update)


def get_site(session: Session, actor: Actor, site_id: int) -> Site:
    stmt = select(Site).where(Site.id == site_id, Site.operator_id == actor.operator_id)
    return _one(session, stmt, False)


def visible_user_ids(
    session: Session, actor: Actor, user_ids: Sequence[int], *, chunk: int = 5_000
) -> set[int]:
    """Which of these users the actor may see (the many-user actions' scope check, a query per ``chunk``
    ids): a user missing from the answer is "not found" to the actor."""
    ids = sorted(set(user_ids))
    found: set[int] = set()
    for start in range(0, len(ids), chunk):
        stmt = select(OccupierUser.id).where(
            one_of(session, OccupierUser.id, ids[start : start + chunk]), user_filter(actor)
        )
        found.update(session.scalars(stmt))
    return found
