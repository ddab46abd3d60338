"""Keeping FreeRADIUS's tables in step with Occupant's Wi-Fi state. Called by actions, in their transaction.

Policy as rows:
- ``radcheck``: ``NT-Password`` (serves PAP, MS-CHAPv2 and PEAP) and ``Simultaneous-Use`` (the device limit),
  only while the account is usable; no rows means RADIUS rejects.
- ``radusergroup``: ``home:<OPERATOR>:<SITE>`` for the homesite and ``guest:<OPERATOR>:<SITE>`` for the
  occupier's other sites (site codes are unique per operator only, and one FreeRADIUS serves them all).
- ``radgroupcheck``: each site group matches only requests whose NAS-Identifier is one of the site's.
- ``radgroupreply``: the site's secure VLAN (home) or guest VLAN (guest). A request from a NAS of no
  group of the user gets no VLAN, and the shipped FreeRADIUS policy rejects it (a site the occupier
  cannot access).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple, cast

from sqlalchemy import Table, delete, insert, update
from sqlalchemy.orm import Session

from occupant.kit.bulkwrite import insert_rows
from occupant.kit.db import Base
from occupant.kit.idlists import one_of
from occupant.radius.models import (
    RadAcct,
    RadCheck,
    RadGroupCheck,
    RadGroupReply,
    RadPostAuth,
    RadReply,
    RadUserGroup,
)
from occupant.sites.models import Site

NO_NAS = "!no-access-point"  # matches no real NAS-Identifier: a site without access points admits nobody
_REGEX_SPECIALS = set(".^$*+?()[]{}|\\")


def home_group(site: Site) -> str:
    return f"home:{site.operator_id}:{site.code}"


def guest_group(site: Site) -> str:
    return f"guest:{site.operator_id}:{site.code}"


def _nas_pattern(identifiers: Sequence[str]) -> str:
    escaped = ["".join("\\" + c if c in _REGEX_SPECIALS else c for c in i) for i in identifiers]
    return "^(" + "|".join(escaped) + ")$"


def sync_site(session: Session, site: Site) -> None:
    """(Re)write a site's home and guest groups: which NAS identifiers they match, which VLAN they give."""
    names = [home_group(site), guest_group(site)]
    session.execute(delete(RadGroupCheck).where(RadGroupCheck.groupname.in_(names)))
    session.execute(delete(RadGroupReply).where(RadGroupReply.groupname.in_(names)))
    if site.nas_identifiers:
        check = {"attribute": "NAS-Identifier", "op": "=~", "value": _nas_pattern(site.nas_identifiers)}
    else:
        check = {"attribute": "NAS-Identifier", "op": "==", "value": NO_NAS}
    session.execute(insert(RadGroupCheck), [{"groupname": name, **check} for name in names])
    replies = []
    for name, vlan in ((home_group(site), site.wifi_vlan), (guest_group(site), site.guest_vlan)):
        replies += [
            {"groupname": name, "attribute": "Tunnel-Type", "op": ":=", "value": "VLAN"},
            {"groupname": name, "attribute": "Tunnel-Medium-Type", "op": ":=", "value": "IEEE-802"},
            {"groupname": name, "attribute": "Tunnel-Private-Group-Id", "op": ":=", "value": str(vlan)},
        ]
    session.execute(insert(RadGroupReply), replies)


def remove_site(session: Session, site: Site) -> None:
    names = [home_group(site), guest_group(site)]
    session.execute(delete(RadGroupCheck).where(RadGroupCheck.groupname.in_(names)))
    session.execute(delete(RadGroupReply).where(RadGroupReply.groupname.in_(names)))


def credential_rows(username: str, nt_hash: str, device_limit: int) -> list[dict[str, str]]:
    return [
        {"username": username, "attribute": "NT-Password", "op": ":=", "value": nt_hash},
        {"username": username, "attribute": "Simultaneous-Use", "op": ":=", "value": str(device_limit)},
    ]


def group_rows(username: str, homesite: Site, other_sites: Iterable[Site]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [{"username": username, "groupname": home_group(homesite), "priority": 1}]
    rows += [
        {"username": username, "groupname": guest_group(s), "priority": 2}
        for s in sorted(other_sites, key=lambda s: s.code)
        if s.id != homesite.id
    ]
    return rows


def write_credential(
    session: Session, username: str, *, nt_hash: str, device_limit: int, homesite: Site, sites: Iterable[Site]
) -> None:
    """Make ``username`` able to sign in: password, device limit, and its site groups."""
    clear_credential(session, [username])
    session.execute(insert(RadCheck), credential_rows(username, nt_hash, device_limit))
    session.execute(insert(RadUserGroup), group_rows(username, homesite, sites))


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


class NewCredential(NamedTuple):
    """What :func:`write_new_credentials` writes for one username."""

    username: str
    nt_hash: str
    device_limit: int
    homesite: Site
    sites: Sequence[Site]


def write_new_credentials(session: Session, credentials: Sequence[NewCredential]) -> None:
    """Make new usernames able to sign in: one bulk write (COPY on PostgreSQL) into ``radcheck`` and one
    into ``radusergroup``. For usernames that have no rows yet (a new account), so nothing is deleted first;
    an existing credential is rewritten with :func:`write_credential`."""
    if not credentials:
        return
    checks: list[tuple[str, str, str, str]] = []
    groups: list[tuple[str, object, object]] = []
    site_groups: dict[tuple[int, tuple[int, ...]], list[tuple[object, object]]] = {}
    for c in credentials:
        checks += [
            (row["username"], row["attribute"], row["op"], row["value"])
            for row in credential_rows(c.username, c.nt_hash, c.device_limit)
        ]
        key = (c.homesite.id, tuple(s.id for s in c.sites))
        if key not in site_groups:  # the same few homesites and site lists, over and over
            site_groups[key] = [(g["groupname"], g["priority"]) for g in group_rows("", c.homesite, c.sites)]
        groups += [(c.username, name, priority) for name, priority in site_groups[key]]
    insert_rows(session, _table(RadCheck), ("username", "attribute", "op", "value"), checks)
    insert_rows(session, _table(RadUserGroup), ("username", "groupname", "priority"), groups)


def write_groups(session: Session, username: str, *, homesite: Site, sites: Iterable[Site]) -> None:
    session.execute(delete(RadUserGroup).where(RadUserGroup.username == username))
    session.execute(insert(RadUserGroup), group_rows(username, homesite, sites))


def set_device_limit(session: Session, username: str, device_limit: int) -> None:
    session.execute(
        update(RadCheck)
        .where(RadCheck.username == username, RadCheck.attribute == "Simultaneous-Use")
        .values(value=str(device_limit))
    )


def clear_credential(session: Session, usernames: Sequence[str]) -> None:
    """RADIUS refuses these usernames from the next request on."""
    if not usernames:
        return
    for table in (RadCheck, RadReply, RadUserGroup):
        session.execute(
            delete(table)
            .where(one_of(session, table.username, usernames))
            .execution_options(synchronize_session=False)
        )


def purge(session: Session, usernames: Sequence[str]) -> None:
    """Remove every trace of these usernames, sessions and sign-in history included (user deletion)."""
    clear_credential(session, usernames)
    if usernames:
        session.execute(
            delete(RadAcct)
            .where(one_of(session, RadAcct.username, usernames))
            .execution_options(synchronize_session=False)
        )
        session.execute(
            delete(RadPostAuth)
            .where(one_of(session, RadPostAuth.username, usernames))
            .execution_options(synchronize_session=False)
        )


def rename(session: Session, old: str, new: str) -> None:
    """The username follows the user's email, with its sessions and history."""
    for table in (RadCheck, RadReply, RadUserGroup, RadPostAuth):
        session.execute(update(table).where(table.username == old).values(username=new))
    session.execute(update(RadAcct).where(RadAcct.username == old).values(username=new))
