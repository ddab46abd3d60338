"""The portal's "Download users": the occupier admin's users as CSV, with the list's filter."""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from occupant.accounts.models import AccountRole
from occupant.audit.models import AuditEvent
from tests.factories import make_occupier, make_user
from tests.portal.conftest import Portal, give_account


def rows_of(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="users-globex-' in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))


def test_the_user_list_offers_the_download_of_what_it_shows(portal: Portal) -> None:
    page = portal.get("/portal/users").text
    assert 'formaction="/portal/users/export.csv"' in page and 'form="user-filter"' in page
    assert ">Download users</button>" in page


def test_the_download_holds_the_occupiers_users_matching_the_filter(portal: Portal) -> None:
    make_user(portal.db, portal.occupier, first_name="Tom", last_name="Tanaka", email="tom@globex.example")
    initech = make_occupier(portal.db, portal.operator, sites_=[portal.site], name="Initech")
    make_user(portal.db, initech, first_name="Oscar", email="oscar@initech.example")
    everyone = rows_of(portal.get("/portal/users/export.csv"))
    assert [r["email"] for r in everyone] == ["ada@globex.example", "tom@globex.example"]
    assert everyone[0]["role"] == "admin"
    assert [r["first_name"] for r in rows_of(portal.get("/portal/users/export.csv?q=tanaka"))] == ["Tom"]
    portal.db.expire_all()
    events = portal.db.scalars(select(AuditEvent).where(AuditEvent.action == "users.exported")).all()
    assert [(e.actor_type, e.actor_id, e.occupier_id) for e in events] == [
        ("occupier_user", str(portal.me.id), portal.occupier.id)
    ] * 2


def test_the_button_speaks_the_admins_language(portal: Portal) -> None:
    claire = make_user(
        portal.db, portal.occupier, first_name="Claire", email="claire@globex.example", language="fr"
    )
    give_account(portal.db, claire, role=AccountRole.ADMIN)
    portal.sign_out()
    portal.sign_in_as(claire)
    assert ">Télécharger les utilisateurs</button>" in portal.get("/portal/users").text


def test_an_occupier_user_cannot_download(portal: Portal) -> None:
    uma = make_user(portal.db, portal.occupier, first_name="Uma", email="uma@globex.example")
    give_account(portal.db, uma)
    portal.sign_out()
    portal.sign_in_as(uma)
    response = portal.get("/portal/users/export.csv")
    assert response.status_code == 403
    assert "text/csv" not in response.headers["content-type"]
