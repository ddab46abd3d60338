"""REST API: occupiers, their access groups, and decommissioning."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from occupant.api import responses
from occupant.api.deps import ApiActor, ApiDb
from occupant.api.http import (
    API_PREFIX,
    Id,
    IdFilter,
    IfMatch,
    PageParams,
    expected_version,
    page_params,
    paged,
    set_etag,
)
from occupant.api.schemas import PageOut
from occupant.authz import scope
from occupant.groups import service as groups
from occupant.groups.schemas import GroupOut
from occupant.occupiers import queries, service
from occupant.occupiers.models import Occupier, OccupierState
from occupant.occupiers.schemas import OccupierCreate, OccupierOut, OccupierUpdate

router = APIRouter(tags=["occupiers"], responses=responses.COMMON)
OccupierPage = Annotated[PageParams, Depends(page_params(str, int))]


def occupier_out(occupier: Occupier) -> OccupierOut:
    return OccupierOut(
        id=occupier.id,
        name=occupier.name,
        state=occupier.state,
        site_ids=[s.id for s in occupier.sites],
        primary_site_id=occupier.primary_site_id,
        telephony_managed=occupier.telephony_managed,
        portal_offered=occupier.portal_offered,
        mobile_app_offered=occupier.mobile_app_offered,
        default_wifi_device_limit=occupier.default_wifi_device_limit,
        decommission_error=occupier.decommission_error,
        created_at=occupier.created_at,
        updated_at=occupier.updated_at,
    )


def occupier_detail(occupier: Occupier, response: Response) -> OccupierOut:
    set_etag(response, occupier)
    return occupier_out(occupier)


@router.get("/occupiers", summary="List occupiers")
def list_occupiers(
    request: Request,
    response: Response,
    db: ApiDb,
    actor: ApiActor,
    page: OccupierPage,
    q: Annotated[str | None, Query(max_length=200, description="Any fragment of the name.")] = None,
    state: Annotated[OccupierState | None, Query()] = None,
    site_id: Annotated[IdFilter, Query(description="Only occupiers with access to this site.")] = None,
) -> PageOut[OccupierOut]:
    found = queries.list_occupiers(
        db, actor, q=q, state=state, site_id=site_id, cursor=page.cursor, limit=page.limit
    )
    return paged(request, response, found, occupier_out)


@router.post("/occupiers", status_code=201, summary="Create an occupier", responses=responses.CONFLICT)
def create_occupier(body: OccupierCreate, response: Response, db: ApiDb, actor: ApiActor) -> OccupierOut:
    occupier = service.create_occupier(db, body, actor=actor)
    response.headers["Location"] = f"{API_PREFIX}/occupiers/{occupier.id}"
    return occupier_detail(occupier, response)


@router.get("/occupiers/{occupier_id}", summary="Get an occupier", responses=responses.ONE)
def get_occupier(occupier_id: Id, response: Response, db: ApiDb, actor: ApiActor) -> OccupierOut:
    return occupier_detail(scope.get_occupier(db, actor, occupier_id), response)


@router.patch("/occupiers/{occupier_id}", summary="Change an occupier", responses=responses.WRITE_ONE)
def update_occupier(
    occupier_id: Id,
    body: OccupierUpdate,
    response: Response,
    db: ApiDb,
    actor: ApiActor,
    if_match: IfMatch = None,
) -> OccupierOut:
    """Name, sites and switches; only the fields sent change (409 `invalid_state` once decommissioning)."""
    occupier = scope.get_occupier(db, actor, occupier_id, for_update=True)
    service.update_occupier(
        db, occupier, body, actor=actor, expected_version=expected_version(if_match, occupier)
    )
    return occupier_detail(occupier, response)


@router.post(
    "/occupiers/{occupier_id}/decommission",
    status_code=202,
    summary="Decommission an occupier",
    responses=responses.WRITE_ONE,
)
def decommission_occupier(occupier_id: Id, response: Response, db: ApiDb, actor: ApiActor) -> OccupierOut:
    """Start (or, from DECOMMISSION_FAILED, retry) the job that deletes every user of the occupier.

    The occupier is DECOMMISSION_PENDING at once; its users can no longer be added, changed or deleted.
    """
    occupier = service.start_decommission(
        db, scope.get_occupier(db, actor, occupier_id, for_update=True), actor=actor
    )
    return occupier_detail(occupier, response)


@router.get(
    "/occupiers/{occupier_id}/groups", summary="Groups an occupier's users may join", responses=responses.ONE
)
def list_available_groups(occupier_id: Id, db: ApiDb, actor: ApiActor) -> list[GroupOut]:
    """The occupier's own groups and the operator groups of its sites."""
    occupier = scope.get_occupier(db, actor, occupier_id)
    return [GroupOut.model_validate(group) for group in groups.list_available(db, occupier)]
