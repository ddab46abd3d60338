"""Helpers for the Wi-Fi API, page and command-line tests: accounts, sessions as FreeRADIUS writes them,
and the password emails in the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.notify.models import OutboxMessage
from occupant.notify.service import secret_box
from occupant.operators.models import Operator
from occupant.radius.models import RadAcct, RadCheck
from occupant.sites.models import Site
from occupant.users.models import OccupierUser
from occupant.wifi import service
from occupant.wifi.models import WifiAccount
from tests.factories import admin_actor


def give_wifi(
    db: Session,
    user: OccupierUser,
    *,
    homesite: Site | None = None,
    limit: int | None = None,
    live: bool = True,
) -> WifiAccount:
    """A Wi-Fi account for ``user`` through the action; ``live`` also runs the worker's confirmation."""
    operator = db.get(Operator, user.operator_id)
    assert operator is not None
    site = homesite or user.occupier.sites[0]
    account = service.create_wifi_account(
        db, user, homesite_id=site.id, device_limit=limit, actor=admin_actor(operator)
    )
    if live:
        assert service.confirm_provisioning(db, account.id)
    db.flush()
    return account


def open_session(
    db: Session,
    username: str,
    *,
    mac: str,
    nas_identifier: str | None = None,
    nas_ip: str = "10.0.0.1",
    minutes_ago: int = 5,
) -> RadAcct:
    """An accounting Start with no Stop yet, as FreeRADIUS writes it: a device connected now."""
    unique = uuid.uuid4().hex
    row = RadAcct(
        acctsessionid=unique[:16],
        acctuniqueid=unique,
        username=username,
        nasipaddress=nas_ip,
        nasidentifier=nas_identifier,
        callingstationid=mac,
        acctstarttime=datetime.now(UTC) - timedelta(minutes=minutes_ago),
    )
    db.add(row)
    db.flush()
    return row


def password_mails(db: Session, user_id: int) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).where(
        OutboxMessage.occupier_user_id == user_id, OutboxMessage.template == "wifi_password"
    )
    return list(db.scalars(stmt.order_by(OutboxMessage.id)))


def mailed_password(message: OutboxMessage) -> str:
    assert message.sealed_secrets is not None
    return str(secret_box().open(message.sealed_secrets)["password"])


def radius_check(db: Session, username: str) -> dict[str, str]:
    """What FreeRADIUS checks for ``username``: attribute -> value (empty: refused)."""
    rows = db.scalars(select(RadCheck).where(RadCheck.username == username))
    return {row.attribute: row.value for row in rows}
