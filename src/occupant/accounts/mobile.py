"""REST API for the mobile app: sign-in with email and password, token refresh, sign-out, own details.

The app holds a short-lived access token (``Authorization: Bearer …``) and a refresh token that works
once. These endpoints take only the app's tokens, never an operator API key; the staff endpoints take
only API keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from occupant.accounts import service
from occupant.accounts.models import App, AppAccount, AppSession
from occupant.accounts.schemas import MeOut, MeWifiOut, RefreshRequest, TokenOut, TokenRequest
from occupant.api.deps import ApiDb
from occupant.api.errors import occupant_error_response
from occupant.api.schemas import ErrorOut
from occupant.authz import scope
from occupant.authz.actor import Actor
from occupant.kit.errors import NotAuthenticated, RateLimited
from occupant.users import service as users
from occupant.users.models import OccupierUser
from occupant.users.schemas import OwnDetailsUpdate
from occupant.wifi import queries as wifi_queries
from occupant.wifi import service as wifi

mobile_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="MobileToken",
    description="The mobile app's access token from `POST /api/v1/auth/token`, sent as "
    "`Authorization: Bearer …`. Operator API keys are not accepted here.",
)


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


SIGN_IN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _doc("`invalid_json`: the body is not JSON."),
    401: _doc(
        "`not_authenticated`: the email or password is incorrect (the same answer whether or not the "
        "account exists, or is deactivated)."
    ),
    403: _doc(
        "`password_change_required`: an administrator requires a new password; choose one in the portal "
        "or with “Forgot password”. `app_not_available`: the account is not invited to the mobile app."
    ),
    422: _doc("`validation_error`: `details` lists every invalid field as {field, code, message}."),
    429: _doc("`rate_limited`: too many failed attempts; the `Retry-After` header says how many seconds."),
}
REFRESH_ERRORS: dict[int | str, dict[str, Any]] = {
    **{k: v for k, v in SIGN_IN_ERRORS.items() if k != 429},
    403: _doc(
        "`password_change_required`: an administrator forced a password reset since the app signed in; "
        "choose a new password in the portal or with “Forgot password”, then sign in again."
    ),
    401: _doc(
        "`not_authenticated`: unknown or expired refresh token, or one used before (the session is then "
        "ended: whoever else holds it is signed out too), or the account is no longer active."
    ),
}
SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: _doc(
        "`not_authenticated`: no access token, or one that has expired or was revoked (sign-out, "
        "deactivation, a password or email change): refresh it or sign in again."
    ),
    400: _doc("`invalid_json`: the body is not JSON."),
}

router = APIRouter(tags=["mobile app"])


@dataclass(frozen=True)
class MobileCaller:
    """The signed-in mobile app: its account, user, session and the actor it acts as."""

    account: AppAccount
    user: OccupierUser
    session_row: AppSession
    actor: Actor


def mobile_caller(
    request: Request,
    db: ApiDb,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(mobile_bearer)],
) -> MobileCaller:
    """The user behind the mobile access token; 401 ``not_authenticated`` when it is missing or not valid."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Sign in to the app and send its access token as `Authorization: Bearer …`.")
    resolved = service.resolve_session(db, token.strip(), App.MOBILE_APP)
    if resolved is None:
        raise NotAuthenticated("The access token is not valid or has expired; refresh it or sign in again.")
    account, user, row = resolved
    actor = service.actor_for_account(account, user)
    request.state.actor = actor
    return MobileCaller(account=account, user=user, session_row=row, actor=actor)


Caller = Annotated[MobileCaller, Depends(mobile_caller)]


def _client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _tokens(signed_in: service.SignIn, response: Response) -> TokenOut:
    response.headers["Cache-Control"] = "no-store"
    assert signed_in.refresh_token is not None  # always, for the mobile app
    return TokenOut(
        access_token=signed_in.token,
        refresh_token=signed_in.refresh_token,
        expires_in=signed_in.expires_in,
    )


@router.post(
    "/auth/token",
    response_model=TokenOut,
    summary="Sign in (mobile app)",
    responses=SIGN_IN_ERRORS,
    openapi_extra={"security": []},
)
def issue_token(body: TokenRequest, request: Request, response: Response, db: ApiDb) -> TokenOut | Response:
    """Trade the user's email and password for an access token and a refresh token."""
    try:
        signed_in = service.sign_in(
            db,
            email=body.email,
            password=body.password,
            app=App.MOBILE_APP,
            address=_client_address(request),
            user_agent=request.headers.get("user-agent"),
        )
    except (NotAuthenticated, RateLimited) as exc:
        # Answered, not raised: the request commits the failure count that slows down password guessing.
        return occupant_error_response(request, exc)
    return _tokens(signed_in, response)


@router.post(
    "/auth/refresh",
    response_model=TokenOut,
    summary="Refresh the access token (mobile app)",
    responses=REFRESH_ERRORS,
    openapi_extra={"security": []},
)
def refresh_token(
    body: RefreshRequest, request: Request, response: Response, db: ApiDb
) -> TokenOut | Response:
    """A new access token and a new refresh token; the refresh token sent is used up."""
    try:
        signed_in = service.refresh(db, body.refresh_token)
    except NotAuthenticated as exc:
        # Answered, not raised: a reused refresh token has just ended its session, which must be kept.
        return occupant_error_response(request, exc)
    return _tokens(signed_in, response)


@router.post(
    "/auth/sign-out",
    status_code=204,
    response_class=Response,
    summary="Sign out (mobile app)",
    responses=SIGNED_IN,
)
def sign_out(db: ApiDb, caller: Caller) -> None:
    """End this session: its access and refresh tokens stop working at once."""
    service.sign_out(db, caller.session_row)


def me_out(db: Session, caller: MobileCaller, user: OccupierUser) -> MeOut:
    account = wifi.account_of(db, user)
    wifi_out = None
    if account is not None:
        wifi_out = MeWifiOut.of(
            account, wifi_queries.homesite(db, account), wifi_queries.connected_devices(db, user)
        )
    return MeOut.of(user, caller.account, wifi_out)


@router.get("/me", summary="My details (mobile app)", responses=SIGNED_IN)
def get_me(db: ApiDb, caller: Caller) -> MeOut:
    """The signed-in user's details, their app account, and their Wi-Fi Secure account with the devices
    connected now (`wifi` is null without one)."""
    return me_out(db, caller, caller.user)


@router.patch(
    "/me",
    summary="Change my details (mobile app)",
    responses={
        **SIGNED_IN,
        409: _doc("`occupier_decommissioned`, `action_in_progress`."),
        422: _doc(
            "`validation_error`: `details` lists every invalid field as {field, code, message}, e.g. "
            "`invalid_phone`, `invalid_language`, `unknown_field` (the email cannot be changed here)."
        ),
    },
)
def update_me(body: OwnDetailsUpdate, db: ApiDb, caller: Caller) -> MeOut:
    """Only the fields sent change: first and last name, job title, mobile, direct line, language."""
    user = scope.get_user(db, caller.actor, caller.user.id, for_update=True)
    users.update_own_details(db, user, body, actor=caller.actor)
    return me_out(db, caller, user)
