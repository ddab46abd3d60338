"""Actions on sites: buildings with a country and the RADIUS NAS identifiers of their access points."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from occupant.audit.service import record
from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, require
from occupant.kit.clock import utcnow
from occupant.kit.db import flush_in_savepoint
from occupant.kit.errors import Conflict, FieldErrors, PreconditionFailed
from occupant.kit.validation import check_country
from occupant.occupiers.models import occupier_sites
from occupant.radius import sync
from occupant.sites.models import Site, SiteNas
from occupant.sites.schemas import SiteCreate, SiteUpdate


def _check_nas(session: Session, operator_id: int, identifiers: list[str], site_id: int | None) -> list[str]:
    unique = list(dict.fromkeys(identifiers))
    if not unique:
        return unique
    # Unique across operators too: FreeRADIUS knows a request's site only by its NAS-Identifier.
    stmt = select(SiteNas.identifier, SiteNas.operator_id).where(SiteNas.identifier.in_(unique))
    if site_id is not None:
        stmt = stmt.where(SiteNas.site_id != site_id)
    rows = session.execute(stmt).all()
    if rows:
        # Another operator's identifiers are named but not its site.
        ours = sorted(i for i, owner in rows if owner == operator_id)
        theirs = sorted(i for i, owner in rows if owner != operator_id)
        parts = [f"already used by another site: {', '.join(ours)}"] if ours else []
        if theirs:
            parts.append(
                f"already registered on this RADIUS service by another operator: {', '.join(theirs)}"
            )
        raise FieldErrors.single("nas_identifiers", "nas_taken", "NAS identifier " + "; ".join(parts) + ".")
    return unique


def _check_vlans(wifi_vlan: int, guest_vlan: int) -> list[dict[str, str]]:
    if wifi_vlan == guest_vlan:
        message = "The guest VLAN must differ from the Wi-Fi Secure VLAN, which guests must not join."
        return [{"field": "guest_vlan", "code": "same_vlan", "message": message}]
    return []


def create_site(session: Session, data: SiteCreate, *, actor: Actor) -> Site:
    """Create a site. Raises FieldErrors (code_taken, invalid_country, nas_taken, same_vlan)."""
    require(actor, Perm.MANAGE_SITES)
    errors = _check_vlans(data.wifi_vlan, data.guest_vlan)
    try:
        country = check_country(data.country)
    except FieldErrors as exc:
        errors.extend(exc.errors)
    if session.scalar(select(Site.id).where(Site.operator_id == actor.operator_id, Site.code == data.code)):
        errors.append(
            {"field": "code", "code": "code_taken", "message": "A site with this code already exists."}
        )
    try:
        nas = _check_nas(session, actor.operator_id, data.nas_identifiers, None)
    except FieldErrors as exc:
        errors.extend(exc.errors)
    if errors:
        raise FieldErrors(errors)
    site = Site(
        operator_id=actor.operator_id,
        code=data.code,
        name=data.name,
        country=country,
        wifi_vlan=data.wifi_vlan,
        guest_vlan=data.guest_vlan,
    )
    site.nas = [SiteNas(operator_id=actor.operator_id, identifier=i) for i in nas]
    try:
        flush_in_savepoint(session, site)
    except IntegrityError as exc:
        raise FieldErrors.single("code", "code_taken", "A site with this code already exists.") from exc
    sync.sync_site(session, site)
    record(
        session,
        actor=actor,
        action="site.created",
        target_type="site",
        target_id=site.id,
        fields=["code", "name", "country", "nas_identifiers", "wifi_vlan", "guest_vlan"],
        changes={
            "code": [None, site.code],
            "country": [None, site.country],
            "wifi_vlan": [None, site.wifi_vlan],
            "guest_vlan": [None, site.guest_vlan],
        },
    )
    return site


def update_site(
    session: Session, site: Site, data: SiteUpdate, *, actor: Actor, expected_version: int | None = None
) -> Site:
    """Change a site; new NAS identifiers and VLANs reach RADIUS at once.

    Raises FieldErrors (invalid_country, nas_taken, same_vlan), PreconditionFailed.
    """
    require(actor, Perm.MANAGE_SITES)
    if expected_version is not None and expected_version != site.version_id:
        raise PreconditionFailed()
    values = data.model_dump(exclude_unset=True)
    changes: dict[str, list[object]] = {}
    wifi_vlan = values.get("wifi_vlan") or site.wifi_vlan
    guest_vlan = values.get("guest_vlan") or site.guest_vlan
    if vlan_errors := _check_vlans(wifi_vlan, guest_vlan):
        raise FieldErrors(vlan_errors)
    for name, vlan in (("wifi_vlan", wifi_vlan), ("guest_vlan", guest_vlan)):
        if vlan != getattr(site, name):
            changes[name] = [getattr(site, name), vlan]
            setattr(site, name, vlan)
    if values.get("name") is not None and values["name"] != site.name:
        changes["name"] = [site.name, values["name"]]
        site.name = values["name"]
    if values.get("country") is not None:
        country = check_country(values["country"])
        if country != site.country:
            changes["country"] = [site.country, country]
            site.country = country
    if values.get("nas_identifiers") is not None:
        nas = _check_nas(session, site.operator_id, values["nas_identifiers"], site.id)
        if nas != site.nas_identifiers:
            changes["nas_identifiers"] = [site.nas_identifiers, nas]
            keep = {n.identifier: n for n in site.nas if n.identifier in nas}
            site.nas = [keep.get(i) or SiteNas(operator_id=site.operator_id, identifier=i) for i in nas]
    if changes:
        site.updated_at = utcnow()  # a change of NAS identifiers alone must also bump the version (the ETag)
        session.flush()
        sync.sync_site(session, site)
        record(
            session,
            actor=actor,
            action="site.updated",
            target_type="site",
            target_id=site.id,
            fields=list(changes),
            changes=changes,
        )
    return site


def delete_site(session: Session, site: Site, *, actor: Actor) -> None:
    """Delete a site no occupier uses. Raises Conflict(site_in_use) otherwise."""
    require(actor, Perm.MANAGE_SITES)
    if session.scalar(
        select(occupier_sites.c.occupier_id).where(occupier_sites.c.site_id == site.id).limit(1)
    ):
        err = Conflict("Occupiers still have access to this site; remove it from them first.")
        err.code = "site_in_use"
        raise err
    site_id = site.id
    sync.remove_site(session, site)
    session.delete(site)
    session.flush()
    record(session, actor=actor, action="site.deleted", target_type="site", target_id=site_id)
