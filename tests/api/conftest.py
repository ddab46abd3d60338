"""Fixtures for the REST API tests.

The app under test shares the test's ``db`` session's connection (``runtime.use_session_factory`` in
``tests/conftest.py``): data made with the factories only needs ``db.flush()`` to be visible to the app,
and what the app commits is a savepoint that the test's rollback undoes. After an API write, call
``db.expire_all()`` before reading rows through ``db`` so they are re-read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.audit.models import AuditEvent
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.sites.models import Site
from occupant.staff import service as staff
from occupant.web.app import create_app
from tests.factories import admin_actor, make_occupier, make_operator, make_site


@pytest.fixture(scope="session")
def app() -> FastAPI:
    return create_app()


@dataclass
class Api:
    """An operator with a site, an occupier and an API key, and a client that sends the key."""

    db: Session
    client: TestClient
    operator: Operator
    site: Site
    occupier: Occupier
    key_id: int
    token: str

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def walk(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a list, page after page, following ``next_cursor``."""
        items: list[dict[str, Any]] = []
        cursor = None
        for _ in range(1000):
            response = self.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
            assert response.status_code == 200, response.text
            body = response.json()
            items.extend(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                assert "link" not in response.headers
                return items
            assert response.headers["link"].endswith('rel="next"')
        raise AssertionError("pagination does not end")

    def events(self, **filters: Any) -> list[AuditEvent]:
        self.db.expire_all()
        stmt = select(AuditEvent).where(AuditEvent.operator_id == self.operator.id)
        for name, value in filters.items():
            stmt = stmt.where(getattr(AuditEvent, name) == value)
        return list(self.db.scalars(stmt.order_by(AuditEvent.id)))


def make_key(db: Session, operator: Operator, name: str = "integration") -> tuple[int, str]:
    key, token = staff.create_api_key(db, actor=admin_actor(operator), name=name)
    return key.id, token


@pytest.fixture
def api(db: Session, app: FastAPI) -> Api:
    operator = make_operator(db)
    site = make_site(db, operator, code="LON01", country="GB")
    occupier = make_occupier(db, operator, sites_=[site], name="Acme Ltd")
    key_id, token = make_key(db, operator)
    db.flush()
    return Api(
        db=db,
        client=TestClient(app),
        operator=operator,
        site=site,
        occupier=occupier,
        key_id=key_id,
        token=token,
    )


@pytest.fixture
def other(db: Session) -> Callable[[], dict[str, Any]]:
    """Another operator's site, occupier, user and group (to check they answer 404)."""

    def build() -> dict[str, Any]:
        from occupant.groups import service as groups
        from tests.factories import make_user

        operator = make_operator(db)
        site = make_site(db, operator, country="FR")
        occupier = make_occupier(db, operator, sites_=[site])
        user = make_user(db, occupier)
        group = groups.create_group(db, actor=admin_actor(operator), name="Doors", site_id=site.id)
        db.flush()
        return {"operator": operator, "site": site, "occupier": occupier, "user": user, "group": group}

    return build
