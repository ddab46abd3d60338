"""FreeRADIUS works with exactly the database rights the README grants it (PostgreSQL).

The role is made by running the README's own SQL block, so the guide and the test cannot drift apart:
a grant the policy needs and the README forgets fails here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from occupant.kit.db import transaction
from occupant.radius.models import RadAcct, RadPostAuth
from tests.radius.conftest import World, build_world
from tests.radius.harness import Radiusd

README = Path(__file__).resolve().parents[2] / "README.md"
LON = "ap-lon01-1"


def readme_grants(role: str, password: str) -> str:
    """The SQL block of the README's "Production" part, for ``role``."""
    text = README.read_text()
    block = re.search(r"```sql\n(CREATE ROLE radius .*?)```", text, re.S)
    assert block, "README.md lost its FreeRADIUS role SQL block"
    sql = block.group(1).replace("PASSWORD '…'", f"PASSWORD '{password}'")
    return re.sub(r"\b(ROLE|TO) radius\b", lambda m: f"{m.group(1)} {role}", sql)


pytestmark = pytest.mark.postgres_only  # database roles; the SQLite server reads the file it is given


@pytest.fixture
def restricted(engine: Engine, tmp_path: Path) -> Iterator[Radiusd]:
    role, password = f"radius_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    admin_dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(readme_grants(role, password))
    url = make_url(admin_dsn).set(username=role, password=password)
    server = Radiusd.start(url.render_as_string(hide_password=False), tmp_path, "postgresql")
    try:
        yield server
    finally:
        server.stop()
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_the_readme_role_signs_in_counts_devices_and_keeps_sessions(
    restricted: Radiusd, committed: sessionmaker[Session]
) -> None:
    world: World = build_world(committed, device_limit=1)
    reply = restricted.pap(world.username, world.password, nas=LON, mac="02-00-00-00-00-01")
    assert reply.accepted and reply.vlan == 110
    assert restricted.accounting(
        "Start",
        username=world.username,
        Acct_Session_Id="s-1",
        Calling_Station_Id="02-00-00-00-00-01",
        NAS_Identifier=LON,
    )
    # The device count reads radacct: a second device is over the limit of one.
    assert not restricted.pap(world.username, world.password, nas=LON, mac="02-00-00-00-00-02").accepted
    assert restricted.accounting(
        "Stop",
        username=world.username,
        Acct_Session_Id="s-1",
        Calling_Station_Id="02-00-00-00-00-01",
        NAS_Identifier=LON,
    )
    assert restricted.pap(world.username, world.password, nas=LON, mac="02-00-00-00-00-02").accepted
    with transaction(committed) as session:
        sessions = session.execute(select(RadAcct.acctstoptime)).scalars().all()
        attempts = session.execute(select(RadPostAuth.reply)).scalars().all()
    assert len(sessions) == 1 and sessions[0] is not None
    assert attempts == ["Access-Accept", "Access-Reject", "Access-Accept"]
