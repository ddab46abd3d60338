"""Fixtures for the console's page tests.

``console`` signs a staff member in by opening a server-side session directly (no password hashing per
test); ``test_auth.py`` covers the real sign-in form. The app shares the test's ``db`` connection, so
factories only need a flush; after a page changes data, ``db.expire_all()`` before reading it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from occupant.authz.actor import Role
from occupant.kit.clock import utcnow
from occupant.kit.security import new_token, token_hash
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.sites.models import Site
from occupant.staff.models import StaffSession, StaffUser
from occupant.web.app import create_app
from occupant.web.deps import SESSION_COOKIE
from tests.factories import make_occupier, make_operator, make_site, make_staff


@pytest.fixture(scope="session")
def app() -> FastAPI:
    return create_app()


def open_session(db: Session, staff: StaffUser) -> tuple[str, str]:
    """A signed-in session for ``staff``: (cookie token, CSRF token)."""
    token, csrf = new_token(), new_token(nbytes=24)
    db.add(
        StaffSession(
            staff_user_id=staff.id,
            token_hash=token_hash(token),
            csrf_token=csrf,
            expires_at=utcnow() + timedelta(hours=1),
        )
    )
    db.flush()
    return token, csrf


@dataclass
class Console:
    """A browser signed in to the console as ``staff``, with the operator's first site and occupier."""

    db: Session
    client: TestClient
    operator: Operator
    site: Site
    occupier: Occupier
    staff: StaffUser
    csrf: str

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        csrf: bool = True,
        htmx: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A form post with the session's CSRF field; ``htmx`` sends it as htmx would, aiming at that id."""
        body = dict(data or {})
        headers = dict(kwargs.pop("headers", {}))
        if csrf:
            body["csrf_token"] = self.csrf
        if htmx is not None:
            headers.update({"HX-Request": "true", "HX-Target": htmx, "X-CSRF-Token": self.csrf})
        return self.client.post(path, data=body, headers=headers, follow_redirects=False, **kwargs)

    def hx_get(self, path: str, target: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers={"HX-Request": "true", "HX-Target": target}, **kwargs)

    def sign_in_as(self, staff: StaffUser) -> None:
        token, self.csrf = open_session(self.db, staff)
        self.client.cookies.set(SESSION_COOKIE, token)
        self.staff = staff


@pytest.fixture
def console(db: Session, app: FastAPI) -> Console:
    operator = make_operator(db, name="Acme Workspace")
    site = make_site(db, operator, code="LON01", name="London Bridge", country="GB")
    occupier = make_occupier(db, operator, sites_=[site], name="Globex")
    staff = make_staff(db, operator, role=Role.OPERATOR_ADMIN)
    client = TestClient(app, base_url="http://testserver")
    c = Console(db=db, client=client, operator=operator, site=site, occupier=occupier, staff=staff, csrf="")
    c.sign_in_as(staff)
    return c


def text_of(html: str) -> str:
    """The page's visible text, roughly: tags dropped, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
