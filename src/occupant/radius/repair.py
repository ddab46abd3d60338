"""Rebuilding FreeRADIUS's rows from Occupant's state: a repair tool (`occupant radius sync`).

The Wi-Fi and site actions keep ``radcheck``, ``radreply``, ``radusergroup``, ``radgroupcheck`` and
``radgroupreply`` in step as they go (see ``radius.sync``). After a database restore, a hand edit or a
bug they may not be; ``rebuild`` writes them again from the sites and the Wi-Fi accounts, exactly as
the actions would, and removes rows that belong to no site or no usable account. Sessions
(``radacct``) and sign-in history (``radpostauth``) are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from occupant.occupiers.models import Occupier
from occupant.radius import sync
from occupant.radius.models import RadCheck, RadGroupCheck, RadGroupReply, RadReply, RadUserGroup
from occupant.sites.models import Site
from occupant.wifi.models import WifiAccount, WifiStatus

_USER_TABLES = (RadCheck, RadReply, RadUserGroup)
_GROUP_TABLES = (RadGroupCheck, RadGroupReply)


@dataclass(frozen=True)
class RebuildReport:
    sites: int  # sites whose home and guest groups were written
    live_accounts: int  # accounts RADIUS accepts (password, device limit, site groups)
    refused_accounts: int  # deactivated accounts: no rows, refused
    rows_before: int
    rows_after: int
    rows_differing: int  # rows that were missing, wrong or extra before the rebuild (0: all was well)


def _snapshot(session: Session) -> set[tuple[str, ...]]:
    """Every policy row as plain values (ids aside), to tell what a rebuild changed."""
    rows: set[tuple[str, ...]] = set()
    for user_table in (RadCheck, RadReply):
        columns = (user_table.username, user_table.attribute, user_table.op, user_table.value)
        rows |= {(user_table.__tablename__, *r) for r in session.execute(select(*columns))}
    members = select(RadUserGroup.username, RadUserGroup.groupname, RadUserGroup.priority)
    rows |= {("radusergroup", u, g, str(p)) for u, g, p in session.execute(members)}
    for group_table in _GROUP_TABLES:
        columns = (group_table.groupname, group_table.attribute, group_table.op, group_table.value)
        rows |= {(group_table.__tablename__, *r) for r in session.execute(select(*columns))}
    return rows


def _count(session: Session) -> int:
    from sqlalchemy import func

    return sum(
        session.scalar(select(func.count()).select_from(t)) or 0 for t in (*_USER_TABLES, *_GROUP_TABLES)
    )


def rebuild(session: Session) -> RebuildReport:
    """Rewrite every site's groups and every account's rows from Occupant's state (in the caller's
    transaction: roll it back for a dry run). Returns what was found and written."""
    rows_before = _count(session)
    before = _snapshot(session)

    sites = list(session.scalars(select(Site).order_by(Site.id)))
    for site in sites:
        sync.sync_site(session, site)
    groups = {name for site in sites for name in (sync.home_group(site), sync.guest_group(site))}
    for group_table in _GROUP_TABLES:
        session.execute(delete(group_table).where(group_table.groupname.not_in(groups)))

    occupiers = {o.id: o for o in session.scalars(select(Occupier))}
    site_by_id = {s.id: s for s in sites}
    live: list[str] = []
    refused = 0
    for account in session.scalars(select(WifiAccount).order_by(WifiAccount.id)):
        occupier = occupiers.get(account.occupier_id)
        homesite = site_by_id.get(account.homesite_id)
        nt_hash = account.nt_hash
        if (
            account.status == WifiStatus.DEACTIVATED
            or nt_hash is None
            or occupier is None
            or homesite is None
        ):
            sync.clear_credential(session, [account.username])
            refused += 1
            continue
        sync.write_credential(
            session,
            account.username,
            nt_hash=nt_hash,
            device_limit=account.device_limit,
            homesite=homesite,
            sites=occupier.sites,
        )
        live.append(account.username)
    usable = select(WifiAccount.username).where(
        WifiAccount.status != WifiStatus.DEACTIVATED, WifiAccount.nt_hash.is_not(None)
    )
    for user_table in _USER_TABLES:
        session.execute(delete(user_table).where(user_table.username.not_in(usable)))
    session.flush()

    after = _snapshot(session)
    return RebuildReport(
        sites=len(sites),
        live_accounts=len(live),
        refused_accounts=refused,
        rows_before=rows_before,
        rows_after=_count(session),
        rows_differing=len(before ^ after),
    )
