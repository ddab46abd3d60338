"""A real FreeRADIUS per backend (and per xdist worker), reading the test database; a small world in it.

The server is another process: it sees only committed rows, so these tests use ``committed`` and
set data up through the service actions, exactly as the console or the API would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from occupant.authz.actor import Actor
from occupant.cli.common import release_engine
from occupant.kit.db import transaction
from occupant.kit.settings import get_settings
from occupant.notify.models import OutboxMessage
from occupant.notify.service import secret_box
from occupant.occupiers.models import Occupier
from occupant.sites import service as sites
from occupant.sites.models import Site
from occupant.sites.schemas import SiteCreate
from occupant.users.models import OccupierUser
from occupant.wifi import service as wifi
from occupant.wifi.models import WifiAccount
from tests.factories import admin_actor, make_occupier, make_operator, make_user
from tests.radius.harness import Radiusd, missing_tools


@pytest.fixture(scope="session")
def radiusd(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radiusd]:
    missing = missing_tools()
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: run scripts/test.sh (it installs freeradius, "
            "freeradius-utils, freeradius-postgresql and eapoltest)"
        )
    backend = engine.dialect.name
    workdir = tmp_path_factory.mktemp(f"radius-{backend}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
    server = Radiusd.start(engine.url.render_as_string(hide_password=False), workdir, backend)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class World:
    """An operator with three sites; the occupier uses London (home) and Paris, not Berlin."""

    factory: sessionmaker[Session]
    admin: Actor
    lon: Site
    par: Site
    ber: Site
    occupier: Occupier
    user: OccupierUser
    password: str
    passwords_seen: list[str] = field(default_factory=list)

    @property
    def username(self) -> str:
        return self.user.email_key

    def act(self, action: object, *args: object, **kwargs: object) -> object:
        """Run one action on the user in its own committed transaction, as a request would."""
        with transaction(self.factory) as session:
            user = session.get(OccupierUser, self.user.id)
            assert user is not None
            result = action(session, user, *args, actor=self.admin, **kwargs)  # type: ignore[operator]
        self.user = self._reload_user()
        return result

    def _reload_user(self) -> OccupierUser:
        with self.factory() as session:
            user = session.get(OccupierUser, self.user.id)
            assert user is not None
            return user

    def confirm(self) -> None:
        """What the worker does after a new password: RADIUS has it, the account is ACTIVE."""
        with transaction(self.factory) as session:
            account = session.scalar(select(WifiAccount).where(WifiAccount.user_id == self.user.id))
            if account is not None:
                wifi.confirm_provisioning(session, account.id)

    def latest_password(self) -> str:
        """The password in the newest Wi-Fi email to the user (sealed in the outbox until delivery)."""
        with self.factory() as session:
            message = session.scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.occupier_user_id == self.user.id, OutboxMessage.template == "wifi_password"
                )
                .order_by(OutboxMessage.id.desc())
            ).first()
            assert message is not None and message.sealed_secrets
            password = secret_box().open(message.sealed_secrets)["password"]
        assert isinstance(password, str)
        self.passwords_seen.append(password)
        return password


def _site(session: Session, admin: Actor, code: str, nas: list[str], wifi_vlan: int, guest_vlan: int) -> Site:
    return sites.create_site(
        session,
        SiteCreate(
            code=code,
            name=f"Site {code}",
            country="GB",
            nas_identifiers=nas,
            wifi_vlan=wifi_vlan,
            guest_vlan=guest_vlan,
        ),
        actor=admin,
    )


def build_world(
    factory: sessionmaker[Session], *, email: str = "Ada.Lovelace+wifi@Example.com", device_limit: int = 2
) -> World:
    with transaction(factory) as session:
        operator = make_operator(session, name="Atelier Workspaces")
        admin = admin_actor(operator)
        lon = _site(session, admin, "LON01", ["ap-lon01-1", "ctrl.lon01"], 110, 910)
        par = _site(session, admin, "PAR01", ["ap-par01-1"], 120, 920)
        ber = _site(session, admin, "BER01", ["ap-ber01-1"], 130, 930)
        occupier = make_occupier(session, operator, sites_=[lon, par], primary_site_id=lon.id)
        user = make_user(session, occupier, email=email)
        wifi.create_wifi_account(session, user, homesite_id=lon.id, device_limit=device_limit, actor=admin)
    world = World(factory, admin, lon, par, ber, occupier, user, password="")
    world.confirm()
    world.user = world._reload_user()
    world.password = world.latest_password()
    return world


@pytest.fixture
def world(committed: sessionmaker[Session], radiusd: Radiusd) -> World:
    return build_world(committed)


@pytest.fixture
def server(radiusd: Radiusd, world: World) -> Radiusd:
    """The server, once the world is committed (the order the tests need)."""
    return radiusd


@pytest.fixture
def engine_url(engine: Engine) -> Iterator[str]:
    """The test database's URL, for commands run in-process; their settings are forgotten after."""
    yield engine.url.render_as_string(hide_password=False)
    release_engine()
    get_settings.cache_clear()
