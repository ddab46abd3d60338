"""Reading Wi-Fi state for lists and details: a page of users' accounts, and a user's connected devices."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.sites.models import Site, SiteNas
from occupant.users.models import OccupierUser
from occupant.wifi import service
from occupant.wifi.models import WifiAccount


def accounts_by_user(session: Session, user_ids: Iterable[int]) -> dict[int, WifiAccount]:
    """The Wi-Fi accounts of these users (one query for a whole page), keyed by user id."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    return {a.user_id: a for a in session.scalars(select(WifiAccount).where(WifiAccount.user_id.in_(ids)))}


def homesite(session: Session, account: WifiAccount | None) -> Site | None:
    return session.get(Site, account.homesite_id) if account is not None else None


@dataclass(frozen=True)
class ConnectedDevice:
    """An open accounting session: a device connected now, and where."""

    id: int
    mac_address: str | None
    site: Site | None  # from the access point's NAS-Identifier, when it belongs to one of the sites
    nas_identifier: str | None
    nas_ip_address: str
    started_at: datetime | None

    @property
    def place(self) -> str:
        """The site's name, else the access point's IP address (a NAS that no site lists)."""
        if self.site is not None:
            return f"{self.site.name} ({self.site.code})"
        return self.nas_ip_address


def connected_devices(session: Session, user: OccupierUser) -> list[ConnectedDevice]:
    """The user's devices connected now, newest first, each with the site of its access point."""
    rows = service.connected_devices(session, user)
    identifiers = {r.nasidentifier for r in rows if r.nasidentifier}
    sites: dict[str, Site] = {}
    if identifiers:
        found = session.execute(
            select(SiteNas.identifier, Site)
            .join(Site, Site.id == SiteNas.site_id)
            .where(SiteNas.operator_id == user.operator_id, SiteNas.identifier.in_(identifiers))
        ).all()
        sites = {identifier: site for identifier, site in found}
    return [
        ConnectedDevice(
            id=r.radacctid,
            mac_address=r.callingstationid,
            site=sites.get(r.nasidentifier) if r.nasidentifier else None,
            nas_identifier=r.nasidentifier,
            nas_ip_address=r.nasipaddress,
            started_at=r.acctstarttime,
        )
        for r in rows
    ]
