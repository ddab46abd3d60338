"""REST API: occupier users, across the operator and within one occupier."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from occupant.accounts import queries as account_queries
from occupant.accounts.models import AppAccount
from occupant.api import responses
from occupant.api.deps import ApiActor, ApiDb
from occupant.api.http import (
    API_PREFIX,
    Id,
    IdFilter,
    IfMatch,
    PageParams,
    Search,
    expected_version,
    page_params,
    paged,
    set_etag,
)
from occupant.api.schemas import PageOut
from occupant.authz import scope
from occupant.groups import service as groups
from occupant.groups.schemas import GroupIds, UserGroupsOut
from occupant.kit.pagination import Page
from occupant.users import export, queries, service
from occupant.users.filters import UserFilter
from occupant.users.models import OccupierUser, UserStatus
from occupant.users.schemas import EmailChange, UserCreate, UserDetailOut, UserOut, UserUpdate
from occupant.wifi import queries as wifi_queries
from occupant.wifi import service as wifi_service
from occupant.wifi.models import WifiAccount

router = APIRouter(tags=["users"], responses=responses.COMMON)
UserPage = Annotated[PageParams, Depends(page_params(str, int))]
StatusFilter = Annotated[UserStatus | None, Query(description="Only users with this record status.")]


def user_out(user: OccupierUser, wifi: WifiAccount | None, account: AppAccount | None = None) -> UserOut:
    extra: dict[str, object] = {"busy": user.is_busy}
    if wifi is not None:
        extra |= {
            "wifi_status": str(wifi.status),
            "wifi_homesite_id": wifi.homesite_id,
            "wifi_device_limit": wifi.device_limit,
        }
    if account is not None:
        extra |= {
            "account_status": str(account.status),
            "account_role": str(account.role),
            "account_portal": str(account.portal),
            "account_mobile_app": str(account.mobile_app),
        }
    return UserOut.model_validate(user).model_copy(update=extra)


def users_page(
    request: Request, response: Response, db: Session, found: Page[OccupierUser]
) -> PageOut[UserOut]:
    """A page of users with their Wi-Fi and app-account states (one query per kind for the whole page)."""
    ids = [u.id for u in found.items]
    wifi = wifi_queries.accounts_by_user(db, ids)
    accounts = account_queries.accounts_by_user(db, ids)
    return paged(request, response, found, lambda u: user_out(u, wifi.get(u.id), accounts.get(u.id)))


def user_detail(db: Session, user: OccupierUser, response: Response) -> UserDetailOut:
    set_etag(response, user)
    account = account_queries.accounts_by_user(db, [user.id]).get(user.id)
    return UserDetailOut(
        **user_out(user, wifi_service.account_of(db, user), account).model_dump(),
        group_ids=sorted(groups.user_group_ids(db, user.id)),
    )


@router.get("/users", summary="List users across the operator")
def list_users(
    request: Request,
    response: Response,
    db: ApiDb,
    actor: ApiActor,
    page: UserPage,
    occupier_id: IdFilter = None,
    status: StatusFilter = None,
    q: Search = None,
) -> PageOut[UserOut]:
    """Users in name order; filter by occupier, status and any fragment of name or email."""
    found = queries.list_users(
        db, actor, q=q, occupier_id=occupier_id, status=status, cursor=page.cursor, limit=page.limit
    )
    return users_page(request, response, db, found)


@router.get(
    "/users/export.csv",
    summary="Download users as CSV",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "Every matching user, in name order."},
        **responses.ONE,
    },
)
def export_users(db: ApiDb, actor: ApiActor, criteria: Annotated[UserFilter, Query()]) -> StreamingResponse:
    """Every user matching the filter (all of them: no pages), streamed; formulas in cells are neutralised
    (a leading `'`, phone numbers included). Operator keys and occupier admins; `occupier_id` of another
    operator answers 404. The download is logged (`users.exported`)."""
    return export.download(export.start_export(db, criteria, actor=actor))


@router.get("/occupiers/{occupier_id}/users", summary="List an occupier's users", responses=responses.ONE)
def list_occupier_users(
    occupier_id: Id,
    request: Request,
    response: Response,
    db: ApiDb,
    actor: ApiActor,
    page: UserPage,
    status: StatusFilter = None,
    q: Search = None,
) -> PageOut[UserOut]:
    occupier = scope.get_occupier(db, actor, occupier_id)
    found = queries.list_users(
        db, actor, q=q, occupier_id=occupier.id, status=status, cursor=page.cursor, limit=page.limit
    )
    return users_page(request, response, db, found)


@router.post(
    "/occupiers/{occupier_id}/users", status_code=201, summary="Create a user", responses=responses.WRITE_ONE
)
def create_user(
    occupier_id: Id, body: UserCreate, response: Response, db: ApiDb, actor: ApiActor
) -> UserDetailOut:
    """Create an ACTIVE user of the occupier, in the given access groups. Every invalid field is reported."""
    occupier = scope.get_occupier(db, actor, occupier_id, for_update=True)  # no decommission starts meanwhile
    user = service.create_user(db, occupier, body, actor=actor)
    response.headers["Location"] = f"{API_PREFIX}/users/{user.id}"
    return user_detail(db, user, response)


@router.get("/users/{user_id}", summary="Get a user", responses=responses.ONE)
def get_user(user_id: Id, response: Response, db: ApiDb, actor: ApiActor) -> UserDetailOut:
    """The user and their access groups. The ETag header is what `If-Match` expects on a change."""
    return user_detail(db, scope.get_user(db, actor, user_id), response)


@router.patch("/users/{user_id}", summary="Change a user's details", responses=responses.WRITE_ONE)
def update_user(
    user_id: Id,
    body: UserUpdate,
    response: Response,
    db: ApiDb,
    actor: ApiActor,
    if_match: IfMatch = None,
) -> UserDetailOut:
    """Only the fields sent change. A new `email` notifies the old and the new address (staff only)."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.update_user(db, user, body, actor=actor, expected_version=expected_version(if_match, user))
    return user_detail(db, user, response)


@router.delete(
    "/users/{user_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a user",
    responses=responses.WRITE_ONE,
)
def delete_user(user_id: Id, db: ApiDb, actor: ApiActor, if_match: IfMatch = None) -> None:
    """Permanent: the user's accounts, credentials and group memberships go; no personal data remains."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    service.delete_user(db, user, actor=actor, expected_version=expected_version(if_match, user))


@router.post("/users/{user_id}/deactivate", summary="Deactivate a user", responses=responses.WRITE_ONE)
def deactivate_user(user_id: Id, response: Response, db: ApiDb, actor: ApiActor) -> UserDetailOut:
    """Suspend all of the user's access, keeping the profile. Deactivating twice is harmless."""
    user = service.deactivate_user(db, scope.get_user(db, actor, user_id, for_update=True), actor=actor)
    return user_detail(db, user, response)


@router.post("/users/{user_id}/reactivate", summary="Reactivate a user", responses=responses.WRITE_ONE)
def reactivate_user(user_id: Id, response: Response, db: ApiDb, actor: ApiActor) -> UserDetailOut:
    """Restore a deactivated user's access (409 `invalid_state` when the user is not deactivated)."""
    user = service.reactivate_user(db, scope.get_user(db, actor, user_id, for_update=True), actor=actor)
    return user_detail(db, user, response)


@router.post("/users/{user_id}/change-email", summary="Change a user's email", responses=responses.WRITE_ONE)
def change_email(
    user_id: Id, body: EmailChange, response: Response, db: ApiDb, actor: ApiActor
) -> UserDetailOut:
    """Operator staff only. The old and the new address are both notified."""
    user = service.change_email(
        db, scope.get_user(db, actor, user_id, for_update=True), body.email, actor=actor
    )
    return user_detail(db, user, response)


@router.get("/users/{user_id}/groups", summary="A user's access groups", responses=responses.ONE)
def get_user_groups(user_id: Id, db: ApiDb, actor: ApiActor) -> UserGroupsOut:
    user = scope.get_user(db, actor, user_id)
    return UserGroupsOut(group_ids=sorted(groups.user_group_ids(db, user.id)))


@router.put("/users/{user_id}/groups", summary="Set a user's access groups", responses=responses.WRITE_ONE)
def set_user_groups(user_id: Id, body: GroupIds, db: ApiDb, actor: ApiActor) -> UserGroupsOut:
    """The user ends up in exactly these groups (of their occupier, or of its sites)."""
    user = scope.get_user(db, actor, user_id, for_update=True)
    return UserGroupsOut(group_ids=groups.set_user_groups(db, user, body.group_ids, actor=actor))
