"""Fixtures for the portal's page tests.

``portal`` is a browser signed in to the portal as an occupier admin of Globex (a session opened directly,
without hashing a password per test; ``test_account_pages.py`` covers the real sign-in form). The app
shares the test's ``db`` connection: factories only need a flush; after a page changes data,
``db.expire_all()`` before reading it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from occupant.accounts import service as accounts
from occupant.accounts.models import AccountRole, AccountStatus, App, AppAccount, AppSession, InviteState
from occupant.kit.clock import utcnow
from occupant.kit.security import new_token, token_hash
from occupant.occupiers.models import Occupier
from occupant.operators.models import Operator
from occupant.portal.deps import PORTAL_COOKIE
from occupant.sites.models import Site
from occupant.users.models import OccupierUser
from occupant.web.app import create_app
from tests.factories import admin_actor, make_occupier, make_operator, make_site, make_user
from tests.web.conftest import text_of

__all__ = ["Portal", "give_account", "open_portal_session", "text_of"]


@pytest.fixture(scope="session")
def app() -> FastAPI:
    return create_app()


def give_account(
    db: Session, user: OccupierUser, *, role: AccountRole = AccountRole.USER, signed_in: bool = True
) -> AppAccount:
    """An app account made by the action (invited to the portal); with ``signed_in`` as if the user had set
    a password and signed in (ACTIVE) — without hashing one."""
    operator = db.get(Operator, user.operator_id)
    assert operator is not None
    account = accounts.set_up_account(db, user, role=role, invite_portal=True, actor=admin_actor(operator))
    if signed_in:
        account.status = AccountStatus.ACTIVE
        account.portal = InviteState.SIGNED_IN
        account.password_hash = "not-a-real-hash"
    db.flush()
    return account


def open_portal_session(db: Session, account: AppAccount) -> tuple[str, str]:
    """A signed-in portal session: (cookie token, CSRF token)."""
    token, csrf = new_token(), new_token(nbytes=24)
    now = utcnow()
    db.add(
        AppSession(
            account_id=account.id,
            app=App.PORTAL,
            token_hash=token_hash(token),
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=1),
        )
    )
    db.flush()
    return token, csrf


@dataclass
class Portal:
    """A browser signed in to the portal as ``me`` (an occupier admin of ``occupier`` to start with)."""

    db: Session
    client: TestClient
    operator: Operator
    site: Site
    occupier: Occupier
    me: OccupierUser
    csrf: str = ""

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, follow_redirects=False, **kwargs)

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

    def sign_in_as(self, user: OccupierUser, account: AppAccount | None = None) -> None:
        account = account or accounts.account_of(self.db, user)
        assert account is not None
        token, self.csrf = open_portal_session(self.db, account)
        self.client.cookies.set(PORTAL_COOKIE, token, path="/portal")
        self.me = user

    def sign_out(self) -> None:
        self.client.cookies.clear()
        self.csrf = ""


@pytest.fixture
def portal(db: Session, app: FastAPI) -> Portal:
    operator = make_operator(db, name="Acme Workspace")
    site = make_site(db, operator, code="LON01", name="London Bridge", country="GB")
    occupier = make_occupier(db, operator, sites_=[site], name="Globex")
    admin = make_user(db, occupier, first_name="Ada", last_name="Admin", email="ada@globex.example")
    give_account(db, admin, role=AccountRole.ADMIN)
    client = TestClient(app, base_url="http://testserver")
    p = Portal(db=db, client=client, operator=operator, site=site, occupier=occupier, me=admin)
    p.sign_in_as(admin)
    return p
