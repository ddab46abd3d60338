"""Each action writes its audit event in the same transaction as its change: both land, or neither."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from occupant.audit import queries
from occupant.audit.models import AuditEvent
from occupant.kit.context import request_id_var
from occupant.notify.models import OutboxMessage
from occupant.users import service as users
from occupant.users.models import OccupierUser
from occupant.users.schemas import UserUpdate
from tests.factories import admin_actor, make_occupier, make_operator, make_user, site_manager_actor


def test_a_users_life_in_audit_events_in_order(db):
    operator = make_operator(db)
    occupier = make_occupier(db, operator)
    me = admin_actor(operator, staff_id=42)
    token = request_id_var.set("req-123")
    try:
        user = make_user(db, occupier, actor=me)
        users.update_user(db, user, UserUpdate(job_title="Chef"), actor=me)
        users.change_email(db, user, "new.address@example.com", actor=me)
        users.deactivate_user(db, user, actor=me)
        users.reactivate_user(db, user, actor=me)
        user_id = user.id
        users.delete_user(db, user, actor=me)
    finally:
        request_id_var.reset(token)
    trail = queries.list_events(db, me, target_type="occupier_user", target_id=str(user_id)).items
    assert [e.action for e in reversed(trail)] == [
        "user.created",
        "user.updated",
        "user.email_changed",
        "user.deactivated",
        "user.reactivated",
        "user.deleted",
    ]
    assert {(e.actor_type, e.actor_id, e.request_id, e.occupier_id) for e in trail} == {
        ("staff", "42", "req-123", occupier.id)
    }


def test_a_failure_after_the_change_leaves_neither_change_nor_event_nor_mail(committed, monkeypatch):
    with committed() as s:
        operator = make_operator(s)
        user = make_user(s, make_occupier(s, operator), email="before@example.com")
        s.commit()
        before = s.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()))
    calls = {"n": 0}
    real_queue = users.queue_mail

    def queue_then_fail(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("mail template broken")
        return real_queue(*args, **kwargs)

    monkeypatch.setattr(users, "queue_mail", queue_then_fail)
    with committed() as s, pytest.raises(RuntimeError):
        try:
            users.change_email(
                s, s.get(OccupierUser, user.id), "after@example.com", actor=admin_actor(operator)
            )
            s.commit()
        except RuntimeError:
            s.rollback()
            raise
    with committed() as s:
        assert s.get(OccupierUser, user.id).email == "before@example.com"
        assert s.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc())) == before
        assert s.scalar(select(OutboxMessage.id)) is None


def test_site_managers_see_only_their_occupiers_events(db):
    operator = make_operator(db)
    mine, theirs = make_occupier(db, operator), make_occupier(db, operator)
    make_user(db, mine)
    make_user(db, theirs)
    manager = site_manager_actor(operator, [mine.sites[0].id])
    seen = {e.occupier_id for e in queries.list_events(db, manager, action="user").items}
    assert seen == {mine.id}
    everything = {e.occupier_id for e in queries.list_events(db, admin_actor(operator), action="user").items}
    assert everything == {mine.id, theirs.id}


def test_export_rows_hold_ids_and_field_names(db):
    operator = make_operator(db)
    user = make_user(db, make_occupier(db, operator), first_name="Zebedee", email="zebedee@example.com")
    rows = list(queries.export_rows(db, admin_actor(operator), action="user.created"))
    assert len(rows) == 1 and rows[0][4] == "user.created" and rows[0][6] == str(user.id)
    assert "zebedee" not in repr(rows).lower()
