"""After a user is deleted, no personal data of theirs remains anywhere in the database."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select, text

from occupant.groups import service as groups
from occupant.kit.clock import utcnow
from occupant.notify.delivery import deliver_due
from occupant.notify.models import OutboxMessage
from occupant.notify.service import secret_box
from occupant.radius.models import RadAcct, RadCheck, RadPostAuth, RadUserGroup
from occupant.users import service as users
from occupant.users.schemas import UserUpdate
from occupant.wifi import service as wifi
from occupant.wifi.models import WifiAccount
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_user


def dump_database(engine) -> str:
    """Every row of every table (FTS shadow tables included), as text."""
    chunks = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("latin-1")
                    chunks.append(str(value))
    return "\n".join(chunks).lower()


def _network_traffic(s, username: str, n: int) -> None:
    """What FreeRADIUS writes for a Wi-Fi user: a session (accounting) and a sign-in attempt."""
    s.add(
        RadAcct(
            acctsessionid=f"sess-{n}",
            acctuniqueid=f"uniq-{username}-{n}",
            username=username,
            nasipaddress="10.9.0.1",
            nasidentifier="ap-ams-1",
            acctstarttime=utcnow(),
            callingstationid=f"AA-BB-CC-DD-EE-{n:02d}",
        )
    )
    s.add(RadPostAuth(username=username, reply="Access-Accept", callingstationid=f"AA-BB-CC-DD-EE-{n:02d}"))


def test_deleted_user_leaves_no_personal_data(committed, engine):
    with committed() as s:
        operator = make_operator(s)
        site = make_site(s, operator, country="NL", nas=["ap-ams-1"])
        occupier = make_occupier(s, operator, sites_=[site])
        group = groups.create_group(s, actor=admin_actor(operator), name="Door A", occupier_id=occupier.id)
        user = make_user(
            s,
            occupier,
            first_name="Wilhelmina",
            last_name="Zuiderzee",
            email="wilhelmina.zuiderzee@privacy.example",
            mobile="+31612345678",
            job_title="Quartermaster",
            employee_number="EMP-778899",
            username="wzuiderzee",
            external_id="ext-5566",
            group_ids=[group.id],
        )
        bystander = make_user(s, occupier, first_name="Keep", last_name="Me", email="keep.me@example.com")
        accounts = [
            wifi.create_wifi_account(s, person, homesite_id=site.id, actor=admin_actor(operator))
            for person in (user, bystander)
        ]
        s.commit()
        for account in accounts:
            wifi.confirm_provisioning(s, account.id)  # as the worker does
        _network_traffic(s, "wilhelmina.zuiderzee@privacy.example", 1)
        _network_traffic(s, "keep.me@example.com", 2)
        s.commit()
        s.refresh(user)
        users.update_user(s, user, UserUpdate(last_name="Zuiderzee-Delta"), actor=admin_actor(operator))
        users.change_email(s, user, "w.zuiderzee@privacy.example", actor=admin_actor(operator))
        s.commit()
    with committed() as s:
        [sealed] = s.scalars(
            select(OutboxMessage.sealed_secrets).where(
                OutboxMessage.occupier_user_id == user.id, OutboxMessage.template == "wifi_password"
            )
        )
        wifi_password = secret_box().open(sealed)["password"]
        wifi_hash = s.scalar(select(WifiAccount.nt_hash).where(WifiAccount.user_id == user.id))
    assert wifi_hash and wifi_hash in dump_database(engine)  # the dump sees it while the account lives
    deliver_due(committed)  # the notices delivered to the mail folder, the outbox rows wiped
    with committed() as s:
        _network_traffic(s, "w.zuiderzee@privacy.example", 3)  # renamed: the network knows the new name
        s.commit()
        users.change_email(
            s, s.get(type(user), user.id), "third.zuiderzee@privacy.example", actor=admin_actor(operator)
        )
        s.commit()  # these two stay queued until the delete cancels them
        users.delete_user(s, s.get(type(user), user.id), actor=admin_actor(operator))
        s.commit()
    dump = dump_database(engine)
    for secret in (
        "wilhelmina",
        "zuiderzee",
        "privacy.example",
        "+31612345678",
        "quartermaster",
        "emp-778899",
        "ext-5566",
    ):
        assert secret not in dump, f"{secret!r} survived the delete"
    assert "keep.me@example.com" in dump  # the dump does see personal data that should be there
    assert str(bystander.id) in dump
    assert wifi_password.lower() not in dump and wifi_hash not in dump
    with committed() as s:
        assert s.scalar(select(func.count()).select_from(WifiAccount)) == 1  # the bystander's
        for table in (RadCheck, RadUserGroup, RadAcct, RadPostAuth):
            names = set(s.scalars(select(table.username)))
            assert names == {"keep.me@example.com"}, (table.__tablename__, names)


def test_a_deleted_users_addresses_leave_the_sign_in_throttles(committed):
    """Failed sign-ins and reset requests are counted per address; the address goes with its user, and an
    address the user moved away from goes at once (it signs in no more)."""
    from occupant.accounts import service as accounts
    from occupant.accounts.models import App
    from occupant.kit.errors import NotAuthenticated
    from occupant.kit.throttle import Throttle
    from tests.factories import make_account

    with committed() as s:
        operator = make_operator(s)
        occupier = make_occupier(s, operator)
        user = make_user(s, occupier, email="first.address@privacy.example")
        make_account(s, user, password="correct horse battery staple")
        for email in ("first.address@privacy.example", "keep.me@example.com"):
            with pytest.raises(NotAuthenticated):
                accounts.sign_in(s, email=email, password="wrong", app=App.PORTAL, address="203.0.113.9")
        s.commit()
        users.change_email(s, user, "second.address@privacy.example", actor=admin_actor(operator))
        accounts.request_password_reset(s, email=user.email, operator_id=None, address="203.0.113.9")
        s.commit()
        assert {"app:keep.me@example.com", "reset:second.address@privacy.example"} <= set(
            s.scalars(select(Throttle.key))
        )
        users.delete_user(s, s.get(type(user), user.id), actor=admin_actor(operator))
        s.commit()
        keys = set(s.scalars(select(Throttle.key)))
    assert not [key for key in keys if "privacy.example" in key], keys
    assert "app:keep.me@example.com" in keys  # an address nobody deleted keeps its count
