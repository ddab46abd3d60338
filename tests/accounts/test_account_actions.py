"""App-account actions as staff and occupier admins use them: invitations, resends, roles, deactivation,
password resets, the welcome email; what the user receives and what the audit log keeps."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from occupant.accounts import service
from occupant.accounts.errors import AppNotOffered, LinkInvalid, PasswordChangeRequired
from occupant.accounts.models import (
    AccountRole,
    AccountStatus,
    AccountToken,
    App,
    InviteState,
    TokenPurpose,
)
from occupant.audit.models import AuditEvent
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.kit.clock import shifted, utcnow
from occupant.kit.errors import (
    ActionInProgress,
    FieldErrors,
    InvalidState,
    NotAuthenticated,
    NotFound,
    OccupierDecommissioned,
    PermissionDenied,
)
from occupant.kit.settings import get_settings
from occupant.occupiers import service as occupiers
from occupant.users import service as users
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
    secrets_of,
    token_of,
)
from tests.factories import make_account, make_occupier, make_operator, make_user


@pytest.fixture
def world(db: Session) -> World:
    return build_world(db)


def sign_in(db: Session, email: str, app: App = App.PORTAL, password: str = PASSWORD) -> service.SignIn:
    return service.sign_in(db, email=email, password=password, app=app, address="198.51.100.7")


# --- invitations ------------------------------------------------------------------------------------


def test_a_user_without_an_account_is_not_invited_and_a_role_alone_creates_it(db, world):
    assert service.account_of(db, world.user) is None
    account = service.set_up_account(db, world.user, role="admin", actor=world.staff)
    assert (account.status, account.role) == (AccountStatus.NOT_INVITED, AccountRole.ADMIN)
    assert (account.portal, account.mobile_app) == (InviteState.NOT_INVITED, InviteState.NOT_INVITED)
    assert mails(db, world.user.id) == []
    [created] = events(db, "app_account.role_changed")
    assert created.changes == {"role": [None, "admin"]} and created.target_id == str(world.user.id)


def test_the_first_invitation_mails_one_sealed_link_for_both_apps_in_the_users_language(db, world):
    account = service.set_up_account(
        db, world.user, role="user", invite_portal=True, invite_mobile_app=True, actor=world.staff
    )
    assert account.status == AccountStatus.AWAITING_SIGN_IN
    assert (account.portal, account.mobile_app) == (InviteState.INVITED, InviteState.INVITED)
    [message] = mails(db, world.user.id)
    assert (message.template, message.language, message.to_address) == (
        "app_invitation",
        "fr",
        "Zoe.Martin@acme.example",
    )
    assert message.context == {
        "first_name": "Zoé",
        "occupier_name": "Acme SARL",
        "apps": ["portal", "mobile_app"],
        "expires_hours": 72,
        "resent": False,
    }
    link = secrets_of(message)["link"]
    assert link.startswith(f"{get_settings().base_url}/portal/invitation/")
    token = link.rsplit("/", 1)[1]
    # Only a hash of the token is stored, and it expires after the configured hours.
    [stored] = db.scalars(select(AccountToken).where(AccountToken.account_id == account.id)).all()
    assert stored.token_hash != token and token not in json.dumps(message.context)
    assert stored.purpose == TokenPurpose.INVITATION
    assert timedelta(hours=71, minutes=59) < stored.expires_at - stored.created_at <= timedelta(hours=72)
    assert service.check_link(db, token, TokenPurpose.INVITATION).id == stored.id
    [invited] = events(db, "app_account.invited")
    assert invited.fields == ["mobile_app", "portal"]
    assert invited.changes == {
        "role": [None, "user"],
        "portal": ["NOT_INVITED", "INVITED"],
        "mobile_app": ["NOT_INVITED", "INVITED"],
        "status": ["NOT_INVITED", "AWAITING_SIGN_IN"],
    }


def test_the_second_app_while_the_link_is_pending_only_notifies_to_use_that_link(db, world):
    service.invite(db, world.user, App.PORTAL, actor=world.staff)
    token = last_token(db, world.user)
    account = service.invite(db, world.user, App.MOBILE_APP, actor=world.staff)
    assert account.mobile_app == InviteState.INVITED and account.status == AccountStatus.AWAITING_SIGN_IN
    first, notice = mails(db, world.user.id)
    assert (first.template, notice.template) == ("app_invitation", "app_second_invitation")
    assert notice.context == {
        "first_name": "Zoé",
        "app": "mobile_app",
        "password_set": False,
        "portal_url": f"{get_settings().base_url}/portal",
    }
    assert notice.sealed_secrets is None
    service.check_link(db, token, TokenPurpose.INVITATION)  # the first link still works
    # The one password then opens both apps.
    service.set_password_with_link(db, token, PASSWORD, address=None)
    assert sign_in(db, world.user.email, App.MOBILE_APP).account.id == account.id


def test_the_second_app_after_the_password_is_set_says_sign_in_with_the_same_password(db, world):
    make_account(db, world.user, portal=True, password=PASSWORD)
    service.set_up_account(
        db, world.user, role="user", invite_portal=True, invite_mobile_app=True, actor=world.staff
    )
    [notice] = mails(db, world.user.id, "app_second_invitation")
    assert notice.context["password_set"] is True and notice.context["app"] == "mobile_app"
    assert len(mails(db, world.user.id, "app_invitation")) == 1  # no new link
    # Asking again for apps already invited changes nothing and sends nothing.
    before = len(mails(db, world.user.id))
    service.invite(db, world.user, App.PORTAL, actor=world.staff)
    service.set_up_account(
        db, world.user, role="user", invite_portal=True, invite_mobile_app=True, actor=world.staff
    )
    assert len(mails(db, world.user.id)) == before
    assert account_actions(db, world.user).count("app_account.invited") == 2


def test_an_invitation_after_the_first_link_expired_sends_a_new_link(db, world):
    service.invite(db, world.user, App.PORTAL, actor=world.staff)
    old = last_token(db, world.user)
    with shifted(timedelta(hours=73)):
        service.invite(db, world.user, App.MOBILE_APP, actor=world.staff)
        message = mails(db, world.user.id)[-1]
        assert message.template == "app_invitation"
        assert message.context["apps"] == ["portal", "mobile_app"]
        with pytest.raises(LinkInvalid):
            service.check_link(db, old, TokenPurpose.INVITATION)
        service.check_link(db, last_token(db, world.user), TokenPurpose.INVITATION)


def test_apps_the_occupier_does_not_offer_cannot_be_invited(db):
    world = build_world(db, mobile_app_offered=False)
    with pytest.raises(AppNotOffered) as refused:
        service.set_up_account(
            db, world.user, role="admin", invite_portal=True, invite_mobile_app=True, actor=world.staff
        )
    assert refused.value.code == "app_not_offered" and refused.value.status == 422
    assert refused.value.errors == [
        {
            "field": "invite_mobile_app",
            "code": "app_not_offered",
            "message": "The occupier does not offer this app.",
        }
    ]
    with pytest.raises(AppNotOffered):
        service.invite(db, world.user, App.MOBILE_APP, actor=world.staff)
    assert service.account_of(db, world.user) is None and mails(db) == []
    service.invite(db, world.user, App.PORTAL, actor=world.staff)  # the portal is offered
    assert mails(db, world.user.id)[0].context["apps"] == ["portal"]


def test_resend_kills_the_old_link_and_works_only_while_awaiting_sign_in(db, world):
    with pytest.raises(InvalidState):  # never invited
        service.resend_invitation(db, world.user, actor=world.staff)
    service.invite(db, world.user, App.PORTAL, actor=world.staff)
    old = last_token(db, world.user)
    service.resend_invitation(db, world.user, actor=world.staff)
    resent = mails(db, world.user.id)[-1]
    assert resent.template == "app_invitation" and resent.context["resent"] is True
    with pytest.raises(LinkInvalid) as dead:
        service.check_link(db, old, TokenPurpose.INVITATION)
    assert dead.value.details == {"reason": "unknown"}
    new = last_token(db, world.user)
    service.set_password_with_link(db, new, PASSWORD, address=None)
    with pytest.raises(InvalidState) as refused:
        service.resend_invitation(db, world.user, actor=world.staff)
    assert refused.value.code == "invalid_state"
    assert account_actions(db, world.user) == [
        "app_account.invited",
        "app_account.invitation_resent",
        "app_account.password_set",
    ]


# --- roles ------------------------------------------------------------------------------------------


def test_role_changes_are_audited_and_an_occupier_admin_cannot_change_their_own(db, world):
    make_account(db, world.user)
    service.change_role(db, world.user, AccountRole.ADMIN, actor=world.staff)
    service.change_role(db, world.user, AccountRole.ADMIN, actor=world.staff)  # no-op
    changes = [e.changes for e in events(db, "app_account.role_changed", world.user)]
    assert changes == [{"role": ["user", "admin"]}]

    admin, me = occupier_admin(db, world.occupier)
    with pytest.raises(InvalidState) as own:
        service.change_role(db, admin, AccountRole.USER, actor=me)
    assert "another admin" in own.value.message
    with pytest.raises(InvalidState):
        service.set_up_account(db, admin, role="user", actor=me)
    assert reload(db, service.account_of(db, admin)).role == AccountRole.ADMIN
    # Another admin may: no lock-out by accident, but no lock-in either.
    service.change_role(db, world.user, AccountRole.USER, actor=me)
    service.change_role(db, admin, AccountRole.USER, actor=world.staff)
    assert reload(db, service.account_of(db, admin)).role == AccountRole.USER


def test_the_actor_of_an_account_follows_its_role(db, world):
    account = make_account(db, world.user, role="admin")
    actor = service.actor_for_account(account, world.user)
    assert actor == Actor(
        kind=ActorKind.OCCUPIER_USER,
        id=world.user.id,
        operator_id=world.operator.id,
        role=Role.OCCUPIER_ADMIN,
        occupier_id=world.occupier.id,
    )
    service.change_role(db, world.user, "user", actor=world.staff)
    assert service.actor_for_account(account, world.user).role is Role.OCCUPIER_USER


# --- deactivation -----------------------------------------------------------------------------------


def test_deactivating_an_account_ends_sessions_and_links_and_activating_restores_it(db, world):
    account = make_account(db, world.user, portal=True, mobile_app=True, password=PASSWORD)
    sign_in(db, world.user.email)
    mobile = sign_in(db, world.user.email, App.MOBILE_APP)
    service.send_password_reset(db, world.user, actor=world.staff)
    reset = last_token(db, world.user, "password_reset")

    service.deactivate_account(db, world.user, actor=world.staff)
    assert reload(db, account).status == AccountStatus.DEACTIVATED
    assert open_sessions(db, account) == []
    assert service.resolve_session(db, mobile.token, App.MOBILE_APP) is None
    with pytest.raises(LinkInvalid):
        service.check_link(db, reset, TokenPurpose.PASSWORD_RESET)
    with pytest.raises(NotAuthenticated) as refused:
        sign_in(db, world.user.email)
    assert refused.value.message == "Email or password is incorrect."
    service.deactivate_account(db, world.user, actor=world.staff)  # no-op
    assert len(events(db, "app_account.deactivated")) == 1

    before = len(mails(db, world.user.id))
    service.activate_account(db, world.user, actor=world.staff)
    assert reload(db, account).status == AccountStatus.ACTIVE and len(mails(db, world.user.id)) == before
    assert sign_in(db, world.user.email).account.id == account.id
    assert [e.changes for e in events(db, "app_account.activated")] == [{"status": ["DEACTIVATED", "ACTIVE"]}]


def test_an_account_awaiting_sign_in_comes_back_awaiting_and_needs_a_resend(db, world):
    make_account(db, world.user)
    old = last_token(db, world.user)
    service.deactivate_account(db, world.user, actor=world.staff)
    account = service.activate_account(db, world.user, actor=world.staff)
    assert account.status == AccountStatus.AWAITING_SIGN_IN
    with pytest.raises(LinkInvalid):
        service.check_link(db, old, TokenPurpose.INVITATION)
    service.resend_invitation(db, world.user, actor=world.staff)
    service.set_password_with_link(db, last_token(db, world.user), PASSWORD, address=None)
    assert reload(db, account).status == AccountStatus.ACTIVE


def test_deactivation_refusals(db, world):
    with pytest.raises(InvalidState):  # no account
        service.deactivate_account(db, world.user, actor=world.staff)
    service.change_role(db, world.user, "user", actor=world.staff)
    with pytest.raises(InvalidState):  # a role, but never invited
        service.deactivate_account(db, world.user, actor=world.staff)
    admin, me = occupier_admin(db, world.occupier)
    with pytest.raises(InvalidState) as own:
        service.deactivate_account(db, admin, actor=me)
    assert "another admin" in own.value.message
    make_account(db, world.user)
    service.deactivate_account(db, world.user, actor=world.staff)
    with pytest.raises(InvalidState) as off:  # inviting a deactivated account: activate it first
        service.invite(db, world.user, App.MOBILE_APP, actor=world.staff)
    assert "activate it first" in off.value.message
    service.activate_account(db, world.user, actor=world.staff)
    users.deactivate_user(db, world.user, actor=world.staff)
    with pytest.raises(InvalidState) as user_off:
        service.activate_account(db, world.user, actor=world.staff)
    assert "reactivate the user" in user_off.value.message


# --- passwords and welcome --------------------------------------------------------------------------


def test_a_password_reset_before_the_invitation_was_used_sends_the_invitation_again(db, world):
    with pytest.raises(InvalidState) as never:
        service.send_password_reset(db, world.user, actor=world.staff)
    assert never.value.message == "This user has not been invited to the apps."
    make_account(db, world.user, portal=True, mobile_app=True)
    first = last_token(db, world.user)

    service.send_password_reset(db, world.user, actor=world.staff)

    [_, again] = mails(db, world.user.id, "app_invitation")
    assert again.context["resent"] is True and again.context["apps"] == ["portal", "mobile_app"]
    assert mails(db, world.user.id, "password_reset") == []  # no reset link: there is no password yet
    with pytest.raises(LinkInvalid):  # the old link died
        service.check_link(db, first, TokenPurpose.INVITATION)
    account, _ = service.set_password_with_link(db, token_of(again), PASSWORD, address=None)
    assert account.status == AccountStatus.ACTIVE
    assert account_actions(db, world.user)[-2:] == [
        "app_account.invitation_resent",
        "app_account.password_set",
    ]

    service.deactivate_account(db, world.user, actor=world.staff)
    with pytest.raises(InvalidState) as off:
        service.send_password_reset(db, world.user, actor=world.staff)
    assert off.value.message == "Only an active or invited account can be sent a password reset."


def test_a_password_reset_mails_a_reset_link_and_the_newest_link_wins(db, world):
    make_account(db, world.user)
    service.set_password_with_link(db, last_token(db, world.user), PASSWORD, address=None)

    service.send_password_reset(db, world.user, actor=world.staff)
    first = mails(db, world.user.id, "password_reset")[-1]
    assert first.context == {"first_name": "Zoé", "expires_hours": 72} and first.language == "fr"
    assert secrets_of(first)["link"].startswith(f"{get_settings().base_url}/portal/reset/")
    sign_in(db, world.user.email)  # the current password works until a new one is set
    service.send_password_reset(db, world.user, actor=world.staff)
    with pytest.raises(LinkInvalid):
        service.check_link(
            db, last_token(db, world.user, "password_reset") + "x", TokenPurpose.PASSWORD_RESET
        )
    newest = last_token(db, world.user, "password_reset")
    with pytest.raises(LinkInvalid):
        service.check_link(db, secrets_of(first)["link"].rsplit("/", 1)[1], TokenPurpose.PASSWORD_RESET)
    with pytest.raises(LinkInvalid):  # a reset link is not an invitation link
        service.check_link(db, newest, TokenPurpose.INVITATION)
    service.set_password_with_link(db, newest, "a brand new passphrase", address=None)
    with pytest.raises(NotAuthenticated):
        sign_in(db, world.user.email)
    sign_in(db, world.user.email, password="a brand new passphrase")
    assert account_actions(db, world.user).count("app_account.password_reset_sent") == 2


def test_a_forced_reset_ends_sessions_and_the_next_sign_in_must_choose_a_password(db, world):
    account = make_account(db, world.user, portal=True, mobile_app=True, password=PASSWORD)
    before = sign_in(db, world.user.email)
    service.force_password_reset(db, world.user, actor=world.staff)
    assert open_sessions(db, account) == []
    assert service.resolve_session(db, before.token, App.PORTAL) is None

    with pytest.raises(PasswordChangeRequired) as mobile:
        sign_in(db, world.user.email, App.MOBILE_APP)
    assert mobile.value.status == 403 and mobile.value.code == "password_change_required"
    portal = sign_in(db, world.user.email)
    assert portal.must_change_password is True
    assert service.resolve_session(db, portal.token, App.PORTAL) is not None  # only to choose a password
    with pytest.raises(FieldErrors) as same:
        service.change_own_password(
            db, portal.account, current=None, new=PASSWORD, keep_session_id=portal.session_row.id
        )
    assert same.value.errors[0]["code"] == "password_unchanged"
    service.change_own_password(
        db, portal.account, current=None, new="another long passphrase", keep_session_id=portal.session_row.id
    )
    assert reload(db, account).must_change_password is False
    assert (
        sign_in(db, world.user.email, App.MOBILE_APP, "another long passphrase").must_change_password is False
    )
    [forced] = events(db, "app_account.password_reset_forced")
    assert forced.changes == {"must_change_password": [False, True]}

    other = make_user(db, world.occupier)
    make_account(db, other)
    with pytest.raises(InvalidState):  # no password to reset yet
        service.force_password_reset(db, other, actor=world.staff)


def test_the_welcome_email_names_the_portal_and_the_apps(db, world):
    with pytest.raises(InvalidState):
        service.send_welcome(db, world.user, actor=world.staff)
    make_account(db, world.user, portal=True, mobile_app=True)
    service.send_welcome(db, world.user, actor=world.staff)
    [welcome] = mails(db, world.user.id, "welcome")
    assert welcome.context == {
        "first_name": "Zoé",
        "occupier_name": "Acme SARL",
        "portal_url": f"{get_settings().base_url}/portal",
        "apps": ["portal", "mobile_app"],
    }
    service.deactivate_account(db, world.user, actor=world.staff)
    with pytest.raises(InvalidState):
        service.send_welcome(db, world.user, actor=world.staff)
    assert "app_account.welcome_sent" in account_actions(db, world.user)


# --- who may act, and when ----------------------------------------------------------------------------


def test_occupier_users_cannot_act_and_busy_users_or_decommissioning_occupiers_refuse(db, world):
    account = make_account(db, world.user, password=PASSWORD)
    me = service.actor_for_account(account, world.user)
    actions = [
        lambda actor: service.set_up_account(db, world.user, role="admin", actor=actor),
        lambda actor: service.invite(db, world.user, App.MOBILE_APP, actor=actor),
        lambda actor: service.resend_invitation(db, world.user, actor=actor),
        lambda actor: service.change_role(db, world.user, "admin", actor=actor),
        lambda actor: service.deactivate_account(db, world.user, actor=actor),
        lambda actor: service.activate_account(db, world.user, actor=actor),
        lambda actor: service.send_password_reset(db, world.user, actor=actor),
        lambda actor: service.force_password_reset(db, world.user, actor=actor),
        lambda actor: service.send_welcome(db, world.user, actor=actor),
    ]
    for action in actions:
        with pytest.raises(PermissionDenied):
            action(me)
    with pytest.raises(PermissionDenied):
        service.invite_many(db, [world.user], App.PORTAL, actor=me)

    world.user.busy_owner, world.user.busy_until = "bulk:1", utcnow() + timedelta(minutes=5)
    for action in actions:
        with pytest.raises(ActionInProgress):
            action(world.staff)
    world.user.busy_until = utcnow() - timedelta(seconds=1)  # a crashed job's hold expires
    service.send_welcome(db, world.user, actor=world.staff)

    occupiers.start_decommission(db, world.occupier, actor=world.staff)
    for action in actions:
        with pytest.raises(OccupierDecommissioned):
            action(world.staff)
    assert account_actions(db, world.user) == [
        "app_account.invited",
        "app_account.password_set",
        "app_account.welcome_sent",
    ]


def test_inviting_a_deactivated_user_is_refused(db, world):
    users.deactivate_user(db, world.user, actor=world.staff)
    with pytest.raises(InvalidState) as refused:
        service.set_up_account(db, world.user, role="user", invite_portal=True, actor=world.staff)
    assert "reactivate the user" in refused.value.message
    assert service.account_of(db, world.user) is None


# --- many users at once -------------------------------------------------------------------------------


def test_invite_many_invites_the_good_users_and_reports_each_bad_one(db, world):
    fresh = make_user(db, world.occupier, language="de")
    pending = make_user(db, world.occupier)
    make_account(db, pending, portal=True)  # a portal link is pending: the app invitation only notifies
    signed_up = make_user(db, world.occupier)
    make_account(db, signed_up, portal=False, mobile_app=True, password=PASSWORD)  # already invited
    gone = make_user(db, world.occupier)
    users.deactivate_user(db, gone, actor=world.staff)
    busy = make_user(db, world.occupier)
    busy.busy_owner, busy.busy_until = "bulk:9", utcnow() + timedelta(minutes=5)
    no_app = make_user(db, make_occupier(db, world.operator, mobile_app_offered=False))
    stranger = make_user(db, make_occupier(db, make_operator(db)))
    before = len(mails(db))

    results = service.invite_many(
        db,
        [fresh, pending, signed_up, gone, busy, no_app, stranger, fresh],
        App.MOBILE_APP,
        actor=world.staff,
    )

    assert [r.user.id for r in results] == [
        u.id for u in (fresh, pending, signed_up, gone, busy, no_app, stranger, fresh)
    ]
    assert [r.ok for r in results] == [True, True, True, False, False, False, False, True]
    assert [type(r.error).__name__ for r in results if r.error] == [
        "InvalidState",
        "ActionInProgress",
        "AppNotOffered",
        "NotFound",
    ]
    assert results[0].account is results[-1].account and results[0].account is not None
    db.flush()
    new = reload(db, results[0].account)
    assert (new.status, new.role, new.mobile_app, new.portal) == (
        AccountStatus.AWAITING_SIGN_IN,
        AccountRole.USER,
        InviteState.INVITED,
        InviteState.NOT_INVITED,
    )
    assert reload(db, results[1].account).mobile_app == InviteState.INVITED
    sent = mails(db)[before:]
    assert [(m.occupier_user_id, m.template, m.language) for m in sent] == [
        (fresh.id, "app_invitation", "de"),
        (pending.id, "app_second_invitation", "en"),
    ]
    assert sent[0].context["apps"] == ["mobile_app"] and "link" not in sent[0].context
    # The mailed link works like the single invitation's.
    service.set_password_with_link(db, last_token(db, fresh), PASSWORD, address=None)
    assert sign_in(db, fresh.email, App.MOBILE_APP).user.id == fresh.id
    invited = [
        e for e in events(db, "app_account.invited") if e.target_id in {str(fresh.id), str(pending.id)}
    ]
    assert {e.target_id: e.changes for e in invited} == {
        str(fresh.id): {
            "mobile_app": ["NOT_INVITED", "INVITED"],
            "role": [None, "user"],
            "status": ["NOT_INVITED", "AWAITING_SIGN_IN"],
        },
        str(pending.id): {"mobile_app": ["NOT_INVITED", "INVITED"]},
    }


def test_invite_many_by_an_occupier_admin_reaches_only_their_occupier(db, world):
    _, me = occupier_admin(db, world.occupier)
    neighbour = make_user(db, make_occupier(db, world.operator))
    [mine, theirs] = service.invite_many(db, [world.user, neighbour], App.PORTAL, actor=me)
    assert mine.ok and isinstance(theirs.error, NotFound)
    assert service.account_of(db, neighbour) is None


def test_invite_many_runs_the_same_number_of_statements_for_3_or_30_users(db, world):
    def statements(n: int) -> int:
        batch = [make_user(db, world.occupier) for _ in range(n)]
        for user in batch[::3]:  # some with a pending portal link: a notice, not a link
            make_account(db, user, portal=True)
        db.flush()
        count = 0

        def counter(*_args: object) -> None:
            nonlocal count
            count += 1

        connection = db.connection()
        event.listen(connection, "before_cursor_execute", counter)
        try:
            results = service.invite_many(db, batch, App.MOBILE_APP, actor=world.staff)
            db.flush()
        finally:
            event.remove(connection, "before_cursor_execute", counter)
        assert all(r.ok for r in results)
        return count

    assert statements(3) == statements(30)


def test_the_audit_log_never_holds_a_password_or_a_link(db, world):
    make_account(db, world.user, portal=True, mobile_app=True, password=PASSWORD)
    service.send_password_reset(db, world.user, actor=world.staff)
    session = sign_in(db, world.user.email, App.MOBILE_APP)
    secrets = [
        PASSWORD,
        session.token,
        session.refresh_token or "",
        last_token(db, world.user, "password_reset"),
    ]
    secrets.append(last_token(db, world.user))
    db.flush()
    for audit in db.scalars(select(AuditEvent)):
        text = json.dumps({"fields": audit.fields, "changes": audit.changes})
        assert not any(secret in text for secret in secrets), audit.action
    for message in mails(db, world.user.id):
        assert not any(secret in json.dumps(message.context) for secret in secrets)
