"""The app account follows its user: deactivation, reactivation, deletion and an email change through
``users.service``; occupier admins' limits; an occupier user editing their own details."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.accounts import service
from occupant.accounts.errors import CannotDeleteAdmin, LinkInvalid
from occupant.accounts.models import AccountStatus, AccountToken, App, AppAccount, AppSession, TokenPurpose
from occupant.kit.errors import FieldErrors, NotAuthenticated, PermissionDenied
from occupant.users import service as users
from occupant.users.schemas import OwnDetailsUpdate
from tests.accounts.support import (
    PASSWORD,
    World,
    build_world,
    events,
    last_token,
    mails,
    occupier_admin,
    open_sessions,
    reload,
)
from tests.factories import make_account, make_user


@pytest.fixture
def world(db: Session) -> World:
    return build_world(db)


def sign_in(db: Session, email: str, app: App = App.PORTAL) -> service.SignIn:
    return service.sign_in(db, email=email, password=PASSWORD, app=app, address="198.51.100.7")


def test_deactivating_the_user_suspends_the_account_and_reactivating_brings_it_back(db, world):
    account = make_account(db, world.user, portal=True, mobile_app=True, password=PASSWORD)
    phone = sign_in(db, world.user.email, App.MOBILE_APP)
    service.send_password_reset(db, world.user, actor=world.staff)
    reset = last_token(db, world.user, "password_reset")

    users.deactivate_user(db, world.user, actor=world.staff)
    assert reload(db, account).status == AccountStatus.DEACTIVATED and account.suspended_with_user
    assert open_sessions(db, account) == []
    assert service.resolve_session(db, phone.token, App.MOBILE_APP) is None
    with pytest.raises(NotAuthenticated):
        service.refresh(db, phone.refresh_token)
    with pytest.raises(LinkInvalid):
        service.check_link(db, reset, TokenPurpose.PASSWORD_RESET)
    with pytest.raises(NotAuthenticated):
        sign_in(db, world.user.email)

    users.reactivate_user(db, world.user, actor=world.staff)
    assert reload(db, account).status == AccountStatus.ACTIVE and not account.suspended_with_user
    assert sign_in(db, world.user.email).user.id == world.user.id


def test_an_account_awaiting_sign_in_returns_awaiting_with_its_user(db, world):
    account = make_account(db, world.user)
    users.deactivate_user(db, world.user, actor=world.staff)
    users.reactivate_user(db, world.user, actor=world.staff)
    assert reload(db, account).status == AccountStatus.AWAITING_SIGN_IN
    assert [m.template for m in mails(db, world.user.id)] == ["app_invitation"]  # no mail on the way back


def test_an_account_deactivated_on_its_own_stays_off_when_the_user_returns(db, world):
    account = make_account(db, world.user, password=PASSWORD)
    service.deactivate_account(db, world.user, actor=world.staff)
    users.deactivate_user(db, world.user, actor=world.staff)
    users.reactivate_user(db, world.user, actor=world.staff)
    assert reload(db, account).status == AccountStatus.DEACTIVATED

    # Switched off with its user, then switched off by itself: it stays off too.
    other = make_user(db, world.occupier)
    second = make_account(db, other, password=PASSWORD)
    users.deactivate_user(db, other, actor=world.staff)
    service.deactivate_account(db, other, actor=world.staff)
    users.reactivate_user(db, other, actor=world.staff)
    assert reload(db, second).status == AccountStatus.DEACTIVATED


def test_deleting_the_user_deletes_the_account_its_links_and_sessions(db, world):
    account = make_account(db, world.user, portal=True, password=PASSWORD)
    portal = sign_in(db, world.user.email)
    service.send_password_reset(db, world.user, actor=world.staff)
    account_id = account.id
    users.delete_user(db, world.user, actor=world.staff)
    db.flush()
    assert db.scalar(select(AppAccount.id).where(AppAccount.id == account_id)) is None
    assert db.scalars(select(AccountToken).where(AccountToken.account_id == account_id)).all() == []
    assert db.scalars(select(AppSession).where(AppSession.account_id == account_id)).all() == []
    assert service.resolve_session(db, portal.token, App.PORTAL) is None
    with pytest.raises(NotAuthenticated):
        sign_in(db, "zoe.martin@acme.example")


def test_an_email_change_ends_sessions_and_sends_a_pending_invitation_to_the_new_address(db, world):
    account = make_account(db, world.user, portal=True, password=PASSWORD)
    portal = sign_in(db, world.user.email)
    users.change_email(db, world.user, "zoe@new.example", actor=world.staff)
    assert open_sessions(db, account) == []
    assert service.resolve_session(db, portal.token, App.PORTAL) is None
    with pytest.raises(NotAuthenticated):
        sign_in(db, "Zoe.Martin@acme.example")
    assert sign_in(db, "zoe@new.example").user.id == world.user.id

    # The invitation went to a mistyped address: its link dies, a new one goes to the right one.
    typo = make_user(db, world.occupier, email="ben@acme.exmaple")
    make_account(db, typo)
    old = last_token(db, typo)
    users.change_email(db, typo, "ben@acme.example", actor=world.staff)
    with pytest.raises(LinkInvalid):
        service.check_link(db, old, TokenPurpose.INVITATION)
    resent = mails(db, typo.id, "app_invitation")[-1]
    assert resent.to_address == "ben@acme.example" and resent.context["resent"] is True
    service.set_password_with_link(db, last_token(db, typo), PASSWORD, address=None)
    assert events(db, "app_account.invitation_resent", typo)[0].actor_id == world.staff.audit_id


def test_occupier_admins_cannot_delete_admins_but_staff_can(db, world):
    _, me = occupier_admin(db, world.occupier)
    colleague = make_user(db, world.occupier)
    make_account(db, colleague, role="admin")
    with pytest.raises(CannotDeleteAdmin) as refused:
        users.delete_user(db, colleague, actor=me)
    assert (refused.value.status, refused.value.code) == (403, "cannot_delete_admin")
    assert isinstance(refused.value, PermissionDenied)
    service.change_role(db, colleague, "user", actor=me)  # demote first, then it can go
    users.delete_user(db, colleague, actor=me)

    plain = make_user(db, world.occupier)
    make_account(db, plain, role="user")
    users.delete_user(db, plain, actor=me)
    without_account = make_user(db, world.occupier)
    users.delete_user(db, without_account, actor=me)
    other_admin = make_user(db, world.occupier)
    make_account(db, other_admin, role="admin")
    users.delete_user(db, other_admin, actor=world.staff)
    assert len(events(db, "user.deleted")) == 4


def test_an_occupier_user_edits_their_own_details(db, world):
    account = make_account(db, world.user, password=PASSWORD)
    me = service.actor_for_account(account, world.user)
    users.update_own_details(
        db,
        world.user,
        OwnDetailsUpdate(last_name="Dupont", mobile="06 12 34 56 78", language="DE", job_title=""),
        actor=me,
    )
    assert (world.user.last_name, world.user.mobile, world.user.language) == ("Dupont", "+33612345678", "de")
    assert world.user.job_title is None and world.user.first_name == "Zoé"
    [updated] = events(db, "user.updated", world.user)
    assert (updated.actor_type, updated.actor_id) == ("occupier_user", str(world.user.id))
    assert updated.changes == {"language": ["fr", "de"]} and "last_name" in updated.fields

    with pytest.raises(FieldErrors) as bad:
        users.update_own_details(
            db, world.user, OwnDetailsUpdate(first_name=None, mobile="12", language="xx"), actor=me
        )
    assert {(e["field"], e["code"]) for e in bad.value.errors} == {
        ("first_name", "required"),
        ("mobile", "invalid_phone"),
        ("language", "invalid_language"),
    }
    with pytest.raises(ValidationError):
        OwnDetailsUpdate.model_validate({"email": "me@elsewhere.example"})

    colleague = make_user(db, world.occupier)
    _, admin = occupier_admin(db, world.occupier)
    for actor in (admin, world.staff):  # the user only: others use update_user
        with pytest.raises(PermissionDenied):
            users.update_own_details(db, colleague, OwnDetailsUpdate(first_name="X"), actor=actor)
    with pytest.raises(PermissionDenied):
        users.update_own_details(db, colleague, OwnDetailsUpdate(first_name="X"), actor=me)
    assert colleague.first_name != "X"
