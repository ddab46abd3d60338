"""Actions on occupiers: create, change, and decommission."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from occupant.audit.service import record
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, require
from occupant.kit.clock import utcnow
from occupant.kit.db import flush_in_savepoint, on_commit
from occupant.kit.errors import FieldErrors, InvalidState, PreconditionFailed
from occupant.occupiers.models import Occupier, OccupierState
from occupant.occupiers.schemas import OccupierCreate, OccupierUpdate
from occupant.sites.models import Site

_AUDITED = (
    "name",
    "telephony_managed",
    "portal_offered",
    "mobile_app_offered",
    "default_wifi_device_limit",
    "primary_site_id",
)


def _resolve_sites(session: Session, actor: Actor, site_ids: list[int]) -> list[Site]:
    wanted = sorted(set(site_ids))
    sites = list(
        session.scalars(select(Site).where(Site.operator_id == actor.operator_id, Site.id.in_(wanted)))
    )
    missing = sorted(set(wanted) - {s.id for s in sites})
    if missing:
        raise FieldErrors.single("site_ids", "invalid_site", f"Unknown site: {', '.join(map(str, missing))}.")
    return sorted(sites, key=lambda s: s.code)


def _check_primary(primary_site_id: int | None, sites: list[Site]) -> int | None:
    if primary_site_id is None:
        return sites[0].id if sites else None
    if primary_site_id not in {s.id for s in sites}:
        raise FieldErrors.single(
            "primary_site_id", "invalid_site", "The primary site must be one of the occupier's sites."
        )
    return primary_site_id


def _flush_name(session: Session, occupier: Occupier, *, new: bool) -> None:
    try:
        if new:
            flush_in_savepoint(session, occupier)
        else:
            flush_in_savepoint(session, changed=(occupier,))
    except IntegrityError as exc:
        raise FieldErrors.single("name", "name_taken", "An occupier with this name already exists.") from exc


def create_occupier(session: Session, data: OccupierCreate, *, actor: Actor) -> Occupier:
    """Create an ACTIVE occupier with access to the given sites. Raises FieldErrors."""
    require(actor, Perm.MANAGE_OCCUPIERS)
    sites = _resolve_sites(session, actor, data.site_ids)
    primary = _check_primary(data.primary_site_id, sites)
    if session.scalar(
        select(Occupier.id).where(Occupier.operator_id == actor.operator_id, Occupier.name == data.name)
    ):
        raise FieldErrors.single("name", "name_taken", "An occupier with this name already exists.")
    occupier = Occupier(
        operator_id=actor.operator_id,
        name=data.name,
        sort_key=data.name.lower(),
        state=OccupierState.ACTIVE,
        telephony_managed=data.telephony_managed,
        portal_offered=data.portal_offered,
        mobile_app_offered=data.mobile_app_offered,
        default_wifi_device_limit=data.default_wifi_device_limit,
        primary_site_id=primary,
    )
    occupier.sites = sites
    _flush_name(session, occupier, new=True)
    record(
        session,
        actor=actor,
        action="occupier.created",
        target_type="occupier",
        target_id=occupier.id,
        occupier_id=occupier.id,
        fields=["name", "site_ids", *_AUDITED[1:]],
        changes={"state": [None, occupier.state]},
    )
    return occupier


def update_occupier(
    session: Session,
    occupier: Occupier,
    data: OccupierUpdate,
    *,
    actor: Actor,
    expected_version: int | None = None,
) -> Occupier:
    """Change an occupier's name, sites and switches. Raises FieldErrors, PreconditionFailed, InvalidState."""
    require(actor, Perm.MANAGE_OCCUPIERS)
    if occupier.is_decommissioning:
        raise InvalidState("A decommissioning or decommissioned occupier cannot be changed.")
    if expected_version is not None and expected_version != occupier.version_id:
        raise PreconditionFailed()
    values: dict[str, Any] = data.model_dump(exclude_unset=True)
    changes: dict[str, list[Any]] = {}
    sites = occupier.sites
    if values.get("site_ids") is not None:
        sites = _resolve_sites(session, actor, values.pop("site_ids"))
        old_ids, new_ids = [s.id for s in occupier.sites], [s.id for s in sites]
        if sorted(old_ids) != sorted(new_ids):
            changes["site_ids"] = [sorted(old_ids), sorted(new_ids)]
            occupier.sites = sites
    values.pop("site_ids", None)
    if "primary_site_id" in values or "site_ids" in changes:
        wanted = values.pop("primary_site_id", occupier.primary_site_id)
        if wanted not in {s.id for s in sites}:
            wanted = None if "primary_site_id" not in data.model_fields_set else wanted
        values["primary_site_id"] = _check_primary(wanted, sites)
    for key, value in values.items():
        if value is None:
            continue
        if getattr(occupier, key) != value:
            changes[key] = [getattr(occupier, key), value]
            setattr(occupier, key, value)
    if "name" in changes:
        occupier.sort_key = occupier.name.lower()
    if "site_ids" in changes or "primary_site_id" in changes:
        from occupant.wifi.service import on_occupier_sites_changed

        session.flush()
        on_occupier_sites_changed(session, occupier)
    if changes:
        occupier.updated_at = utcnow()  # a change of sites alone must also bump the version (the ETag)
        _flush_name(session, occupier, new=False)
        record(
            session,
            actor=actor,
            action="occupier.updated",
            target_type="occupier",
            target_id=occupier.id,
            occupier_id=occupier.id,
            fields=list(changes),
            changes=changes,
        )
    return occupier


def start_decommission(session: Session, occupier: Occupier, *, actor: Actor) -> Occupier:
    """Begin decommissioning: DECOMMISSION_PENDING at once, and a job deletes every user.

    Allowed from ACTIVE and, as a retry, from DECOMMISSION_FAILED. Raises InvalidState otherwise.
    """
    require(actor, Perm.DECOMMISSION)
    if occupier.state not in (OccupierState.ACTIVE, OccupierState.DECOMMISSION_FAILED):
        raise InvalidState(f"The occupier is {occupier.state}; it cannot be decommissioned now.")
    old = occupier.state
    occupier.state = OccupierState.DECOMMISSION_PENDING
    occupier.decommission_error = None
    occupier.decommission_started_at = utcnow()
    session.flush()
    action = (
        "occupier.decommission_retried"
        if old == OccupierState.DECOMMISSION_FAILED
        else "occupier.decommission_started"
    )
    record(
        session,
        actor=actor,
        action=action,
        target_type="occupier",
        target_id=occupier.id,
        occupier_id=occupier.id,
        fields=["state"],
        changes={"state": [old, occupier.state]},
    )
    occupier_id = occupier.id
    on_commit(session, lambda: _enqueue(occupier_id), key=("decommission", occupier_id))
    return occupier


def _enqueue(occupier_id: int) -> None:
    from occupant.worker.tasks import enqueue_decommission

    enqueue_decommission(occupier_id)
