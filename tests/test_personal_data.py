"""After a user is deleted, no personal data of theirs remains anywhere in the database."""

from __future__ import annotations

from sqlalchemy import inspect, text

from occupant.groups import service as groups
from occupant.notify.delivery import deliver_due
from occupant.users import service as users
from occupant.users.schemas import UserUpdate
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


def test_deleted_user_leaves_no_personal_data(committed, engine):
    with committed() as s:
        operator = make_operator(s)
        occupier = make_occupier(s, operator, sites_=[make_site(s, operator, country="NL")])
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
        s.commit()
        users.update_user(s, user, UserUpdate(last_name="Zuiderzee-Delta"), actor=admin_actor(operator))
        users.change_email(s, user, "w.zuiderzee@privacy.example", actor=admin_actor(operator))
        s.commit()
    deliver_due(committed)  # one notice delivered to the mail folder, the outbox row wiped
    with committed() as s:
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
