"""Access groups: operator groups per site, and each occupier's own groups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from occupant.audit.service import record
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, get_occupier, get_site, require, user_filter
from occupant.groups.models import AccessGroup, group_members
from occupant.kit.bulkwrite import insert_rows
from occupant.kit.clock import utcnow
from occupant.kit.db import flush_in_savepoint
from occupant.kit.errors import FieldErrors, NotFound
from occupant.kit.idlists import one_of
from occupant.occupiers.models import Occupier, occupier_sites
from occupant.users.models import OccupierUser


def groups_available_to(occupier: Occupier) -> ColumnElement[bool]:
    """Clause: the groups an occupier's users may join (its sites' groups and its own)."""
    site_ids = select(occupier_sites.c.site_id).where(occupier_sites.c.occupier_id == occupier.id)
    return and_(
        AccessGroup.operator_id == occupier.operator_id,
        or_(AccessGroup.occupier_id == occupier.id, AccessGroup.site_id.in_(site_ids)),
    )


def list_available(session: Session, occupier: Occupier) -> Sequence[AccessGroup]:
    stmt = select(AccessGroup).where(groups_available_to(occupier)).order_by(AccessGroup.name, AccessGroup.id)
    return session.scalars(stmt).all()


def resolve_groups_for(session: Session, occupier: Occupier, group_ids: Iterable[int]) -> list[AccessGroup]:
    wanted = sorted(set(group_ids))
    if not wanted:
        return []
    found = session.scalars(
        select(AccessGroup).where(AccessGroup.id.in_(wanted), groups_available_to(occupier))
    ).all()
    missing = sorted(set(wanted) - {g.id for g in found})
    if missing:
        raise FieldErrors.single(
            "group_ids",
            "invalid_group",
            f"Unknown group, or not available to this occupier: {', '.join(map(str, missing))}.",
        )
    return list(found)


def available_by_name(session: Session, occupier: Occupier) -> dict[str, list[int]]:
    """The ids of the groups the occupier's users may join, by lower-cased name (the names a CSV gives:
    a site's group and the occupier's own may share one)."""
    found: dict[str, list[int]] = {}
    for group_id, name in session.execute(
        select(AccessGroup.id, AccessGroup.name).where(groups_available_to(occupier)).order_by(AccessGroup.id)
    ):
        found.setdefault(name.strip().lower(), []).append(group_id)
    return found


def add_memberships_many(session: Session, memberships: Iterable[tuple[int, int]]) -> None:
    """Add many (group id, user id) memberships with one bulk write (new users' groups, already checked)."""
    insert_rows(session, group_members, ("group_id", "user_id"), memberships)


def user_group_ids(session: Session, user_id: int) -> list[int]:
    return list(session.scalars(select(group_members.c.group_id).where(group_members.c.user_id == user_id)))


def add_memberships(session: Session, user: OccupierUser, group_list: Iterable[AccessGroup]) -> None:
    rows = [{"group_id": g.id, "user_id": user.id} for g in group_list]
    if rows:
        session.execute(insert(group_members), rows)


def remove_all_memberships(session: Session, user_id: int) -> None:
    session.execute(delete(group_members).where(group_members.c.user_id == user_id))


# Users per statement in :func:`remove_memberships_of`: well under both databases' parameter limits.
MEMBERSHIP_CHUNK = 5_000


def remove_memberships_of(session: Session, user_ids: Sequence[int]) -> dict[int, list[int]]:
    """Take these users out of every group they are in, one DELETE per 5,000 users. Returns the groups
    each user left (user id -> sorted group ids; users who were in none are absent). No audit event: the
    caller records what it did (``user.groups_changed``, or the user's deletion)."""
    ids = sorted(set(user_ids))
    left: dict[int, list[int]] = {}
    for start in range(0, len(ids), MEMBERSHIP_CHUNK):
        rows = session.execute(
            delete(group_members)
            .where(one_of(session, group_members.c.user_id, ids[start : start + MEMBERSHIP_CHUNK]))
            .returning(group_members.c.user_id, group_members.c.group_id)
        )
        for user_id, group_id in rows:
            left.setdefault(user_id, []).append(group_id)
    for groups in left.values():
        groups.sort()
    return left


def set_user_groups(
    session: Session, user: OccupierUser, group_ids: Iterable[int], *, actor: Actor
) -> list[int]:
    """Make the user a member of exactly these groups. Returns the new list of group ids."""
    from occupant.users.service import ensure_changeable

    require(actor, Perm.MANAGE_USERS)
    ensure_changeable(user)
    wanted = {g.id for g in resolve_groups_for(session, user.occupier, group_ids)}
    current = set(user_group_ids(session, user.id))
    added, removed = wanted - current, current - wanted
    if removed:
        session.execute(
            delete(group_members).where(
                group_members.c.user_id == user.id, group_members.c.group_id.in_(removed)
            )
        )
    if added:
        session.execute(insert(group_members), [{"group_id": g, "user_id": user.id} for g in sorted(added)])
    if added or removed:
        user.updated_at = utcnow()  # a new version: the user's ETag covers its groups
        session.flush()
        record(
            session,
            actor=actor,
            action="user.groups_changed",
            target_type="occupier_user",
            target_id=user.id,
            occupier_id=user.occupier_id,
            fields=["groups"],
            changes={"added": sorted(added), "removed": sorted(removed)},
        )
    return sorted(wanted)


def get_group(session: Session, actor: Actor, group_id: int) -> AccessGroup:
    group = session.get(AccessGroup, group_id)
    if group is None or group.operator_id != actor.operator_id:
        raise NotFound()
    if group.occupier_id is not None:
        get_occupier(session, actor, group.occupier_id)  # raises NotFound outside the actor's scope
    elif not actor.is_operator_staff:
        raise NotFound()
    return group


def create_group(
    session: Session,
    *,
    actor: Actor,
    name: str,
    site_id: int | None = None,
    occupier_id: int | None = None,
    description: str | None = None,
) -> AccessGroup:
    """Create an operator group for a site, or an occupier's own group (exactly one of the two)."""
    name = (name or "").strip()
    errors = []
    if not name:
        errors.append({"field": "name", "code": "required", "message": "Name is required."})
    elif len(name) > 120:
        errors.append(
            {"field": "name", "code": "too_long", "message": "Name must be at most 120 characters."}
        )
    if (site_id is None) == (occupier_id is None):
        errors.append(
            {
                "field": "site_id",
                "code": "invalid_scope",
                "message": "A group belongs to exactly one site or one occupier.",
            }
        )
    if errors:
        raise FieldErrors(errors)
    if site_id is not None:
        require(actor, Perm.MANAGE_OPERATOR_GROUPS)
        get_site(session, actor, site_id)
        scope_key = f"site:{site_id}"
    else:
        assert occupier_id is not None
        require(actor, Perm.MANAGE_OCCUPIER_GROUPS)
        get_occupier(session, actor, occupier_id)
        scope_key = f"occupier:{occupier_id}"
    group = AccessGroup(
        operator_id=actor.operator_id,
        site_id=site_id,
        occupier_id=occupier_id,
        scope_key=scope_key,
        name=name,
        description=(description or None),
    )
    try:
        flush_in_savepoint(session, group)
    except IntegrityError as exc:
        raise FieldErrors.single("name", "name_taken", "A group with this name already exists here.") from exc
    record(
        session,
        actor=actor,
        action="group.created",
        target_type="access_group",
        target_id=group.id,
        occupier_id=occupier_id,
        fields=["name"],
    )
    return group


def _require_group_admin(actor: Actor, group: AccessGroup) -> None:
    require(actor, Perm.MANAGE_OPERATOR_GROUPS if group.site_id is not None else Perm.MANAGE_OCCUPIER_GROUPS)


def rename_group(session: Session, group: AccessGroup, name: str, *, actor: Actor) -> AccessGroup:
    _require_group_admin(actor, group)
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise FieldErrors.single("name", "invalid", "Name is required, at most 120 characters.")
    if name != group.name:
        group.name = name
        try:
            flush_in_savepoint(session, changed=(group,))
        except IntegrityError as exc:
            raise FieldErrors.single(
                "name", "name_taken", "A group with this name already exists here."
            ) from exc
        record(
            session,
            actor=actor,
            action="group.renamed",
            target_type="access_group",
            target_id=group.id,
            occupier_id=group.occupier_id,
            fields=["name"],
        )
    return group


def delete_group(session: Session, group: AccessGroup, *, actor: Actor) -> None:
    _require_group_admin(actor, group)
    group_id, occupier_id = group.id, group.occupier_id
    session.execute(delete(group_members).where(group_members.c.group_id == group_id))
    session.delete(group)
    session.flush()
    record(
        session,
        actor=actor,
        action="group.deleted",
        target_type="access_group",
        target_id=group_id,
        occupier_id=occupier_id,
    )


def group_member_ids(session: Session, group_id: int) -> list[int]:
    return list(session.scalars(select(group_members.c.user_id).where(group_members.c.group_id == group_id)))


def set_group_members(
    session: Session, group: AccessGroup, user_ids: Iterable[int], *, actor: Actor
) -> list[int]:
    """Make exactly these users (visible to the actor, of occupiers that may join) the group's members."""
    from occupant.users.service import ensure_changeable

    require(actor, Perm.MANAGE_USERS)
    wanted = set(user_ids)
    users = session.scalars(select(OccupierUser).where(OccupierUser.id.in_(wanted), user_filter(actor))).all()
    found = {u.id: u for u in users}
    errors = [
        {"field": "user_ids", "code": "not_found", "message": f"User {uid} not found."}
        for uid in sorted(wanted - set(found))
    ]
    for user in users:
        if not session.scalar(
            select(AccessGroup.id).where(AccessGroup.id == group.id, groups_available_to(user.occupier))
        ):
            errors.append(
                {
                    "field": "user_ids",
                    "code": "invalid_group",
                    "message": f"User {user.id}'s occupier cannot join this group.",
                }
            )
    if errors:
        raise FieldErrors(errors)
    current = set(group_member_ids(session, group.id))
    visible_current = set(
        session.scalars(select(OccupierUser.id).where(OccupierUser.id.in_(current), user_filter(actor)))
    )
    added, removed = wanted - current, visible_current - wanted
    for uid in added | removed:
        member = found.get(uid) or session.get(OccupierUser, uid)
        if member is not None:
            ensure_changeable(member)
    if removed:
        session.execute(
            delete(group_members).where(
                group_members.c.group_id == group.id, group_members.c.user_id.in_(removed)
            )
        )
    if added:
        session.execute(insert(group_members), [{"group_id": group.id, "user_id": u} for u in sorted(added)])
    if added or removed:
        record(
            session,
            actor=actor,
            action="group.members_changed",
            target_type="access_group",
            target_id=group.id,
            occupier_id=group.occupier_id,
            fields=["members"],
            changes={"added": sorted(added), "removed": sorted(removed)},
        )
    return sorted((current - removed) | added)
