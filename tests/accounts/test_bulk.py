"""App-account actions for many users at once (the bulk engine's): resend invitations, welcome emails,
forced password resets. Each user gets what the single action gives, or fails alone with its error; the
work is set-based, so its statement count does not grow with the batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from occupant.accounts import bulk, service
from occupant.accounts.errors import LinkInvalid, PasswordChangeRequired
from occupant.accounts.models import AccountStatus, App, TokenPurpose
from occupant.accounts.service import AccountResult
from occupant.kit.clock import utcnow
from occupant.kit.errors import PermissionDenied
from occupant.occupiers import service as occupiers
from occupant.users.models import OccupierUser
from tests.accounts.support import (
    PASSWORD,
    World,
    account_actions,
    build_world,
    events,
    last_token,
    mails,
    occupier_admin,
    open_sessions,
    reload,
    token_of,
)
from tests.factories import (
    make_account,
    make_occupier,
    make_operator,
    make_site,
    make_user,
    site_manager_actor,
)

Many = Callable[..., list[AccountResult]]


@pytest.fixture
def world(db: Session) -> World:
    return build_world(db)


def sign_in(db: Session, email: str, app: App = App.PORTAL) -> service.SignIn:
    return service.sign_in(db, email=email, password=PASSWORD, app=app, address="198.51.100.9")


def errors(results: Sequence[AccountResult]) -> list[str | None]:
    return [None if r.ok else type(r.error).__name__ for r in results]


def test_resend_many_sends_new_links_to_the_invited_and_reports_the_others(db, world):
    awaiting = make_user(db, world.occupier, language="nl")
    make_account(db, awaiting, portal=True, mobile_app=True)
    old_link = last_token(db, awaiting)
    active = make_user(db, world.occupier)
    make_account(db, active, password=PASSWORD)
    never = make_user(db, world.occupier)
    busy = make_user(db, world.occupier)
    make_account(db, busy)
    busy.busy_owner, busy.busy_until = "bulk:7", utcnow() + timedelta(minutes=5)
    stranger = make_user(db, make_occupier(db, make_operator(db)))
    make_account(db, stranger)
    before = len(mails(db))

    results = bulk.resend_invitation_many(
        db, [awaiting, active, never, busy, stranger, awaiting], actor=world.staff
    )

    assert [r.user.id for r in results] == [u.id for u in (awaiting, active, never, busy, stranger, awaiting)]
    assert errors(results) == [None, "InvalidState", "InvalidState", "ActionInProgress", "NotFound", None]
    assert results[1].error is not None and results[1].error.message == (
        "Only an account awaiting its first sign-in can be sent its invitation again."
    )
    assert (
        results[2].error is not None
        and results[2].error.message == "This user has not been invited to the apps."
    )
    db.flush()
    [sent] = mails(db)[before:]  # one per user, even listed twice
    assert (sent.occupier_user_id, sent.template, sent.language) == (awaiting.id, "app_invitation", "nl")
    assert sent.context["resent"] is True and sent.context["apps"] == ["portal", "mobile_app"]
    assert "link" not in sent.context
    with pytest.raises(LinkInvalid):  # the old link died
        service.check_link(db, old_link, TokenPurpose.INVITATION)
    account, _ = service.set_password_with_link(db, token_of(sent), PASSWORD, address=None)
    assert account.status == AccountStatus.ACTIVE
    assert account_actions(db, awaiting).count("app_account.invitation_resent") == 1
    assert [e.target_id for e in events(db, "app_account.invitation_resent")] == [str(awaiting.id)]


def test_welcome_many_mails_the_invited_and_the_active_but_not_the_deactivated(db, world):
    awaiting = make_user(db, world.occupier)
    make_account(db, awaiting, portal=False, mobile_app=True)
    active = make_user(db, world.occupier, language="es")
    make_account(db, active, password=PASSWORD)
    off = make_user(db, world.occupier)
    make_account(db, off)
    service.deactivate_account(db, off, actor=world.staff)
    before = len(mails(db))

    results = bulk.send_welcome_many(db, [awaiting, active, off], actor=world.staff)

    assert errors(results) == [None, None, "InvalidState"]
    sent = mails(db)[before:]
    assert [(m.occupier_user_id, m.template, m.language) for m in sent] == [
        (awaiting.id, "welcome", "en"),
        (active.id, "welcome", "es"),
    ]
    single = make_user(db, world.occupier)
    make_account(db, single, portal=False, mobile_app=True)
    service.send_welcome(db, single, actor=world.staff)
    [alone] = mails(db, single.id, "welcome")
    assert sent[0].context == {**alone.context, "first_name": awaiting.first_name}  # what the single one says
    assert [e.target_id for e in events(db, "app_account.welcome_sent")][:2] == [
        str(awaiting.id),
        str(active.id),
    ]


def test_force_reset_many_signs_everyone_out_and_the_next_sign_in_must_choose(db, world):
    first = make_user(db, world.occupier)
    first_account = make_account(db, first, portal=True, mobile_app=True, password=PASSWORD)
    portal = sign_in(db, first.email)
    mobile = sign_in(db, first.email, App.MOBILE_APP)
    second = make_user(db, world.occupier)
    second_account = make_account(db, second, password=PASSWORD)
    service.force_password_reset(db, second, actor=world.staff)  # already forced: no change to record
    awaiting = make_user(db, world.occupier)
    make_account(db, awaiting)
    kept = make_user(db, world.occupier)
    kept_account = make_account(db, kept, password=PASSWORD)
    kept_session = sign_in(db, kept.email)

    results = bulk.force_password_reset_many(db, [first, second, awaiting], actor=world.staff)

    assert errors(results) == [None, None, "InvalidState"]
    db.flush()
    assert open_sessions(db, first_account) == [] and open_sessions(db, second_account) == []
    assert [s.id for s in open_sessions(db, kept_account)] == [kept_session.session_row.id]
    assert service.resolve_session(db, portal.token, App.PORTAL) is None
    assert service.resolve_session(db, mobile.token, App.MOBILE_APP) is None
    assert reload(db, first_account).must_change_password is True
    with pytest.raises(PasswordChangeRequired):
        sign_in(db, first.email, App.MOBILE_APP)
    assert sign_in(db, first.email).must_change_password is True
    forced = {e.target_id: e.changes for e in events(db, "app_account.password_reset_forced")}
    assert forced[str(first.id)] == {"must_change_password": [False, True]}
    assert forced[str(second.id)] == {}  # already forced by the single action; now again, no change
    assert len(events(db, "app_account.password_reset_forced")) == 3
    assert mails(db, first.id, "password_reset") == []  # no email


@pytest.mark.parametrize(
    "many", [bulk.resend_invitation_many, bulk.send_welcome_many, bulk.force_password_reset_many]
)
def test_many_user_actions_reach_only_the_actors_scope(db, world, many: Many):
    _, admin = occupier_admin(db, world.occupier)
    mine = make_user(db, world.occupier)
    make_account(db, mine, password=PASSWORD if many is bulk.force_password_reset_many else None)
    neighbour = make_user(db, make_occupier(db, world.operator, name="Neighbour"))
    make_account(db, neighbour, password=PASSWORD)
    [own, theirs] = many(db, [mine, neighbour], actor=admin)
    assert own.ok and type(theirs.error).__name__ == "NotFound"

    elsewhere = make_site(db, world.operator, code="LYS01", country="FR")
    far = make_user(db, make_occupier(db, world.operator, sites_=[elsewhere], name="Far"))
    make_account(db, far, password=PASSWORD)
    manager = site_manager_actor(world.operator, [world.occupier.sites[0].id])
    [near, away] = many(db, [mine, far], actor=manager)
    assert type(away.error).__name__ == "NotFound"
    assert type(near.error).__name__ != "NotFound"

    user_actor = service.actor_for_account(service.account_of(db, mine), mine)  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied):
        many(db, [mine], actor=user_actor)


def test_invite_many_keeps_a_site_manager_to_their_sites(db, world):
    elsewhere = make_site(db, world.operator, code="LYS01", country="FR")
    far = make_user(db, make_occupier(db, world.operator, sites_=[elsewhere], name="Far"))
    manager = site_manager_actor(world.operator, [world.occupier.sites[0].id])
    [near, away] = service.invite_many(db, [world.user, far], App.PORTAL, actor=manager)
    assert near.ok and type(away.error).__name__ == "NotFound"
    assert service.account_of(db, far) is None


def test_a_decommissioning_occupier_refuses_every_user(db, world):
    make_account(db, world.user)
    occupiers.start_decommission(db, world.occupier, actor=world.staff)
    db.flush()
    [result] = bulk.resend_invitation_many(db, [world.user], actor=world.staff)
    assert type(result.error).__name__ == "OccupierDecommissioned"
    assert len(mails(db, world.user.id, "app_invitation")) == 1


def _statements(db: Session, run: Callable[[], list[AccountResult]]) -> int:
    count = 0

    def counter(*_args: object) -> None:
        nonlocal count
        count += 1

    connection = db.connection()
    event.listen(connection, "before_cursor_execute", counter)
    try:
        results = run()
        db.flush()
    finally:
        event.remove(connection, "before_cursor_execute", counter)
    assert all(r.ok for r in results), [r.error for r in results if r.error]
    return count


@pytest.mark.parametrize(
    ("many", "password"),
    [
        (bulk.resend_invitation_many, None),
        (bulk.send_welcome_many, None),
        (bulk.force_password_reset_many, PASSWORD),
    ],
)
def test_the_statement_count_does_not_grow_with_the_batch(db, world, many: Many, password: str | None):
    def batch(n: int) -> list[OccupierUser]:
        people = [make_user(db, world.occupier) for _ in range(n)]
        for person in people:
            make_account(db, person, password=password)
        return people

    small, large = batch(3), batch(30)
    if password is not None:
        for person in (small + large)[::3]:
            sign_in(db, person.email)  # open sessions to end
    db.flush()
    assert _statements(db, lambda: many(db, small, actor=world.staff)) == _statements(
        db, lambda: many(db, large, actor=world.staff)
    )


def test_results_keep_the_order_and_a_user_twice_counts_once(db, world):
    people = [make_user(db, world.occupier) for _ in range(3)]
    for person in people:
        make_account(db, person)
    order = [people[2], people[0], people[2], people[1]]
    results = bulk.send_welcome_many(db, order, actor=world.staff)
    assert [r.user.id for r in results] == [u.id for u in order]
    assert results[0] == results[2]
    assert len([m for m in mails(db) if m.template == "welcome"]) == 3
    assert bulk.send_welcome_many(db, [], actor=world.staff) == []
