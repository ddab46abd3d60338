"""Signing in and out of the console, first-run set-up, redirects and CSRF."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.kit.settings import get_settings
from occupant.occupiers.models import Occupier
from occupant.staff import setup
from occupant.staff.models import StaffSession, StaffUser
from occupant.web.deps import SESSION_COOKIE
from tests.factories import make_operator, make_staff
from tests.web.conftest import Console

PASSWORD = "correct horse battery"


def _form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form has no CSRF field"
    return match.group(1)


def _sign_in(client: TestClient, email: str, password: str, next_url: str = "") -> object:
    page = client.get("/sign-in" + (f"?next={next_url}" if next_url else ""))
    return client.post(
        "/sign-in",
        data={"email": email, "password": password, "csrf_token": _form_token(page.text), "next": next_url},
        follow_redirects=False,
    )


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    return TestClient(app)


def test_sign_in_opens_a_server_side_session_with_a_safe_cookie(db: Session, client: TestClient) -> None:
    operator = make_operator(db)
    staff = make_staff(db, operator, email="admin@acme.example", password=PASSWORD)

    response = _sign_in(client, "admin@acme.example", PASSWORD, next_url="/sites")

    assert response.status_code == 303
    assert response.headers["location"] == "/sites"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    assert (
        "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "secure" not in cookie.lower()
    )
    assert db.scalar(select(StaffSession.id).where(StaffSession.staff_user_id == staff.id)) is not None
    assert client.get("/sites").status_code == 200


def test_cookie_is_secure_when_the_instance_says_so(
    db: Session, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "cookie_secure", True)
    make_staff(db, make_operator(db), email="admin@acme.example", password=PASSWORD)
    response = _sign_in(TestClient(app, base_url="https://testserver"), "admin@acme.example", PASSWORD)
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "secure" in cookie.lower()


def test_wrong_password_says_so_without_revealing_the_account(db: Session, client: TestClient) -> None:
    make_staff(db, make_operator(db), email="admin@acme.example", password=PASSWORD)

    wrong = _sign_in(client, "admin@acme.example", "not the password")
    unknown = _sign_in(client, "nobody@acme.example", "not the password")

    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Email or password is incorrect." in response.text
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert 'value="admin@acme.example"' in wrong.text  # the email stays typed in


def test_sign_in_form_without_its_token_is_refused(db: Session, client: TestClient) -> None:
    make_staff(db, make_operator(db), email="admin@acme.example", password=PASSWORD)
    response = client.post(
        "/sign-in", data={"email": "admin@acme.example", "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403
    assert "The form expired" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_sign_in_only_returns_to_pages_of_this_site(db: Session, client: TestClient, target: str) -> None:
    make_staff(db, make_operator(db), email="admin@acme.example", password=PASSWORD)
    response = _sign_in(client, "admin@acme.example", PASSWORD, next_url=target)
    assert response.headers["location"] == "/"


def test_signed_out_visitors_are_sent_to_sign_in_and_back(console: Console, app: FastAPI) -> None:
    stranger = TestClient(app)
    path = f"/occupiers/{console.occupier.id}/users?q=ann"

    page = stranger.get(path, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/sign-in?next=" + quote(path, safe="")

    htmx = stranger.get(
        path,
        headers={
            "HX-Request": "true",
            "HX-Target": "user-results",
            "HX-Current-URL": f"http://testserver/occupiers/{console.occupier.id}/users",
        },
    )
    assert htmx.headers["HX-Redirect"].startswith("/sign-in?next=%2Foccupiers")


def test_sign_out_ends_the_session_on_the_server(console: Console) -> None:
    response = console.post("/sign-out")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in"
    console.db.expire_all()
    assert console.db.scalars(select(StaffSession)).one().revoked_at is not None
    # The old cookie is worthless now, even if someone kept a copy.
    assert console.client.get("/occupiers", follow_redirects=False).status_code == 303
    assert "You have signed out." in console.client.get("/sign-in").text


def test_unsafe_requests_need_the_sessions_csrf_token(console: Console) -> None:
    path = f"/occupiers/{console.occupier.id}/edit"
    data = {"name": "Renamed", "site_ids": str(console.site.id)}

    missing = console.post(path, data, csrf=False)
    forged = console.post(path, {**data, "csrf_token": "not-the-token"}, csrf=False)

    for response in (missing, forged):
        assert response.status_code == 403
        assert "did not come from this site" in response.text
    console.db.expire_all()
    assert console.db.get(Occupier, console.occupier.id).name == "Globex"  # type: ignore[union-attr]
    by_header = console.client.post(
        path, data=data, headers={"X-CSRF-Token": console.csrf}, follow_redirects=False
    )
    assert by_header.status_code == 303


def test_without_staff_the_sign_in_page_explains_how_to_start(db: Session, client: TestClient) -> None:
    page = client.get("/sign-in")
    assert page.status_code == 200
    assert "occupant serve" in page.text and "occupant admin create" in page.text
    assert 'type="password"' not in page.text


def test_first_run_setup_creates_the_admin_and_signs_them_in(db: Session, client: TestClient) -> None:
    token = setup.issue_setup_token()
    form = client.get(f"/setup?token={token}")
    assert form.status_code == 200
    data = {
        "csrf_token": _form_token(form.text),
        "token": token,
        "operator_name": "Acme Workspace",
        "name": "Ada Admin",
        "email": "ada@acme.example",
        "password": "short",
        "password_confirm": "short",
    }

    too_short = client.post("/setup", data=data, follow_redirects=False)
    assert too_short.status_code == 422
    assert "Use at least 10 characters." in too_short.text
    assert 'value="ada@acme.example"' in too_short.text

    data.update(password=PASSWORD, password_confirm=PASSWORD)
    done = client.post("/setup", data=data, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/"
    staff = db.scalars(select(StaffUser)).one()
    assert (staff.email, staff.name) == ("ada@acme.example", "Ada Admin")
    assert "Welcome to Occupant." in client.get("/occupiers").text
    # The link is single-use, and useless once an admin exists.
    assert client.get(f"/setup?token={token}").status_code == 403


def test_setup_with_a_wrong_token_explains_what_to_do(db: Session, client: TestClient) -> None:
    setup.issue_setup_token()
    page = client.get("/setup?token=guess")
    assert page.status_code == 403
    assert "This set-up link is not valid." in page.text
    assert "occupant admin create" in page.text
