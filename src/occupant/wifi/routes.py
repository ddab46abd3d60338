"""REST API: a user's Wi-Fi Secure account and connected devices. Passwords are emailed, never returned."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from occupant.api import responses
from occupant.api.deps import ApiActor, ApiDb
from occupant.api.http import API_PREFIX, Id
from occupant.api.schemas import ErrorOut
from occupant.authz import scope
from occupant.users.models import OccupierUser
from occupant.wifi import queries, service
from occupant.wifi.models import WifiStatus
from occupant.wifi.schemas import (
    WifiCreate,
    WifiOut,
    WifiSessionOut,
    WifiSessionsOut,
    WifiUpdate,
)

router = APIRouter(tags=["wifi"], responses=responses.COMMON)

WIFI_CONFLICTS: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorOut,
        "description": "`no_wifi_account`, `wifi_account_exists`, `action_in_progress` (the user is busy, "
        "e.g. provisioning), `occupier_decommissioned`, `invalid_state` (a deactivated user or account), "
        "`wifi_username_taken` (the email is already a Wi-Fi username elsewhere on this service).",
    }
}
WRITE = {**responses.NOT_FOUND, **WIFI_CONFLICTS}


def wifi_out(db: Session, user: OccupierUser) -> WifiOut:
    account = service.account_of(db, user)
    return WifiOut.of(user, account, queries.homesite(db, account))


@router.get("/users/{user_id}/wifi", summary="Get a user's Wi-Fi account", responses=responses.ONE)
def get_wifi(user_id: Id, db: ApiDb, actor: ApiActor) -> WifiOut:
    """Status, homesite and device limit; `wifi` is null when the user has no account."""
    return wifi_out(db, scope.get_user(db, actor, user_id))


@router.post(
    "/users/{user_id}/wifi", status_code=201, summary="Create a user's Wi-Fi account", responses=WRITE
)
def create_wifi(user_id: Id, body: WifiCreate, response: Response, db: ApiDb, actor: ApiActor) -> WifiOut:
    """A new password is emailed to the user in their language; the account is `PROVISIONING` (and the user
    busy) until the network has it, then `ACTIVE`. Field codes: `invalid_homesite`, `invalid_device_limit`."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.create_wifi_account(
        db, user, homesite_id=body.homesite_id, device_limit=body.device_limit, actor=actor
    )
    response.headers["Location"] = f"{API_PREFIX}/users/{user.id}/wifi"
    return wifi_out(db, user)


@router.patch("/users/{user_id}/wifi", summary="Change a user's Wi-Fi account", responses=WRITE)
def update_wifi(user_id: Id, body: WifiUpdate, db: ApiDb, actor: ApiActor) -> WifiOut:
    """Only the fields sent change. `status`: `DEACTIVATED` refuses the user from the next attempt; `ACTIVE`
    reactivates with a new password by email. A new `homesite_id` also emails a new password."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.update_wifi_account(
        db,
        user,
        status=WifiStatus(body.status) if body.status else None,
        homesite_id=body.homesite_id,
        device_limit=body.device_limit,
        actor=actor,
    )
    return wifi_out(db, user)


@router.post("/users/{user_id}/wifi/reset-password", summary="Email a new Wi-Fi password", responses=WRITE)
def reset_wifi_password(user_id: Id, db: ApiDb, actor: ApiActor) -> WifiOut:
    """The old password is refused from the next attempt (409 `invalid_state` on a deactivated account)."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.reset_wifi_password(db, user, actor=actor)
    return wifi_out(db, user)


@router.get("/users/{user_id}/wifi/sessions", summary="A user's connected devices", responses=responses.ONE)
def list_wifi_sessions(user_id: Id, db: ApiDb, actor: ApiActor) -> WifiSessionsOut:
    """Open accounting sessions, newest first: MAC address, site of the access point, since when."""
    user = scope.get_user(db, actor, user_id)
    return WifiSessionsOut(items=[WifiSessionOut.of(d) for d in queries.connected_devices(db, user)])


@router.delete(
    "/users/{user_id}/wifi/sessions/{session_id}",
    status_code=204,
    response_class=Response,
    summary="Clear a stale session",
    responses=WRITE,
)
def clear_wifi_session(user_id: Id, session_id: Id, db: ApiDb, actor: ApiActor) -> None:
    """Close a session whose device left without telling the network, freeing a place under the limit."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.clear_session(db, user, session_id, actor=actor)
