"""Wi-Fi Secure enforced by a real FreeRADIUS reading Occupant's database (SQLite and PostgreSQL).

Each test changes Occupant's state through the service actions, commits, and then asks the server the
way an access point would: PAP and Status-Server with radclient, MS-CHAPv2 and accounting with pyrad,
PEAP-MSCHAPv2 with eapol_test. London is the user's homesite, Paris another site of the occupier,
Berlin a site of the operator the occupier cannot use.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from occupant.kit.clock import utcnow
from occupant.kit.db import transaction
from occupant.radius.models import RadAcct, RadCheck, RadPostAuth, RadUserGroup
from occupant.users import service as users
from occupant.users.models import OccupierUser
from occupant.wifi import service as wifi
from tests.radius.conftest import World, build_world
from tests.radius.harness import Radiusd

LON = "ap-lon01-1"
LON_CONTROLLER = "ctrl.lon01"
PAR = "ap-par01-1"
BER = "ap-ber01-1"


def test_the_server_answers_status_server(server: Radiusd) -> None:
    assert server.status()


# --- accept, and the VLAN of the site ------------------------------------------------------------------


def test_pap_with_the_emailed_password_lands_on_the_homesite_secure_vlan(
    server: Radiusd, world: World
) -> None:
    for nas in (LON, LON_CONTROLLER):
        reply = server.pap(world.username, world.password, nas=nas)
        assert reply.accepted
        assert reply.vlan == 110
        assert reply.first("Tunnel-Type") == "VLAN"
        assert reply.first("Tunnel-Medium-Type") == "IEEE-802"


def test_the_username_is_the_email_in_any_case(server: Radiusd, world: World) -> None:
    assert server.pap("ADA.LOVELACE+WIFI@EXAMPLE.COM", world.password, nas=LON).accepted
    reply, proven = server.mschapv2("Ada.Lovelace+Wifi@example.com", world.password, nas=LON)
    assert reply.accepted and proven


def test_an_email_with_an_apostrophe_works_too(radiusd: Radiusd, committed: sessionmaker[Session]) -> None:
    world = build_world(committed, email="Miles.O'Brien@Example.com")
    assert radiusd.pap("miles.o'brien@example.com", world.password, nas=LON).vlan == 110


def test_mschapv2_accepts_and_the_server_proves_it_knows_the_password(server: Radiusd, world: World) -> None:
    reply, proven = server.mschapv2(world.username, world.password, nas=LON)
    assert reply.accepted and proven
    assert reply.vlan == 110
    assert reply.first("MS-MPPE-Send-Key") and reply.first("MS-MPPE-Recv-Key")


def test_peap_mschapv2_accepts_with_the_site_vlan_and_names_the_real_user(
    server: Radiusd, world: World
) -> None:
    home = server.peap(world.username, world.password, nas=LON)
    assert home.accepted
    assert home.vlan == 110
    # The access point accounts under the inner (real) name, not the anonymous outer identity.
    assert home.first("User-Name") == world.username

    assert server.peap(world.username, world.password, nas=PAR).vlan == 920
    assert not server.peap(world.username, world.password + "x", nas=LON).accepted
    assert not server.peap(world.username, world.password, nas=BER).accepted


def test_eap_ttls_with_pap_inside_works_too(server: Radiusd, world: World) -> None:
    reply = server.peap(world.username, world.password, nas=LON, method="TTLS", phase2="auth=PAP")
    assert reply.vlan == 110
    assert not server.peap(world.username, "nope", nas=LON, method="TTLS", phase2="auth=PAP").accepted


def test_at_another_site_of_the_occupier_the_same_credential_lands_on_its_guest_vlan(
    server: Radiusd, world: World
) -> None:
    assert server.pap(world.username, world.password, nas=PAR).vlan == 920
    reply, proven = server.mschapv2(world.username, world.password, nas=PAR)
    assert reply.vlan == 920 and proven


@pytest.mark.parametrize("nas", [BER, "ap-unknown", None], ids=["other-site", "unknown-ap", "no-nas-id"])
def test_refused_where_the_occupier_has_no_access(server: Radiusd, world: World, nas: str | None) -> None:
    reply = server.pap(world.username, world.password, nas=nas)
    assert not reply.accepted
    assert reply.vlan is None
    assert not server.mschapv2(world.username, world.password, nas=nas)[0].accepted


# --- refused ------------------------------------------------------------------------------------------


def test_a_wrong_password_is_refused_and_the_reject_says_nothing(server: Radiusd, world: World) -> None:
    wrong = "Wrong-Pass-Word-42"
    reply = server.pap(world.username, wrong, nas=LON)
    assert not reply.accepted
    assert reply.attributes == {}
    mschap, proven = server.mschapv2(world.username, wrong, nas=LON)
    assert not mschap.accepted and not proven
    assert mschap.vlan is None
    assert not server.pap("nobody@example.com", world.password, nas=LON).accepted


def test_attempted_passwords_are_never_logged(server: Radiusd, world: World) -> None:
    wrong = "Tried-Secret-7391"
    server.pap(world.username, wrong, nas=LON)
    server.pap(world.username, world.password, nas=LON)
    with world.factory() as session:
        attempts = session.execute(select(RadPostAuth.username, RadPostAuth.pass_, RadPostAuth.reply)).all()
    assert [(a.username, a.reply) for a in attempts] == [
        (world.username, "Access-Reject"),
        (world.username, "Access-Accept"),
    ]
    assert all(not a.pass_ for a in attempts)
    log = server.log_text()
    assert world.username in log  # the server does log who tried ...
    assert wrong not in log and world.password not in log  # ... never with what


def test_deactivated_is_refused_from_the_next_attempt_and_activation_mails_a_new_password(
    server: Radiusd, world: World
) -> None:
    world.act(wifi.deactivate_wifi)
    assert not server.pap(world.username, world.password, nas=LON).accepted
    assert not server.peap(world.username, world.password, nas=LON).accepted

    world.act(wifi.activate_wifi)
    world.confirm()
    new = world.latest_password()
    assert new != world.password
    assert not server.pap(world.username, world.password, nas=LON).accepted
    assert server.pap(world.username, new, nas=LON).vlan == 110


def test_a_deactivated_user_loses_wifi_and_gets_it_back(server: Radiusd, world: World) -> None:
    world.act(users.deactivate_user)
    assert not server.pap(world.username, world.password, nas=LON).accepted
    world.act(users.reactivate_user)
    world.confirm()
    assert server.pap(world.username, world.latest_password(), nas=LON).accepted


def test_a_deleted_user_is_refused_and_leaves_nothing_in_radius(server: Radiusd, world: World) -> None:
    assert server.pap(world.username, world.password, nas=LON).accepted
    assert server.accounting("Start", username=world.username, Acct_Session_Id="d1", NAS_Identifier=LON)
    with transaction(world.factory) as session:
        user = session.get(OccupierUser, world.user.id)
        assert user is not None
        users.delete_user(session, user, actor=world.admin)
    assert not server.pap(world.username, world.password, nas=LON).accepted
    with world.factory() as session:
        for table in (RadCheck, RadUserGroup, RadAcct):
            assert session.scalars(select(table).where(table.username == world.username)).all() == []


def test_a_password_reset_refuses_the_old_one_and_accepts_the_new(server: Radiusd, world: World) -> None:
    world.act(wifi.reset_wifi_password)
    new = world.latest_password()
    assert new != world.password
    assert not server.pap(world.username, world.password, nas=LON).accepted
    assert not server.mschapv2(world.username, world.password, nas=LON)[0].accepted
    assert server.pap(world.username, new, nas=LON).vlan == 110
    assert server.mschapv2(world.username, new, nas=LON)[1]


def test_a_homesite_change_moves_the_secure_vlan_with_a_new_password(server: Radiusd, world: World) -> None:
    world.act(wifi.change_homesite, world.par.id)
    new = world.latest_password()
    assert not server.pap(world.username, world.password, nas=PAR).accepted
    assert server.pap(world.username, new, nas=PAR).vlan == 120  # Paris's secure VLAN
    assert server.pap(world.username, new, nas=LON).vlan == 910  # London's guest VLAN now
    assert server.peap(world.username, new, nas=PAR).vlan == 120


def test_an_email_change_changes_the_username_and_keeps_the_password(server: Radiusd, world: World) -> None:
    old = world.username
    assert server.accounting(
        "Start", username=old, Acct_Session_Id="e1", Calling_Station_Id="aa-01", NAS_Identifier=LON
    )
    with transaction(world.factory) as session:
        user = session.get(OccupierUser, world.user.id)
        assert user is not None
        users.change_email(session, user, "Ada.King@Example.com", actor=world.admin)
    world.user = world._reload_user()
    assert world.username == "ada.king@example.com"
    assert not server.pap(old, world.password, nas=LON).accepted
    assert server.pap("Ada.King@Example.com", world.password, nas=LON).vlan == 110
    # The device connected under the old name still counts against the limit of 2.
    assert server.accounting(
        "Start", username=world.username, Acct_Session_Id="e2", Calling_Station_Id="aa-02", NAS_Identifier=LON
    )
    assert not server.pap(world.username, world.password, nas=LON, mac="aa-03").accepted


# --- the device limit and accounting --------------------------------------------------------------------


def _start(server: Radiusd, world: World, session_id: str, mac: str, nas: str = LON) -> None:
    assert server.accounting(
        "Start",
        username=world.username,
        Acct_Session_Id=session_id,
        Calling_Station_Id=mac,
        NAS_Identifier=nas,
        NAS_Port_Type="Wireless-802.11",
    )


def _stop(server: Radiusd, world: World, session_id: str, mac: str, nas: str = LON) -> None:
    assert server.accounting(
        "Stop",
        username=world.username,
        Acct_Session_Id=session_id,
        Calling_Station_Id=mac,
        NAS_Identifier=nas,
        Acct_Session_Time=600,
        Acct_Terminate_Cause="User-Request",
    )


def test_the_device_after_the_limit_is_refused_until_one_disconnects(server: Radiusd, world: World) -> None:
    _start(server, world, "s1", "aa-01")
    _start(server, world, "s2", "aa-02", nas=PAR)

    third = server.pap(world.username, world.password, nas=LON, mac="aa-03")
    assert not third.accepted
    assert third.first("Reply-Message") == "Device limit reached (2)"
    assert not server.mschapv2(world.username, world.password, nas=LON, mac="aa-03")[0].accepted
    assert not server.peap(world.username, world.password, nas=LON, mac="02:00:00:00:00:03").accepted
    # A connected device signing in again (roaming to another access point) is not a new device.
    assert server.pap(world.username, world.password, nas=LON, mac="aa-02").accepted

    _stop(server, world, "s1", "aa-01")
    assert server.pap(world.username, world.password, nas=LON, mac="aa-03").accepted


def test_interim_updates_keep_a_session_counted(server: Radiusd, world: World) -> None:
    _start(server, world, "i1", "aa-01")
    assert server.accounting(
        "Interim-Update",
        username=world.username,
        Acct_Session_Id="i1",
        Calling_Station_Id="aa-01",
        NAS_Identifier=LON,
        Acct_Session_Time=300,
        Acct_Input_Octets=1000,
    )
    # An interim update for a session whose Start was lost opens it all the same.
    assert server.accounting(
        "Interim-Update",
        username=world.username,
        Acct_Session_Id="i2",
        Calling_Station_Id="aa-02",
        NAS_Identifier=PAR,
        Acct_Session_Time=120,
    )
    assert not server.pap(world.username, world.password, nas=LON, mac="aa-03").accepted
    with world.factory() as session:
        rows = session.scalars(select(RadAcct).order_by(RadAcct.acctsessionid)).all()
    assert [(r.acctsessionid, r.acctsessiontime, r.acctstoptime) for r in rows] == [
        ("i1", 300, None),
        ("i2", 120, None),
    ]
    assert rows[0].acctinputoctets == 1000


def test_a_restarting_access_point_frees_the_places_of_its_devices(server: Radiusd, world: World) -> None:
    _start(server, world, "r1", "aa-01")
    _start(server, world, "r2", "aa-02")
    assert not server.pap(world.username, world.password, nas=LON, mac="aa-03").accepted
    assert server.accounting("Accounting-On", NAS_Identifier=LON)
    assert server.pap(world.username, world.password, nas=LON, mac="aa-03").accepted

    _start(server, world, "r3", "aa-03", nas=PAR)
    _start(server, world, "r4", "aa-04", nas=PAR)
    assert not server.pap(world.username, world.password, nas=PAR, mac="aa-05").accepted
    assert server.accounting("Accounting-Off", NAS_Identifier=PAR)
    assert server.pap(world.username, world.password, nas=PAR, mac="aa-05").accepted
    with world.factory() as session:
        causes = session.execute(select(RadAcct.acctsessionid, RadAcct.acctterminatecause)).all()
    assert sorted(causes) == [(s, "NAS-Reboot") for s in ("r1", "r2", "r3", "r4")]


def test_a_session_gone_silent_stops_counting(server: Radiusd, world: World) -> None:
    """A device that left without a Stop (and whose access point sends no more interim updates)."""
    _start(server, world, "g1", "aa-01")
    _start(server, world, "g2", "aa-02")
    assert not server.pap(world.username, world.password, nas=LON, mac="aa-03").accepted
    with transaction(world.factory) as session:  # three interim intervals (30 min) pass in silence
        long_ago = utcnow() - timedelta(minutes=31)
        session.execute(
            update(RadAcct)
            .where(RadAcct.acctsessionid == "g1")
            .values(acctstarttime=long_ago, acctupdatetime=long_ago)
        )
    assert server.pap(world.username, world.password, nas=LON, mac="aa-03").accepted


def test_a_higher_device_limit_applies_at_once(server: Radiusd, world: World) -> None:
    _start(server, world, "l1", "aa-01")
    _start(server, world, "l2", "aa-02")
    assert not server.pap(world.username, world.password, nas=LON, mac="aa-03").accepted
    world.act(wifi.change_device_limit, 3)
    assert server.pap(world.username, world.password, nas=LON, mac="aa-03").accepted


def test_accounting_shows_the_connected_devices_and_their_site(server: Radiusd, world: World) -> None:
    _start(server, world, "c1", "aa-01", nas=PAR)
    with world.factory() as session:
        user = session.get(OccupierUser, world.user.id)
        assert user is not None
        devices = wifi.connected_devices(session, user)
    assert [(d.callingstationid, d.nasidentifier, d.nasporttype) for d in devices] == [
        ("aa-01", PAR, "Wireless-802.11")
    ]
    assert devices[0].acctstarttime is not None
    _stop(server, world, "c1", "aa-01", nas=PAR)
    with world.factory() as session:
        user = session.get(OccupierUser, world.user.id)
        assert user is not None
        assert wifi.connected_devices(session, user) == []
        row = session.scalars(select(RadAcct)).one()
    assert (row.acctsessiontime, row.acctterminatecause) == (600, "User-Request")
    assert row.acctstoptime is not None


# --- sites and repair ------------------------------------------------------------------------------------


def test_a_site_vlan_or_access_point_change_applies_on_the_next_request(
    server: Radiusd, world: World
) -> None:
    from occupant.sites import service as sites
    from occupant.sites.models import Site
    from occupant.sites.schemas import SiteUpdate

    with transaction(world.factory) as session:
        site = session.get(Site, world.lon.id)
        assert site is not None
        sites.update_site(
            session, site, SiteUpdate(wifi_vlan=111, nas_identifiers=[LON, "ap-lon01-2"]), actor=world.admin
        )
    assert server.pap(world.username, world.password, nas="ap-lon01-2").vlan == 111
    assert not server.pap(world.username, world.password, nas=LON_CONTROLLER).accepted


def test_radius_sync_repairs_rows_lost_behind_occupants_back(
    server: Radiusd, world: World, engine_url: str
) -> None:
    with transaction(world.factory) as session:  # e.g. a restore of an old backup of these tables
        session.execute(RadCheck.__table__.delete())
    assert not server.pap(world.username, world.password, nas=LON).accepted

    runner = CliRunner()
    env = {"OCCUPANT_DATABASE_URL": engine_url}
    from occupant.cli.main import app

    dry = runner.invoke(app, ["radius", "sync", "--dry-run"], env=env, catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    assert "2 rows were missing, wrong or extra: would be fixed." in dry.output
    assert not server.pap(world.username, world.password, nas=LON).accepted

    done = runner.invoke(app, ["radius", "sync"], env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "1 usable Wi-Fi accounts" in done.output
    assert server.pap(world.username, world.password, nas=LON).vlan == 110

    again = runner.invoke(app, ["radius", "sync"], env=env, catch_exceptions=False)
    assert "Everything was already in step." in again.output


def test_set_based_deactivation_and_delete_are_refused_from_the_next_attempt(
    server: Radiusd, world: World
) -> None:
    """``users.bulk_lifecycle``, as a bulk job runs a chunk: deactivated users are refused, reactivated
    ones sign in with the new password they were mailed, deleted ones are refused and leave nothing."""
    from occupant.users import bulk_lifecycle

    def chunk(action: object, **kwargs: object) -> None:
        with transaction(world.factory) as session:
            user = session.get(OccupierUser, world.user.id)
            assert user is not None
            results = action(session, [user], actor=world.admin, **kwargs)  # type: ignore[operator]
            assert all(r.ok for r in results), results

    assert server.pap(world.username, world.password, nas=LON).accepted
    chunk(bulk_lifecycle.deactivate_users, remove_from_groups=True)
    assert not server.pap(world.username, world.password, nas=LON).accepted
    assert not server.peap(world.username, world.password, nas=LON).accepted

    chunk(bulk_lifecycle.reactivate_users)
    world.confirm()
    world.user = world._reload_user()
    new = world.latest_password()
    assert new != world.password
    assert not server.pap(world.username, world.password, nas=LON).accepted
    assert server.pap(world.username, new, nas=LON).vlan == 110
    assert server.accounting("Start", username=world.username, Acct_Session_Id="b1", NAS_Identifier=LON)

    chunk(bulk_lifecycle.delete_users, index_purge="deferred")
    with world.factory() as session:  # sessions and sign-in history too
        for table in (RadCheck, RadUserGroup, RadAcct, RadPostAuth):
            assert session.scalars(select(table).where(table.username == world.username)).all() == []
    assert not server.pap(world.username, new, nas=LON).accepted
