"""Signing in to the portal and the mobile app: links, passwords, generic failures, throttling, sessions,
refresh-token rotation, and "Forgot password"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.accounts import service
from occupant.accounts.errors import AppNotAvailable, LinkInvalid
from occupant.accounts.models import AccountStatus, AccountToken, App, AppSession, InviteState, TokenPurpose
from occupant.kit import signin
from occupant.kit.clock import shifted
from occupant.kit.errors import FieldErrors, NotAuthenticated, RateLimited
from occupant.kit.security import hash_password
from occupant.kit.settings import get_settings
from occupant.kit.throttle import Throttle
from occupant.occupiers import service as occupiers
from occupant.occupiers.schemas import OccupierUpdate
from occupant.users import service as users
from tests.accounts.support import (
    PASSWORD,
    World,
    account_actions,
    build_world,
    events,
    last_token,
    mails,
    open_sessions,
    reload,
)
from tests.factories import admin_actor, make_account, make_occupier, make_operator, make_site, make_user

GENERIC = "Email or password is incorrect."


@pytest.fixture
def world(db: Session) -> World:
    return build_world(db)


def sign_in(
    db: Session, email: str, app: App = App.PORTAL, password: str = PASSWORD, address: str = "198.51.100.7"
) -> service.SignIn:
    return service.sign_in(db, email=email, password=password, app=app, address=address)


# --- links and passwords ----------------------------------------------------------------------------


def test_the_invitation_link_sets_the_password_once_and_the_first_sign_in_marks_the_app(db, world):
    account = make_account(db, world.user, portal=True, mobile_app=True)
    token = last_token(db, world.user)
    link = service.check_link(db, token, TokenPurpose.INVITATION)
    assert service.link_holder(db, link)[1].id == world.user.id

    done, user = service.set_password_with_link(db, token, PASSWORD, address="198.51.100.7")
    assert (done.id, user.id, done.status) == (account.id, world.user.id, AccountStatus.ACTIVE)
    assert done.password_hash and PASSWORD not in done.password_hash
    assert account.portal == InviteState.INVITED  # signed in to no app yet
    with pytest.raises(LinkInvalid) as used:
        service.set_password_with_link(db, token, "someone else's password", address=None)
    assert used.value.details == {"reason": "used"} and used.value.status == 410
    portal = sign_in(db, "  ZOE.martin@acme.EXAMPLE ")
    assert (portal.account.portal, portal.account.mobile_app) == (InviteState.SIGNED_IN, InviteState.INVITED)
    assert portal.refresh_token is None and portal.session_row.csrf_token
    first = portal.account.first_sign_in_at
    assert first is not None
    sign_in(db, world.user.email, App.MOBILE_APP)
    assert reload(db, account).mobile_app == InviteState.SIGNED_IN and account.first_sign_in_at == first
    assert account_actions(db, world.user) == [
        "app_account.invited",
        "app_account.password_set",
        "app_account.signed_in",
        "app_account.signed_in",
    ]
    signed_in = events(db, "app_account.signed_in", world.user)
    assert signed_in[0].actor_type == "occupier_user" and signed_in[0].actor_id == str(world.user.id)
    assert signed_in[0].changes == {"portal": ["INVITED", "SIGNED_IN"]}


def test_links_expire_and_unknown_links_say_so(db, world):
    make_account(db, world.user)
    token = last_token(db, world.user)
    with shifted(timedelta(hours=72, seconds=1)):
        with pytest.raises(LinkInvalid) as expired:
            service.set_password_with_link(db, token, PASSWORD, address=None)
        assert expired.value.details == {"reason": "expired"} and expired.value.code == "link_invalid"
    with shifted(timedelta(hours=71)):
        service.check_link(db, token, TokenPurpose.INVITATION)
    for bad in ("", "not-a-token", token[:-1]):
        with pytest.raises(LinkInvalid) as unknown:
            service.check_link(db, bad, TokenPurpose.INVITATION)
        assert unknown.value.details == {"reason": "unknown"}


def test_the_link_lifetime_is_configurable_and_the_mail_says_it(db, world, monkeypatch):
    monkeypatch.setattr(get_settings(), "invitation_hours", 4)
    make_account(db, world.user, portal=True)
    [invitation] = mails(db, world.user.id, "app_invitation")
    assert invitation.context["expires_hours"] == 4
    token = last_token(db, world.user)
    with shifted(timedelta(hours=3, minutes=59)):
        service.check_link(db, token, TokenPurpose.INVITATION)
    with shifted(timedelta(hours=4, seconds=1)), pytest.raises(LinkInvalid) as expired:
        service.check_link(db, token, TokenPurpose.INVITATION)
    assert expired.value.reason == "expired"


def test_password_rules_leave_the_link_usable(db, world):
    make_account(db, world.user)
    token = last_token(db, world.user)
    for password, code in (("short", "too_short"), ("ZOE.MARTIN@acme.example", "password_is_email")):
        with pytest.raises(FieldErrors) as refused:
            service.set_password_with_link(db, token, password, address=None)
        assert refused.value.errors[0]["field"] == "password" and refused.value.errors[0]["code"] == code
    service.set_password_with_link(db, token, "ten chars!", address=None)
    assert sign_in(db, world.user.email, password="ten chars!").user.id == world.user.id


def test_only_hashes_of_links_and_sessions_are_stored(db, world):
    make_account(db, world.user, mobile_app=True, password=PASSWORD)
    mobile = sign_in(db, world.user.email, App.MOBILE_APP)
    stored = db.scalars(select(AccountToken.token_hash)).all()
    row = db.scalars(select(AppSession)).one()
    assert mobile.token not in {row.token_hash, row.refresh_hash} and mobile.token not in stored
    assert mobile.refresh_token and mobile.refresh_token not in {row.token_hash, row.refresh_hash}


# --- sign-in ----------------------------------------------------------------------------------------


def test_every_sign_in_failure_gives_the_same_answer(db, world):
    make_account(db, world.user, password=PASSWORD)
    waiting = make_user(db, world.occupier)
    make_account(db, waiting)  # invited, no password yet
    off = make_user(db, world.occupier)
    make_account(db, off, password=PASSWORD)
    service.deactivate_account(db, off, actor=world.staff)
    user_off = make_user(db, world.occupier)
    make_account(db, user_off, password=PASSWORD)
    users.deactivate_user(db, user_off, actor=world.staff)
    attempts = [
        ("nobody@acme.example", PASSWORD),
        (world.user.email, "wrong password here"),
        (world.user.email, ""),
        ("", ""),
        (waiting.email, PASSWORD),
        (off.email, PASSWORD),
        (user_off.email, PASSWORD),
    ]
    for n, (email, password) in enumerate(attempts):
        with pytest.raises(NotAuthenticated) as refused:
            sign_in(db, email, password=password, address=f"203.0.113.{n}")
        assert (refused.value.message, refused.value.status) == (GENERIC, 401)
    assert events(db, "app_account.signed_in") == []


def test_ten_failures_lock_the_account_key_for_fifteen_minutes(db, world):
    make_account(db, world.user, password=PASSWORD)
    for n in range(10):
        with pytest.raises(NotAuthenticated):
            sign_in(db, world.user.email, password="not the password", address=f"203.0.113.{n}")
    with pytest.raises(RateLimited) as limited:
        sign_in(db, world.user.email.upper(), address="192.0.2.200")  # even the right password, elsewhere
    assert limited.value.status == 429 and 1 <= limited.value.details["retry_after"] <= 15 * 60 + 1
    with shifted(timedelta(minutes=15, seconds=1)):
        assert sign_in(db, world.user.email).user.id == world.user.id
        # A success clears the account's count.
        with pytest.raises(NotAuthenticated):
            sign_in(db, world.user.email, password="not the password", address="192.0.2.201")
        sign_in(db, world.user.email, address="192.0.2.202")


def test_a_hundred_failures_from_one_address_lock_that_address_for_every_email(db, world):
    # Everyone in a building behind one NAT shares an address: ten people's typos must not lock it.
    make_account(db, world.user, password=PASSWORD)
    for n in range(10):  # ten people mistyping: the address still works for the others
        with pytest.raises(NotAuthenticated):
            sign_in(db, f"guess{n}@acme.example", address="203.0.113.99")
    assert sign_in(db, world.user.email, address="203.0.113.99").user.id == world.user.id
    db.get(Throttle, "addr:203.0.113.99").failures = 98  # as if 88 more had failed since
    db.flush()
    with pytest.raises(NotAuthenticated):
        sign_in(db, "guess-99@acme.example", address="203.0.113.99")
    assert sign_in(db, world.user.email, address="203.0.113.99").user.id == world.user.id
    with pytest.raises(NotAuthenticated):
        sign_in(db, "guess-last@acme.example", address="203.0.113.99")
    with pytest.raises(RateLimited):
        sign_in(db, world.user.email, address="203.0.113.99")
    assert sign_in(db, world.user.email, address="203.0.113.100").user.id == world.user.id


def test_a_password_changed_during_the_check_fails_closed(db, world, monkeypatch):
    """The slow check runs outside the write transaction; the hash it matched must still be the account's."""
    account = make_account(db, world.user, password=PASSWORD)
    real = signin.matching_hashes

    def changed_meanwhile(*args, **kwargs):
        matched = real(*args, **kwargs)
        account.password_hash = hash_password("a newer password 123")
        db.flush()
        return matched

    monkeypatch.setattr(signin, "matching_hashes", changed_meanwhile)
    with pytest.raises(NotAuthenticated):
        sign_in(db, world.user.email)
    assert events(db, "app_account.signed_in") == []


def test_one_email_under_two_operators_signs_in_where_the_password_matches(db, world):
    other_operator = make_operator(db)
    other_occupier = make_occupier(db, other_operator, sites_=[make_site(db, other_operator)])
    twin = make_user(db, other_occupier, email="zoe.martin@acme.example", first_name="Twin")
    make_account(db, world.user, password=PASSWORD)
    make_account(db, twin, password="the other operator's one", actor=admin_actor(other_operator))
    assert sign_in(db, world.user.email).user.id == world.user.id
    there = sign_in(db, world.user.email, password="the other operator's one")
    assert there.user.id == twin.id and service.actor_for_account(there.account, there.user).operator_id == (
        other_operator.id
    )
    with pytest.raises(NotAuthenticated):
        sign_in(db, world.user.email, password="neither of the two")


def test_an_app_the_account_is_not_invited_to_or_no_longer_offered_is_refused(db, world):
    make_account(db, world.user, portal=True, password=PASSWORD)
    with pytest.raises(AppNotAvailable) as refused:
        sign_in(db, world.user.email, App.MOBILE_APP)
    assert (refused.value.status, refused.value.code) == (403, "app_not_available")
    occupiers.update_occupier(db, world.occupier, OccupierUpdate(portal_offered=False), actor=world.staff)
    with pytest.raises(AppNotAvailable):
        sign_in(db, world.user.email)


def test_while_the_occupier_does_not_offer_an_app_its_open_sessions_do_not_work(db, world):
    make_account(db, world.user, portal=True, mobile_app=True, password=PASSWORD)
    portal, mobile = sign_in(db, world.user.email), sign_in(db, world.user.email, App.MOBILE_APP)
    occupiers.update_occupier(db, world.occupier, OccupierUpdate(portal_offered=False), actor=world.staff)
    assert service.resolve_session(db, portal.token, App.PORTAL) is None
    assert service.resolve_session(db, mobile.token, App.MOBILE_APP) is not None  # the app is still offered
    occupiers.update_occupier(db, world.occupier, OccupierUpdate(mobile_app_offered=False), actor=world.staff)
    assert service.resolve_session(db, mobile.token, App.MOBILE_APP) is None
    with pytest.raises(NotAuthenticated):
        service.refresh(db, mobile.refresh_token)
    occupiers.update_occupier(db, world.occupier, OccupierUpdate(portal_offered=True), actor=world.staff)
    assert service.resolve_session(db, portal.token, App.PORTAL) is not None  # offered again


# --- sessions ---------------------------------------------------------------------------------------


def test_a_portal_session_lasts_session_hours_and_ends_at_sign_out(db, world):
    make_account(db, world.user, portal=True, mobile_app=True, password=PASSWORD)
    portal = sign_in(db, world.user.email)
    resolved = service.resolve_session(db, portal.token, App.PORTAL)
    assert resolved is not None
    account, user, row = resolved
    assert (account.id, user.id, row.id) == (portal.account.id, world.user.id, portal.session_row.id)
    assert service.resolve_session(db, portal.token, App.MOBILE_APP) is None  # a cookie is no bearer token
    assert service.resolve_session(db, None, App.PORTAL) is None
    with shifted(timedelta(hours=11, minutes=59)):
        assert service.resolve_session(db, portal.token, App.PORTAL) is not None
    with shifted(timedelta(hours=12)):
        assert service.resolve_session(db, portal.token, App.PORTAL) is None
    service.sign_out(db, portal.session_row)
    service.sign_out(db, portal.session_row)  # no-op
    assert service.resolve_session(db, portal.token, App.PORTAL) is None
    assert [e.fields for e in events(db, "app_account.signed_out")] == [["portal"]]


def test_mobile_tokens_rotate_on_refresh_and_a_reused_refresh_token_ends_the_session(db, world):
    make_account(db, world.user, mobile_app=True, password=PASSWORD)
    first = sign_in(db, world.user.email, App.MOBILE_APP)
    assert first.refresh_token and 3590 <= first.expires_in <= 3600
    with shifted(timedelta(minutes=61)):  # the access token expired; the refresh token still works
        assert service.resolve_session(db, first.token, App.MOBILE_APP) is None
        second = service.refresh(db, first.refresh_token)
        assert second.refresh_token and second.refresh_token != first.refresh_token
        assert second.session_row.id == first.session_row.id
        assert service.resolve_session(db, second.token, App.MOBILE_APP) is not None
        with pytest.raises(NotAuthenticated):  # the old refresh token again: two parties hold it
            service.refresh(db, first.refresh_token)
        assert service.resolve_session(db, second.token, App.MOBILE_APP) is None
        with pytest.raises(NotAuthenticated):
            service.refresh(db, second.refresh_token)
    for made_up in ("", "no-dot", "family.secret", f"{first.refresh_token.split('.')[0]}x.y"):
        with pytest.raises(NotAuthenticated):
            service.refresh(db, made_up)


def test_a_refresh_token_lasts_thirty_days(db, world):
    make_account(db, world.user, mobile_app=True, password=PASSWORD)
    pair = sign_in(db, world.user.email, App.MOBILE_APP)
    with shifted(timedelta(days=29)):
        pair = service.refresh(db, pair.refresh_token)
    with shifted(timedelta(days=29 + 30, seconds=1)), pytest.raises(NotAuthenticated):
        service.refresh(db, pair.refresh_token)


def test_changing_the_password_ends_the_other_sessions(db, world):
    account = make_account(db, world.user, portal=True, mobile_app=True, password=PASSWORD)
    here = sign_in(db, world.user.email)
    phone = sign_in(db, world.user.email, App.MOBILE_APP)
    with pytest.raises(FieldErrors) as wrong:
        service.change_own_password(
            db,
            here.account,
            current="not my password",
            new="a new passphrase",
            keep_session_id=here.session_row.id,
        )
    assert wrong.value.errors[0] == {
        "field": "current_password",
        "code": "incorrect",
        "message": "The current password is incorrect.",
    }
    with pytest.raises(FieldErrors) as missing:
        service.change_own_password(
            db, here.account, current=None, new="a new passphrase", keep_session_id=here.session_row.id
        )
    assert missing.value.errors[0]["code"] == "required"
    service.change_own_password(
        db, here.account, current=PASSWORD, new="a new passphrase", keep_session_id=here.session_row.id
    )
    assert [s.id for s in open_sessions(db, account)] == [here.session_row.id]
    assert service.resolve_session(db, phone.token, App.MOBILE_APP) is None
    with pytest.raises(NotAuthenticated):
        sign_in(db, world.user.email)
    sign_in(db, world.user.email, password="a new passphrase")


def test_a_password_set_by_link_ends_every_session(db, world):
    account = make_account(db, world.user, portal=True, password=PASSWORD)
    sign_in(db, world.user.email)
    service.send_password_reset(db, world.user, actor=world.staff)
    service.set_password_with_link(
        db, last_token(db, world.user, "password_reset"), "fresh passphrase", address=None
    )
    assert open_sessions(db, account) == []


# --- forgot password --------------------------------------------------------------------------------


def test_forgot_password_mails_active_accounts_only_and_says_nothing(db, world):
    make_account(db, world.user, password=PASSWORD)
    waiting = make_user(db, world.occupier)
    make_account(db, waiting)
    off = make_user(db, world.occupier)
    make_account(db, off, password=PASSWORD)
    service.deactivate_account(db, off, actor=world.staff)
    before = len(mails(db))
    for email in ("nobody@acme.example", waiting.email, off.email, ""):
        assert service.request_password_reset(db, email=email, operator_id=None, address="192.0.2.1") is None
    assert len(mails(db)) == before

    service.request_password_reset(
        db, email=" ZOE.MARTIN@acme.example", operator_id=None, address="192.0.2.1"
    )
    [reset] = mails(db, world.user.id, "password_reset")
    assert reset.language == "fr"
    [sent] = events(db, "app_account.password_reset_sent")
    assert (sent.actor_type, sent.actor_id) == ("occupier_user", str(world.user.id))
    # Forgot password also ends a forced reset: the link sets the new password.
    service.force_password_reset(db, world.user, actor=world.staff)
    service.set_password_with_link(
        db, last_token(db, world.user, "password_reset"), "chosen anew!", address=None
    )
    assert sign_in(db, world.user.email, App.PORTAL, "chosen anew!").must_change_password is False


def test_forgot_password_is_throttled_per_email_and_per_address(db, world):
    make_account(db, world.user, password=PASSWORD)
    for n in range(5):
        service.request_password_reset(db, email=world.user.email, operator_id=None, address=f"192.0.2.{n}")
    with pytest.raises(RateLimited):
        service.request_password_reset(db, email=world.user.email, operator_id=None, address="192.0.2.50")
    assert len(mails(db, world.user.id, "password_reset")) == 5
    for n in range(20):
        service.request_password_reset(
            db, email=f"who{n}@acme.example", operator_id=None, address="192.0.2.77"
        )
    with pytest.raises(RateLimited):
        service.request_password_reset(
            db, email="who-else@acme.example", operator_id=None, address="192.0.2.77"
        )


def test_forgot_password_can_be_limited_to_one_operator(db, world):
    other_operator = make_operator(db)
    twin = make_user(
        db, make_occupier(db, other_operator, sites_=[make_site(db, other_operator)]), email=world.user.email
    )
    make_account(db, world.user, password=PASSWORD)
    make_account(db, twin, password=PASSWORD, actor=admin_actor(other_operator))
    service.request_password_reset(db, email=world.user.email, operator_id=other_operator.id, address=None)
    assert [m.occupier_user_id for m in mails(db, template="password_reset")] == [twin.id]
    service.request_password_reset(db, email=world.user.email, operator_id=None, address=None)
    assert sorted(m.occupier_user_id for m in mails(db, template="password_reset")) == sorted(
        [twin.id, twin.id, world.user.id]
    )
