"""Rows written in bulk read back exactly like rows the ORM writes, on both databases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from occupant.audit.models import AuditEvent
from occupant.kit.bulkwrite import insert_rows, reserve_ids, table_of
from occupant.users.models import OccupierUser
from tests.factories import make_occupier, make_operator, make_user

COLUMNS = (
    "id",
    "operator_id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "occupier_id",
    "fields",
    "changes",
    "outcome",
    "request_id",
)


def test_bulk_rows_read_back_like_orm_rows(db):
    operator = make_operator(db)
    when = datetime(2026, 12, 3, 9, 30, 0)  # no microseconds: SQLite keeps the same text as the ORM
    by_orm = AuditEvent(
        operator_id=operator.id,
        occurred_at=when,
        actor_type="system",
        action="x.orm",
        target_type="t",
        fields=["a", "b"],
        changes={"status": ["A", "B"], "n": [1, None]},
    )
    db.add(by_orm)
    db.flush()
    ids = reserve_ids(db, table_of(AuditEvent), 3)
    assert len(ids) == 3 and min(ids) > by_orm.id and len(set(ids)) == 3
    rows = [
        (
            i,
            operator.id,
            when,
            "system",
            None,
            "x.bulk",
            "t",
            str(i),
            None,
            ["a", "b"],
            {"n": [1, None]},
            "ok",
            None,
        )
        for i in ids
    ]
    assert insert_rows(db, table_of(AuditEvent), COLUMNS, rows) == 3
    db.expire_all()
    found = db.scalars(select(AuditEvent).where(AuditEvent.action == "x.bulk").order_by(AuditEvent.id)).all()
    assert [e.id for e in found] == ids
    assert all(e.fields == ["a", "b"] and e.changes == {"n": [1, None]} for e in found)
    # Compared in SQL with a value the ORM binds: the stored times are the ORM's own format.
    assert db.scalar(select(AuditEvent.id).where(AuditEvent.occurred_at == when, AuditEvent.id == ids[0]))
    later = AuditEvent(operator_id=operator.id, actor_type="system", action="x.after", target_type="t")
    db.add(later)
    db.flush()
    assert later.id > max(ids)  # the ORM's next id comes after the reserved ones


def test_no_rows_is_nothing(db):
    assert insert_rows(db, table_of(OccupierUser), ("id",), []) == 0
    assert reserve_ids(db, table_of(OccupierUser), 0) == []


def test_ids_reserved_for_users_do_not_collide_with_existing_ones(db):
    occupier = make_occupier(db, make_operator(db))
    existing = make_user(db, occupier)
    assert min(reserve_ids(db, table_of(OccupierUser), 5)) > existing.id
