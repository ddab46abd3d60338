"""Who is calling the API, and the database session of the request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.web.deps import api_actor, get_db

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    bearerFormat="occ_…",
    description="An operator API key, sent as `Authorization: Bearer occ_…`. It is shown once when created.",
)

# Function scope: the session commits when the endpoint returns, before the response leaves, so a client
# that reads right after a write always sees it (and a failed commit is reported, not hidden).
ApiDb = Annotated[Session, Depends(get_db, scope="function")]


def current_actor(
    request: Request,
    db: ApiDb,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> Actor:
    """The actor behind the bearer API key; 401 ``not_authenticated`` when it is missing or not valid."""
    return api_actor(request, db)


ApiActor = Annotated[Actor, Depends(current_actor)]
