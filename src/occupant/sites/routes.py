"""REST API: sites (buildings) and their RADIUS NAS identifiers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from occupant.api import responses
from occupant.api.deps import ApiActor, ApiDb
from occupant.api.http import (
    API_PREFIX,
    Id,
    IfMatch,
    PageParams,
    expected_version,
    page_params,
    paged,
    set_etag,
)
from occupant.api.schemas import PageOut
from occupant.authz import scope
from occupant.sites import queries, service
from occupant.sites.models import Site
from occupant.sites.schemas import SiteCreate, SiteOut, SiteUpdate

router = APIRouter(tags=["sites"], responses=responses.COMMON)
SitePage = Annotated[PageParams, Depends(page_params(str, int))]


def site_out(site: Site) -> SiteOut:
    return SiteOut.model_validate(site)


def site_detail(site: Site, response: Response) -> SiteOut:
    set_etag(response, site)
    return site_out(site)


@router.get("/sites", summary="List sites")
def list_sites(
    request: Request, response: Response, db: ApiDb, actor: ApiActor, page: SitePage
) -> PageOut[SiteOut]:
    """Sites in code order."""
    return paged(
        request, response, queries.list_sites(db, actor, cursor=page.cursor, limit=page.limit), site_out
    )


@router.post("/sites", status_code=201, summary="Create a site")
def create_site(body: SiteCreate, response: Response, db: ApiDb, actor: ApiActor) -> SiteOut:
    site = service.create_site(db, body, actor=actor)
    response.headers["Location"] = f"{API_PREFIX}/sites/{site.id}"
    return site_detail(site, response)


@router.get("/sites/{site_id}", summary="Get a site", responses=responses.ONE)
def get_site(site_id: Id, response: Response, db: ApiDb, actor: ApiActor) -> SiteOut:
    return site_detail(scope.get_site(db, actor, site_id), response)


@router.patch("/sites/{site_id}", summary="Change a site", responses=responses.WRITE_ONE)
def update_site(
    site_id: Id,
    body: SiteUpdate,
    response: Response,
    db: ApiDb,
    actor: ApiActor,
    if_match: IfMatch = None,
) -> SiteOut:
    site = scope.get_site(db, actor, site_id)
    service.update_site(db, site, body, actor=actor, expected_version=expected_version(if_match, site))
    return site_detail(site, response)


@router.delete(
    "/sites/{site_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a site",
    responses=responses.WRITE_ONE,
)
def delete_site(site_id: Id, db: ApiDb, actor: ApiActor, if_match: IfMatch = None) -> None:
    """Only a site no occupier uses (409 `site_in_use` otherwise)."""
    site = scope.get_site(db, actor, site_id)
    expected_version(if_match, site)
    service.delete_site(db, site, actor=actor)
