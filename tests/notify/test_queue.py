"""Queueing mail in the caller's transaction: secrets sealed, templates checked, cancelled on deletion."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from tests.factories import admin_actor, make_occupier, make_operator, make_user

from occupant.kit import runtime
from occupant.kit.security import SecretBox
from occupant.notify.delivery import deliver_due
from occupant.notify.mailbox import list_folder
from occupant.notify.models import MessageStatus, OutboxMessage
from occupant.notify.service import queue_mail
from occupant.users import service as users


@pytest.fixture
def people(db):
    operator = make_operator(db, name="Quai Ouest")
    occupier = make_occupier(db, operator)
    return operator, make_user(db, occupier, language="fr", first_name="Inès", email="ines@quai.example")


def test_secrets_are_sealed_with_the_instance_key(db, people):
    operator, user = people
    message = queue_mail(
        db,
        operator_id=operator.id,
        to=user.email,
        template="email_changed_old",
        language="fr",
        user_id=user.id,
        context={"first_name": "Inès", "new_email": "n@quai.example"},
        secrets={"password": "Tr0ub4dor&3", "sign_in_link": "https://x.example/t/s3cr3t"},
    )
    db.flush()
    sealed, context = db.execute(
        text("SELECT sealed_secrets, context FROM outbox_messages WHERE id = :id"), {"id": message.id}
    ).one()
    assert "Tr0ub4dor" not in sealed and "s3cr3t" not in sealed
    assert "Tr0ub4dor" not in str(context)
    assert SecretBox("test-secret-key-not-for-production").open(sealed)["password"] == "Tr0ub4dor&3"
    with pytest.raises(ValueError):
        SecretBox("another-instance").open(sealed)


def test_unknown_templates_and_missing_values_are_refused(db, people):
    operator, user = people
    with pytest.raises(ValueError, match="unknown mail template"):
        queue_mail(db, operator_id=operator.id, to=user.email, template="nope", language="en", context={})
    with pytest.raises(ValueError, match="new_email"):
        queue_mail(
            db,
            operator_id=operator.id,
            to=user.email,
            template="email_changed_old",
            language="en",
            context={"first_name": "Inès"},
        )
    # a value the template needs may come as a secret
    queue_mail(
        db,
        operator_id=operator.id,
        to=user.email,
        template="email_changed_old",
        language="en",
        context={"first_name": "Inès"},
        secrets={"new_email": "n@quai.example"},
    )
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_deleting_a_user_cancels_and_wipes_their_mail(db, people):
    operator, user = people
    users.change_email(db, user, "ines.m@quai.example", actor=admin_actor(operator))
    db.flush()
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == 2

    users.delete_user(db, user, actor=admin_actor(operator))
    db.flush()

    rows = db.scalars(select(OutboxMessage)).all()
    assert [r.status for r in rows] == [MessageStatus.CANCELLED] * 2
    assert all(
        (r.to_address, r.context, r.sealed_secrets, r.occupier_user_id) == ("", {}, None, None) for r in rows
    )


def test_delivery_inside_a_rolled_back_test_transaction(db, people, make_settings):
    operator, user = people
    users.change_email(db, user, "ines.m@quai.example", actor=admin_actor(operator))
    db.commit()  # a savepoint: the db fixture undoes everything afterwards
    settings = make_settings()

    report = deliver_due(runtime.get_session_factory(), settings=settings)

    assert report.sent == 2
    assert {s.to for s in list_folder(10, 0, operator_id=operator.id, folder=settings.mail_dir)} == {
        "ines@quai.example",
        "ines.m@quai.example",
    }
    db.expire_all()
    assert {r.status for r in db.scalars(select(OutboxMessage))} == {MessageStatus.SENT}
