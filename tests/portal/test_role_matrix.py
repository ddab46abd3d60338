"""Every portal action tried by every kind of visitor: Globex's occupier admin, a Globex occupier user, the
admin of another occupier (Initech, same operator), and someone signed out.

Allowed actions do what they say; the others change nothing: an occupier user is refused (403), another
occupier's admin finds nothing (404), a signed-out visitor is sent to sign in (303 to the sign-in page).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from occupant.accounts.models import AccountRole
from occupant.notify.models import OutboxMessage
from occupant.portal import account, me, user_forms, users
from occupant.users.models import OccupierUser
from tests.factories import make_occupier, make_user
from tests.portal.conftest import Portal, give_account

ACTORS = ["occupier_admin", "occupier_user", "other_occupier_admin", "signed_out"]


@dataclass
class Scene:
    portal: Portal
    tom: OccupierUser  # a Globex user awaiting their first sign-in
    dan: OccupierUser  # a Globex occupier admin
    uma: OccupierUser  # a Globex occupier user
    oscar: OccupierUser  # Initech's occupier admin

    def user(self, user_id: int) -> OccupierUser | None:
        self.portal.db.expire_all()
        return self.portal.db.get(OccupierUser, user_id)


@pytest.fixture
def scene(portal: Portal) -> Scene:
    db = portal.db
    tom = make_user(db, portal.occupier, first_name="Tom", last_name="Tanaka", email="tom@globex.example")
    give_account(db, tom, signed_in=False)
    dan = make_user(db, portal.occupier, first_name="Dan", last_name="Diaz", email="dan@globex.example")
    give_account(db, dan, role=AccountRole.ADMIN)
    uma = make_user(db, portal.occupier, first_name="Uma", last_name="Usher", email="uma@globex.example")
    give_account(db, uma)
    initech = make_occupier(db, portal.operator, sites_=[portal.site], name="Initech")
    oscar = make_user(db, initech, first_name="Oscar", last_name="Ortiz", email="oscar@initech.example")
    give_account(db, oscar, role=AccountRole.ADMIN)
    return Scene(portal=portal, tom=tom, dan=dan, uma=uma, oscar=oscar)


def _as(scene: Scene, actor: str) -> None:
    p = scene.portal
    if actor == "occupier_user":
        p.sign_out()
        p.sign_in_as(scene.uma)
    elif actor == "other_occupier_admin":
        p.sign_out()
        p.sign_in_as(scene.oscar)
    elif actor == "signed_out":
        p.sign_out()


def _invitations(scene: Scene, user: OccupierUser) -> int:
    return len(
        scene.portal.db.scalars(
            select(OutboxMessage.id).where(
                OutboxMessage.occupier_user_id == user.id, OutboxMessage.template == "app_invitation"
            )
        ).all()
    )


Check = Callable[[Scene, Any, bool], None]


def _list(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.get("/portal/users")

    def check(s: Scene, r: Any, allowed: bool) -> None:
        if allowed:
            # Each admin sees their own occupier's users only.
            assert ("tom@globex.example" in r.text) == (actor == "occupier_admin")
            assert ("oscar@initech.example" in r.text) == (actor == "other_occupier_admin")

    return response, check


def _download(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.get("/portal/users/export.csv")

    def check(s: Scene, r: Any, allowed: bool) -> None:
        if allowed:
            # Each admin downloads their own occupier's users only.
            assert r.headers["content-type"].startswith("text/csv")
            assert ("tom@globex.example" in r.text) == (actor == "occupier_admin")
            assert ("oscar@initech.example" in r.text) == (actor == "other_occupier_admin")

    return response, check


def _view(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.get(f"/portal/users/{scene.tom.id}")

    def check(s: Scene, r: Any, allowed: bool) -> None:
        assert ("tom@globex.example" in r.text) == allowed

    return response, check


def _page_about_tom(path: str) -> Callable[[Scene, str], tuple[Any, Check]]:
    """A GET page about Tom (the edit form, the delete confirmation): shown only to Globex's admin."""

    def action(scene: Scene, actor: str) -> tuple[Any, Check]:
        response = scene.portal.get(f"/portal/users/{scene.tom.id}{path}")

        def check(s: Scene, r: Any, allowed: bool) -> None:
            assert ("tom@globex.example" in r.text or "Tom Tanaka" in r.text) == allowed

        return response, check

    return action


def _add_form(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.get("/portal/users/new")

    def check(s: Scene, r: Any, allowed: bool) -> None:
        if allowed:  # the admin's own occupier
            name = "Initech" if actor == "other_occupier_admin" else "Globex"
            assert f"A user of {name}." in r.text

    return response, check


def _add(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.post(
        "/portal/users/new",
        {
            "first_name": "Nina",
            "last_name": "New",
            "email": "nina@example.com",
            "language": "en",
            "role": "user",
        },
    )

    def check(s: Scene, r: Any, allowed: bool) -> None:
        s.portal.db.expire_all()
        nina = s.portal.db.scalars(
            select(OccupierUser).where(OccupierUser.email_key == "nina@example.com")
        ).first()
        if not allowed:
            assert nina is None
        else:  # added to the admin's own occupier
            assert nina is not None
            expected = s.oscar.occupier_id if actor == "other_occupier_admin" else s.tom.occupier_id
            assert nina.occupier_id == expected

    return response, check


def _edit(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.post(
        f"/portal/users/{scene.tom.id}/edit",
        {"first_name": "Tom", "last_name": "Tanaka", "job_title": "Edited", "language": "en", "role": "user"},
    )

    def check(s: Scene, r: Any, allowed: bool) -> None:
        tom = s.user(s.tom.id)
        assert tom is not None and (tom.job_title == "Edited") == allowed

    return response, check


def _delete_user(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.post(f"/portal/users/{scene.tom.id}/delete")

    def check(s: Scene, r: Any, allowed: bool) -> None:
        assert (s.user(s.tom.id) is None) == allowed

    return response, check


def _delete_admin(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.post(f"/portal/users/{scene.dan.id}/delete")

    def check(s: Scene, r: Any, allowed: bool) -> None:
        assert s.user(s.dan.id) is not None  # never in the portal
        if actor == "occupier_admin":
            assert "Occupier admins cannot be deleted in the portal" in r.text

    return response, check


def _resend(scene: Scene, actor: str) -> tuple[Any, Check]:
    before = _invitations(scene, scene.tom)
    response = scene.portal.post(f"/portal/users/{scene.tom.id}/resend")

    def check(s: Scene, r: Any, allowed: bool) -> None:
        s.portal.db.expire_all()
        assert _invitations(s, s.tom) == before + (1 if allowed else 0)

    return response, check


def _own_details(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.get("/portal/me")

    def check(s: Scene, r: Any, allowed: bool) -> None:
        if allowed:
            me = {"occupier_admin": "ada@", "occupier_user": "uma@", "other_occupier_admin": "oscar@"}[actor]
            assert me in r.text and "tom@" not in r.text

    return response, check


def _edit_own_details(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.post(
        "/portal/me/edit", {"first_name": "Renamed", "last_name": "Person", "language": "en"}
    )

    def check(s: Scene, r: Any, allowed: bool) -> None:
        s.portal.db.expire_all()
        renamed = s.portal.db.scalars(select(OccupierUser).where(OccupierUser.first_name == "Renamed")).all()
        assert len(renamed) == (1 if allowed else 0)
        if allowed:
            assert renamed[0].id == s.portal.me.id

    return response, check


def _home(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.get("/portal")

    def check(s: Scene, r: Any, allowed: bool) -> None:
        if allowed:  # admins start on user management, users on their own details
            expected = "/portal/me" if actor == "occupier_user" else "/portal/users"
            assert r.headers["location"] == expected

    return response, check


def _change_password_page(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.get("/portal/change-password")

    def check(s: Scene, r: Any, allowed: bool) -> None:
        assert ("Current password" in r.text) == allowed

    return response, check


def _sign_out(scene: Scene, actor: str) -> tuple[Any, Check]:
    response = scene.portal.post("/portal/sign-out")

    def check(s: Scene, r: Any, allowed: bool) -> None:
        if allowed:  # the session is over on the server: the cookie no longer signs in
            assert s.portal.get("/portal/me").headers["location"].startswith("/portal/sign-in")

    return response, check


ACTIONS: dict[str, Callable[[Scene, str], tuple[Any, Check]]] = {
    "home": _home,
    "change_password_page": _change_password_page,
    "sign_out": _sign_out,
    "list": _list,
    "download": _download,
    "view": _view,
    "add_form": _add_form,
    "add": _add,
    "edit_form": _page_about_tom("/edit"),
    "edit": _edit,
    "delete_form": _page_about_tom("/delete"),
    "delete_user": _delete_user,
    "delete_admin": _delete_admin,
    "resend": _resend,
    "own_details": _own_details,
    "edit_own_details": _edit_own_details,
}

# action -> the status each actor gets (in ACTORS order)
EXPECTED = {
    "home": (303, 303, 303, 303),
    "change_password_page": (200, 200, 200, 303),
    "sign_out": (303, 303, 303, 303),
    "list": (200, 403, 200, 303),
    "download": (200, 403, 200, 303),
    "view": (200, 403, 404, 303),
    "add_form": (200, 403, 200, 303),
    "add": (303, 403, 303, 303),
    "edit_form": (200, 403, 404, 303),
    "edit": (303, 403, 404, 303),
    "delete_form": (200, 403, 404, 303),
    "delete_user": (303, 403, 404, 303),
    "delete_admin": (403, 403, 404, 303),
    "resend": (303, 403, 404, 303),
    "own_details": (200, 200, 200, 303),
    "edit_own_details": (303, 303, 303, 303),
}


@pytest.mark.parametrize("actor", ACTORS)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_role_matrix(scene: Scene, action: str, actor: str) -> None:
    _as(scene, actor)
    response, check = ACTIONS[action](scene, actor)
    expected = EXPECTED[action][ACTORS.index(actor)]
    assert response.status_code == expected, response.text[:500]
    if actor == "signed_out":
        assert response.headers["location"].startswith("/portal/sign-in")
    elif action == "sign_out":
        assert response.headers["location"] == "/portal/sign-in"
    allowed = expected in (200, 303) and actor != "signed_out"
    check(scene, response, allowed)


def test_the_matrix_covers_every_portal_route() -> None:
    """A new portal page must be added to the matrix (or to the pages every visitor may use)."""
    public = {
        "/portal/sign-in",
        "/portal/forgot",
        "/portal/invitation/{token}",
        "/portal/reset/{token}",
        "/portal/language",
    }
    covered = {
        "/portal",
        "/portal/sign-out",
        "/portal/change-password",
        "/portal/users",
        "/portal/users/new",
        "/portal/users/export.csv",
        "/portal/users/{user_id:int}",
        "/portal/users/{user_id:int}/edit",
        "/portal/users/{user_id:int}/delete",
        "/portal/users/{user_id:int}/resend",
        "/portal/me",
        "/portal/me/edit",
    }
    routers = (account.router, users.router, user_forms.router, me.router)
    assert {getattr(r, "path", "") for router in routers for r in router.routes} == public | covered
