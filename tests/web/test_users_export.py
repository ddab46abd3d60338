"""The console's "Download users" on an occupier's Users tab: the occupier's users as CSV, with the search."""

from __future__ import annotations

import csv
import io

from occupant.authz.actor import Role
from occupant.occupiers.models import OccupierState
from tests.factories import make_occupier, make_site, make_staff, make_user
from tests.web.conftest import Console


def rows_of(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'attachment; filename="users-globex-' in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))


def test_the_users_tab_offers_the_download_of_what_the_search_shows(console: Console) -> None:
    c = console
    tab = c.get(f"/occupiers/{c.occupier.id}/users").text
    # The button submits the search form (with what is typed in it now) to the download.
    assert f'formaction="/occupiers/{c.occupier.id}/users/export.csv"' in tab
    assert 'form="user-search"' in tab and 'id="user-search"' in tab
    assert ">Download users</button>" in tab


def test_the_download_holds_the_occupiers_users_matching_the_search(console: Console) -> None:
    c = console
    make_user(c.db, c.occupier, first_name="Ada", last_name="Lovelace", mobile="+447911123456")
    make_user(c.db, c.occupier, first_name="Bob", last_name="Babbage")
    other = make_occupier(c.db, c.operator, sites_=[c.site], name="Initech")
    make_user(c.db, other, first_name="Ivy")
    everyone = rows_of(c.get(f"/occupiers/{c.occupier.id}/users/export.csv"))
    assert [r["first_name"] for r in everyone] == ["Bob", "Ada"]
    assert everyone[1]["mobile"] == "'+447911123456"
    found = rows_of(c.get(f"/occupiers/{c.occupier.id}/users/export.csv", params={"q": " lovelace "}))
    assert [r["first_name"] for r in found] == ["Ada"]


def test_a_site_manager_downloads_only_occupiers_at_their_sites(console: Console) -> None:
    c = console
    make_user(c.db, c.occupier, first_name="Ada")
    paris = make_site(c.db, c.operator, code="PAR01", country="FR")
    initech = make_occupier(c.db, c.operator, sites_=[paris], name="Initech")
    make_user(c.db, initech)
    c.sign_in_as(make_staff(c.db, c.operator, role=Role.SITE_MANAGER, sites_=[c.site]))
    assert [r["first_name"] for r in rows_of(c.get(f"/occupiers/{c.occupier.id}/users/export.csv"))] == [
        "Ada"
    ]
    refused = c.get(f"/occupiers/{initech.id}/users/export.csv")
    assert refused.status_code == 404 and "text/csv" not in refused.headers["content-type"]


def test_a_decommissioning_occupiers_users_can_still_be_downloaded(console: Console) -> None:
    c = console
    make_user(c.db, c.occupier, first_name="Ada")
    c.occupier.state = OccupierState.DECOMMISSION_PENDING
    c.db.flush()
    tab = c.get(f"/occupiers/{c.occupier.id}/users").text
    assert ">Download users</button>" in tab and ">Add user</a>" not in tab
    assert len(rows_of(c.get(f"/occupiers/{c.occupier.id}/users/export.csv"))) == 1


def test_a_bad_search_is_a_form_error_not_a_crash(console: Console) -> None:
    c = console
    response = c.get(f"/occupiers/{c.occupier.id}/users/export.csv", params={"q": "a\x00b"})
    assert response.status_code == 422 and "Traceback" not in response.text
