"""The rules of occupier users, through the service actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from occupant.audit.models import AuditEvent
from occupant.kit.clock import utcnow
from occupant.kit.errors import (
    ActionInProgress,
    EmailTaken,
    FieldErrors,
    InvalidState,
    OccupierDecommissioned,
    PreconditionFailed,
)
from occupant.notify.models import OutboxMessage
from occupant.occupiers import service as occupiers
from occupant.users import service as users
from occupant.users.models import OccupierUser, UserStatus
from occupant.users.schemas import UserCreate, UserUpdate
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_user


@pytest.fixture
def world(db):
    operator = make_operator(db)
    site = make_site(db, operator, code="PAR01", country="FR")
    occupier = make_occupier(db, operator, sites_=[site])
    return operator, occupier


def events(db, action):
    return db.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def test_create_normalises_email_and_phones_with_the_site_country(db, world):
    _, occupier = world
    user = make_user(
        db,
        occupier,
        email="  Marie.Curie@EXAMPLE.fr ",
        mobile="06 12 34 56 78",
        direct_line="+44 20 7946 0958",
    )
    assert user.email == "Marie.Curie@example.fr"
    assert user.email_key == "marie.curie@example.fr"
    assert user.mobile == "+33612345678"  # French default region from the occupier's site
    assert user.direct_line == "+442079460958"
    assert user.status == UserStatus.ACTIVE
    [event] = events(db, "user.created")
    assert event.target_id == str(user.id) and event.occupier_id == occupier.id
    assert "email" in event.fields and "mobile" in event.fields


def test_email_unique_within_operator_case_insensitively(db, world):
    operator, occupier = world
    other_occupier = make_occupier(db, operator)
    make_user(db, occupier, email="ada@example.com")
    with pytest.raises(EmailTaken) as err:
        make_user(db, other_occupier, email="ADA@Example.com")
    assert err.value.code == "email_taken"
    assert "unique within the operator" in err.value.message
    # another operator may use the same address
    other_operator = make_operator(db)
    assert make_user(db, make_occupier(db, other_operator), email="ada@example.com").id


def test_every_invalid_field_is_reported_at_once(db, world):
    _, occupier = world
    with pytest.raises(FieldErrors) as err:
        make_user(db, occupier, email="not-an-email", mobile="12", direct_line="abc", language="xx")
    fields = {e["field"]: e["code"] for e in err.value.errors}
    assert fields == {
        "email": "invalid_email",
        "mobile": "invalid_phone",
        "direct_line": "invalid_phone",
        "language": "invalid_language",
    }
    assert db.scalar(select(OccupierUser.id)) is None


def test_required_fields_and_unknown_fields_are_schema_errors():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        UserCreate(first_name=" ", last_name="", email="a@b.co", shoe_size=42)  # type: ignore[call-arg]
    locs = {e["loc"][0]: e["type"] for e in err.value.errors()}
    assert locs["first_name"] == "string_too_short"
    assert locs["last_name"] == "string_too_short"
    assert locs["shoe_size"] == "extra_forbidden"
    with pytest.raises(ValidationError):
        UserCreate(first_name="A" * 101, last_name="B", email="a@b.co")


def test_update_changes_only_set_fields_and_audits_names_not_values(db, world):
    _, occupier = world
    user = make_user(db, occupier, first_name="Ada", job_title="Engineer", language="en")
    users.update_user(
        db,
        user,
        UserUpdate(last_name="Byron", language="fr"),
        actor=admin_actor(occupier_operator(db, occupier)),
    )
    assert (user.first_name, user.last_name, user.job_title, user.language) == (
        "Ada",
        "Byron",
        "Engineer",
        "fr",
    )
    [event] = events(db, "user.updated")
    assert set(event.fields) == {"last_name", "language"}
    assert event.changes == {"language": ["en", "fr"]}  # the name change is named, its value is not logged
    assert "Byron" not in str(event.changes)


def occupier_operator(db, occupier):
    from occupant.operators.models import Operator

    return db.get(Operator, occupier.operator_id)


def test_stale_version_is_refused(db, world):
    operator, occupier = world
    user = make_user(db, occupier)
    version = user.version_id
    users.update_user(
        db, user, UserUpdate(job_title="CTO"), actor=admin_actor(operator), expected_version=version
    )
    with pytest.raises(PreconditionFailed):
        users.update_user(
            db, user, UserUpdate(job_title="CEO"), actor=admin_actor(operator), expected_version=version
        )
    assert user.job_title == "CTO"


def test_change_email_notifies_old_and_new_address_in_the_users_language(db, world):
    operator, occupier = world
    user = make_user(db, occupier, email="old@example.com", language="de")
    users.change_email(db, user, "New@Example.com", actor=admin_actor(operator))
    assert user.email == "New@example.com"
    mails = db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [(m.to_address, m.template, m.language) for m in mails] == [
        ("old@example.com", "email_changed_old", "de"),
        ("New@example.com", "email_changed_new", "de"),
    ]
    [event] = events(db, "user.email_changed")
    assert event.fields == ["email"] and event.changes == {}


def test_change_email_to_a_taken_address_changes_nothing(db, world):
    operator, occupier = world
    make_user(db, occupier, email="taken@example.com")
    user = make_user(db, occupier, email="me@example.com")
    with pytest.raises(EmailTaken):
        users.change_email(db, user, "TAKEN@example.com", actor=admin_actor(operator))
    assert user.email == "me@example.com"
    assert db.scalar(select(OutboxMessage.id)) is None


def test_deactivate_and_reactivate(db, world):
    operator, occupier = world
    user = make_user(db, occupier)
    users.deactivate_user(db, user, actor=admin_actor(operator))
    assert user.status == UserStatus.DEACTIVATED
    users.deactivate_user(db, user, actor=admin_actor(operator))  # no-op, no second event
    assert len(events(db, "user.deactivated")) == 1
    users.reactivate_user(db, user, actor=admin_actor(operator))
    assert user.status == UserStatus.ACTIVE
    assert events(db, "user.reactivated")[0].changes == {"status": ["DEACTIVATED", "ACTIVE"]}
    with pytest.raises(InvalidState):
        users.reactivate_user(db, user, actor=admin_actor(operator))


def test_busy_user_refuses_single_changes(db, world):
    operator, occupier = world
    user = make_user(db, occupier)
    user.busy_owner, user.busy_until = "job:1", utcnow() + timedelta(minutes=5)
    for action in (
        lambda: users.update_user(db, user, UserUpdate(job_title="x"), actor=admin_actor(operator)),
        lambda: users.deactivate_user(db, user, actor=admin_actor(operator)),
        lambda: users.delete_user(db, user, actor=admin_actor(operator)),
        lambda: users.change_email(db, user, "n@example.com", actor=admin_actor(operator)),
    ):
        with pytest.raises(ActionInProgress):
            action()
    # an expired marker (a crashed worker) does not leave the user stuck
    user.busy_until = utcnow() - timedelta(seconds=1)
    users.deactivate_user(db, user, actor=admin_actor(operator))
    assert user.status == UserStatus.DEACTIVATED


def test_decommissioning_occupier_refuses_add_edit_delete(db, world):
    operator, occupier = world
    user = make_user(db, occupier)
    occupiers.start_decommission(db, occupier, actor=admin_actor(operator))
    with pytest.raises(OccupierDecommissioned) as err:
        make_user(db, occupier)
    assert err.value.status == 409 and err.value.code == "occupier_decommissioned"
    with pytest.raises(OccupierDecommissioned):
        users.update_user(db, user, UserUpdate(job_title="x"), actor=admin_actor(operator))
    with pytest.raises(OccupierDecommissioned):
        users.delete_user(db, user, actor=admin_actor(operator))


def test_delete_removes_user_groups_and_undelivered_mail(db, world):
    from occupant.groups import service as groups
    from occupant.groups.models import group_members

    operator, occupier = world
    group = groups.create_group(db, actor=admin_actor(operator), name="Floor 3", occupier_id=occupier.id)
    user = make_user(db, occupier, email="gone@example.com", group_ids=[group.id])
    users.change_email(db, user, "gone2@example.com", actor=admin_actor(operator))
    user_id = user.id
    users.delete_user(db, user, actor=admin_actor(operator))
    assert db.get(OccupierUser, user_id) is None
    assert db.execute(select(group_members)).all() == []
    mails = db.scalars(select(OutboxMessage)).all()
    assert {m.status for m in mails} == {"CANCELLED"}
    assert all(m.to_address == "" and m.context == {} for m in mails)
    [event] = events(db, "user.deleted")
    assert event.target_id == str(user_id)
