"""REST API: access groups (operator groups of a site, an occupier's own groups) and their members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from occupant.api import responses
from occupant.api.deps import ApiActor, ApiDb
from occupant.api.http import API_PREFIX, Id, IdFilter, PageParams, page_params, paged
from occupant.api.schemas import PageOut
from occupant.groups import queries, service
from occupant.groups.models import AccessGroup
from occupant.groups.schemas import GroupCreate, GroupOut, GroupRename, MemberIds, MembersOut

router = APIRouter(tags=["groups"], responses=responses.COMMON)
GroupPage = Annotated[PageParams, Depends(page_params(str, int))]


def group_out(group: AccessGroup) -> GroupOut:
    return GroupOut.model_validate(group)


@router.get("/groups", summary="List access groups")
def list_groups(
    request: Request,
    response: Response,
    db: ApiDb,
    actor: ApiActor,
    page: GroupPage,
    site_id: IdFilter = None,
    occupier_id: IdFilter = None,
) -> PageOut[GroupOut]:
    """Groups in name order: a site's operator groups (`site_id`) or an occupier's own (`occupier_id`)."""
    found = queries.list_groups(
        db, actor, site_id=site_id, occupier_id=occupier_id, cursor=page.cursor, limit=page.limit
    )
    return paged(request, response, found, group_out)


@router.post("/groups", status_code=201, summary="Create an access group", responses=responses.ONE)
def create_group(body: GroupCreate, response: Response, db: ApiDb, actor: ApiActor) -> GroupOut:
    """For exactly one of `site_id` (an operator group) or `occupier_id` (the occupier's own group)."""
    group = service.create_group(
        db,
        actor=actor,
        name=body.name,
        site_id=body.site_id,
        occupier_id=body.occupier_id,
        description=body.description,
    )
    response.headers["Location"] = f"{API_PREFIX}/groups/{group.id}"
    return group_out(group)


@router.get("/groups/{group_id}", summary="Get an access group", responses=responses.ONE)
def get_group(group_id: Id, db: ApiDb, actor: ApiActor) -> GroupOut:
    return group_out(service.get_group(db, actor, group_id))


@router.patch("/groups/{group_id}", summary="Rename an access group", responses=responses.ONE)
def rename_group(group_id: Id, body: GroupRename, db: ApiDb, actor: ApiActor) -> GroupOut:
    group = service.get_group(db, actor, group_id)
    return group_out(service.rename_group(db, group, body.name, actor=actor))


@router.delete(
    "/groups/{group_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an access group",
    responses=responses.ONE,
)
def delete_group(group_id: Id, db: ApiDb, actor: ApiActor) -> None:
    """Members leave the group; the users themselves stay."""
    service.delete_group(db, service.get_group(db, actor, group_id), actor=actor)


@router.get("/groups/{group_id}/members", summary="An access group's members", responses=responses.ONE)
def get_members(group_id: Id, db: ApiDb, actor: ApiActor) -> MembersOut:
    group = service.get_group(db, actor, group_id)
    return MembersOut(user_ids=sorted(service.group_member_ids(db, group.id)))


@router.put(
    "/groups/{group_id}/members", summary="Set an access group's members", responses=responses.WRITE_ONE
)
def set_members(group_id: Id, body: MemberIds, db: ApiDb, actor: ApiActor) -> MembersOut:
    """The group ends up with exactly these members (users of occupiers that may join it)."""
    group = service.get_group(db, actor, group_id)
    return MembersOut(user_ids=service.set_group_members(db, group, body.user_ids, actor=actor))
