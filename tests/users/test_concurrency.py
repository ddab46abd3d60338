"""Two concurrent creates of the same email: the database decides, exactly one wins."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from occupant.authz.actor import Actor, ActorKind, Role
from occupant.kit.errors import EmailTaken
from occupant.occupiers.models import Occupier
from occupant.users import service as users
from occupant.users.models import OccupierUser
from occupant.users.schemas import UserCreate
from tests.factories import make_occupier, make_operator


def test_two_concurrent_creates_of_one_email_exactly_one_wins(committed):
    with committed() as s:
        operator = make_operator(s)
        occupier_id = make_occupier(s, operator).id
        operator_id = operator.id
        s.commit()
    actor = Actor(kind=ActorKind.STAFF, id=None, operator_id=operator_id, role=Role.OPERATOR_ADMIN)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create(first: str) -> None:
        data = UserCreate(first_name=first, last_name="Race", email="Same@Example.com")
        barrier.wait()
        with committed() as s:
            occupier = s.get(Occupier, occupier_id)
            try:
                users.create_user(s, occupier, data, actor=actor)
                s.commit()
                outcomes.append("created")
            except EmailTaken:
                s.rollback()
                outcomes.append("email_taken")

    threads = [threading.Thread(target=create, args=(n,)) for n in ("One", "Two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["created", "email_taken"]
    with committed() as s:
        assert s.scalar(select(func.count()).select_from(OccupierUser)) == 1


def test_unique_constraint_holds_even_without_the_precheck(committed, monkeypatch):
    """The pre-check is only for a nicer error; the constraint is what guarantees uniqueness."""
    monkeypatch.setattr(users, "_precheck_unique", lambda *a, **k: None)
    with committed() as s:
        operator = make_operator(s)
        occupier = make_occupier(s, operator)
        actor = Actor(kind=ActorKind.STAFF, id=None, operator_id=operator.id, role=Role.OPERATOR_ADMIN)
        users.create_user(
            s, occupier, UserCreate(first_name="A", last_name="B", email="x@example.com"), actor=actor
        )
        s.commit()
        try:
            users.create_user(
                s, occupier, UserCreate(first_name="C", last_name="D", email="X@example.com"), actor=actor
            )
            raised = False
        except EmailTaken:
            raised = True
        assert raised
        s.rollback()
        assert s.scalar(select(func.count()).select_from(OccupierUser)) == 1
