"""REST API for operator staff: a user's app account (portal and mobile app), its invitations and changes.

Links and passwords go to the user by email; no answer ever carries one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from occupant.accounts import service
from occupant.accounts.models import AccountRole
from occupant.accounts.schemas import AccountOut, AccountSetUp
from occupant.api import responses
from occupant.api.deps import ApiActor, ApiDb
from occupant.api.http import Id
from occupant.api.schemas import ErrorOut
from occupant.authz import scope
from occupant.users.models import OccupierUser

router = APIRouter(tags=["accounts"], responses=responses.COMMON)

ACCOUNT_CONFLICTS: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorOut,
        "description": "`invalid_state` (e.g. resending when the user already signed in, a password reset "
        "for an account never invited or deactivated, any change to a deactivated user), "
        "`action_in_progress`, `occupier_decommissioned`.",
    }
}
WRITE = {**responses.NOT_FOUND, **ACCOUNT_CONFLICTS}
BASE = "/users/{user_id}/account"


def account_out(db: Session, user: OccupierUser) -> AccountOut:
    return AccountOut.of(user, service.account_of(db, user))


@router.get(BASE, summary="Get a user's app account", responses=responses.ONE)
def get_account(user_id: Id, db: ApiDb, actor: ApiActor) -> AccountOut:
    """Status, role and, per app, whether the user was invited and has signed in. A user who was never
    invited answers `NOT_INVITED` with a null role."""
    return account_out(db, scope.get_user(db, actor, user_id))


@router.put(BASE, summary="Set a user's role and invite them", responses=WRITE)
def set_up_account(user_id: Id, body: AccountSetUp, db: ApiDb, actor: ApiActor) -> AccountOut:
    """Sets the role, and invites to each app ticked that the user was not invited to yet: the first
    invitation emails a link to choose a password, an invitation to the second app only a notice. Apps
    already invited stay as they are. Field code `app_not_offered` when the occupier does not offer an app."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.set_up_account(
        db,
        user,
        role=AccountRole(body.role),
        invite_portal=body.invite_portal,
        invite_mobile_app=body.invite_mobile_app,
        actor=actor,
    )
    return account_out(db, user)


@router.post(BASE + "/resend-invitation", summary="Resend the invitation", responses=WRITE)
def resend_invitation(user_id: Id, db: ApiDb, actor: ApiActor) -> AccountOut:
    """While the user has not signed in yet (`AWAITING_SIGN_IN`): a new link by email; the old one stops
    working."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.resend_invitation(db, user, actor=actor)
    return account_out(db, user)


@router.post(BASE + "/deactivate", summary="Deactivate the app account", responses=WRITE)
def deactivate_account(user_id: Id, db: ApiDb, actor: ApiActor) -> AccountOut:
    """Sign-in is refused and every session and pending link ends at once. The user's record and Wi-Fi
    are not affected."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.deactivate_account(db, user, actor=actor)
    return account_out(db, user)


@router.post(BASE + "/activate", summary="Activate the app account again", responses=WRITE)
def activate_account(user_id: Id, db: ApiDb, actor: ApiActor) -> AccountOut:
    """Back to `ACTIVE` when a password is set, else `AWAITING_SIGN_IN` (no email: resend the invitation)."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.activate_account(db, user, actor=actor)
    return account_out(db, user)


@router.post(BASE + "/password-reset", summary="Email a password-reset link", responses=WRITE)
def send_password_reset(user_id: Id, db: ApiDb, actor: ApiActor) -> AccountOut:
    """For an `ACTIVE` account: a link to choose a new password (the current one works until then). For an
    account awaiting its first sign-in: the invitation again, with a new link (the old one stops working)."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.send_password_reset(db, user, actor=actor)
    return account_out(db, user)


@router.post(BASE + "/force-password-reset", summary="Force a password reset", responses=WRITE)
def force_password_reset(user_id: Id, db: ApiDb, actor: ApiActor) -> AccountOut:
    """Every session ends at once; the next sign-in must choose a new password (in the portal)."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.force_password_reset(db, user, actor=actor)
    return account_out(db, user)


@router.post(BASE + "/welcome", summary="Send the welcome email", responses=WRITE)
def send_welcome(user_id: Id, db: ApiDb, actor: ApiActor) -> AccountOut:
    """A welcome email with the portal's address, for an `ACTIVE` or `AWAITING_SIGN_IN` account."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.send_welcome(db, user, actor=actor)
    return account_out(db, user)
