"""Console pages as an operator admin and a site manager sees them: content, scope, errors, partials."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from occupant.audit.models import AuditEvent
from occupant.authz.actor import Role
from occupant.groups import service as groups
from occupant.occupiers.models import Occupier, OccupierState
from occupant.sites.models import Site
from occupant.staff.models import ApiKey
from occupant.users.models import OccupierUser, UserStatus
from tests.factories import admin_actor, make_occupier, make_site, make_staff, make_user
from tests.web.conftest import Console, text_of


def test_every_console_page_renders_for_an_operator_admin(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier, first_name="Ada", last_name="Abbott")
    group = groups.create_group(c.db, actor=admin_actor(c.operator), name="Door access", site_id=c.site.id)
    key_page = c.post("/api-keys", {"name": "HR sync"})
    assert key_page.status_code == 201
    base = f"/occupiers/{c.occupier.id}"
    pages = [
        "/occupiers",
        "/occupiers?q=glo",
        "/occupiers/new",
        base,
        f"{base}/edit",
        f"{base}/decommission",
        f"{base}/users",
        f"{base}/users?q=ada",
        f"{base}/users/new",
        f"{base}/users/{user.id}",
        f"{base}/users/{user.id}/edit",
        f"{base}/users/{user.id}/email",
        f"{base}/users/{user.id}/groups",
        f"{base}/users/{user.id}/delete",
        f"{base}/groups",
        "/groups",
        f"/groups/{group.id}",
        f"/groups/{group.id}?q=ada",
        f"/groups/{group.id}/delete",
        "/sites",
        "/sites/new",
        f"/sites/{c.site.id}/edit",
        f"/sites/{c.site.id}/delete",
        "/audit",
        "/api-keys",
        "/mailbox",
    ]
    for path in pages:
        response = c.get(path)
        assert response.status_code == 200, (path, response.status_code, text_of(response.text)[:300])
        assert response.text.startswith("<!doctype html>"), path
    assert "Ada Abbott" in c.get(f"{base}/users/{user.id}").text


def test_users_tab_selects_the_top_user_and_counts(console: Console) -> None:
    for first, last in [("Zoe", "Young"), ("Ada", "Abbott"), ("Ben", "Brown")]:
        make_user(console.db, console.occupier, first_name=first, last_name=last)
    page = console.get(f"/occupiers/{console.occupier.id}/users")
    text = text_of(page.text)
    assert "3 users" in text
    assert text.index("Ada Abbott") < text.index("Ben Brown") < text.index("Zoe Young")
    assert 'aria-current="true"' in page.text.split("Ada Abbott")[0].rsplit("<li", 1)[1]
    assert '<h2 id="pane-title">Ada Abbott</h2>' in page.text


def test_live_search_answers_a_fragment_and_the_same_url_a_full_page(console: Console) -> None:
    make_user(console.db, console.occupier, first_name="Ada", last_name="Abbott", email="ada@globex.example")
    make_user(console.db, console.occupier, first_name="Ben", last_name="Brown", email="ben@globex.example")
    path = f"/occupiers/{console.occupier.id}/users?q=ben%40"

    fragment = console.hx_get(path, "user-results")
    full = console.get(path)

    assert "<html" not in fragment.text and "Ben Brown" in fragment.text and "Ada Abbott" not in fragment.text
    assert 'id="user-status" hx-swap-oob="innerHTML">1 user matches “ben@”' in fragment.text
    assert (
        full.text.startswith("<!doctype html>") and "Ben Brown" in full.text and "Ada Abbott" not in full.text
    )
    assert "HX-Request" in fragment.headers["vary"]


def test_users_list_pages_with_load_more(console: Console) -> None:
    for n in range(55):
        make_user(console.db, console.occupier, first_name=f"P{n:02d}", last_name="Person")
    base = f"/occupiers/{console.occupier.id}/users"
    first = console.get(base)
    assert "55 users, showing the first 50" in text_of(first.text)
    cursor = first.text.split("cursor=")[1].split('"')[0]
    more = console.hx_get(f"{base}?cursor={cursor}", "user-more")
    assert more.text.count('class="user-row') == 5 and "Load more" not in more.text


def test_users_tab_query_count_does_not_grow_with_users(console: Console) -> None:
    """One query for the page and one count, whatever the number of users (no N+1)."""
    counts = []
    statements: list[str] = []
    engine = console.db.get_bind().engine

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    for batch in (3, 40):
        for _ in range(batch):
            make_user(console.db, console.occupier)
        console.db.flush()
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert console.get(f"/occupiers/{console.occupier.id}/users").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        counts.append(len([s for s in statements if "SAVEPOINT" not in s.upper()]))
    assert counts[0] == counts[1]
    # with the page's Wi-Fi and app-account states (one query each) and the selected user's sections
    assert counts[1] <= 18


def test_site_manager_sees_only_occupiers_at_their_sites(console: Console) -> None:
    c = console
    paris = make_site(c.db, c.operator, code="PAR01", country="FR")
    initech = make_occupier(c.db, c.operator, sites_=[paris], name="Initech")
    hidden_user = make_user(c.db, initech)
    manager = make_staff(c.db, c.operator, role=Role.SITE_MANAGER, sites_=[c.site])
    c.sign_in_as(manager)

    listing = text_of(c.get("/occupiers").text)
    assert "Globex" in listing and "Initech" not in listing
    for path in [
        f"/occupiers/{initech.id}",
        f"/occupiers/{initech.id}/users",
        f"/occupiers/{initech.id}/users/{hidden_user.id}",
        f"/occupiers/{c.occupier.id}/users/{hidden_user.id}",
    ]:
        response = c.get(path)
        assert response.status_code == 404, path
        assert "Not found" in response.text and "Traceback" not in response.text
    refused = c.post(f"/occupiers/{initech.id}/users/{hidden_user.id}/delete")
    assert refused.status_code == 404
    # What they lack is not offered.
    assert "Add occupier" not in c.get("/occupiers").text
    sites = c.get("/sites").text
    assert "Add site" not in sites and "PAR01" not in sites
    assert c.get("/sites/new").status_code == 403
    assert "/api-keys" not in c.get("/occupiers").text


def test_add_user_wizard_keeps_values_between_steps_and_adds_with_groups(console: Console) -> None:
    c = console
    door = groups.create_group(c.db, actor=admin_actor(c.operator), name="Door access", site_id=c.site.id)
    url = f"/occupiers/{c.occupier.id}/users/new"
    details = {
        "step": "details",
        "first_name": "Frank",
        "last_name": "Fischer",
        "email": "frank@globex.example",
        "mobile": "07911 123456",
        "language": "fr",
    }

    wifi_step = c.post(url, {**details, "go": "next"}, htmx="user-detail")
    assert wifi_step.status_code == 200 and "Step 2 of 4: Wi-Fi" in wifi_step.text
    step_two = c.post(url, {**details, "step": "wifi", "go": "next"}, htmx="user-detail")
    assert step_two.status_code == 200 and "Step 3 of 4: Access groups" in step_two.text
    assert '<input type="hidden" name="email" value="frank@globex.example">' in step_two.text
    back = c.post(
        url, {**details, "step": "groups", "group_ids": str(door.id), "go": "back"}, htmx="user-detail"
    )
    assert 'value="Frank"' in back.text and f'name="group_ids" value="{door.id}"' in back.text

    done = c.post(
        url, {**details, "step": "groups", "group_ids": str(door.id), "go": "submit"}, htmx="user-detail"
    )
    user = c.db.scalars(select(OccupierUser).where(OccupierUser.email == "frank@globex.example")).one()
    assert (
        done.status_code == 204
        and done.headers["HX-Redirect"] == f"/occupiers/{c.occupier.id}/users/{user.id}"
    )
    assert (user.mobile, user.language) == ("+447911123456", "fr")
    assert groups.user_group_ids(c.db, user.id) == [door.id]
    assert "The user was added." in c.get(done.headers["HX-Redirect"]).text


def test_add_user_errors_return_to_the_step_of_the_field(console: Console) -> None:
    c = console
    groups.create_group(c.db, actor=admin_actor(c.operator), name="Door access", site_id=c.site.id)
    make_user(c.db, c.occupier, email="taken@globex.example")
    url = f"/occupiers/{c.occupier.id}/users/new"

    missing = c.post(
        url,
        {
            "step": "details",
            "go": "next",
            "first_name": "",
            "last_name": "Fischer",
            "email": "x@globex.example",
        },
    )
    assert missing.status_code == 422
    assert 'id="new-first_name-error"' in missing.text and "This field is required." in missing.text

    response = c.post(
        url,
        {
            "step": "groups",
            "go": "submit",
            "first_name": "Frank",
            "last_name": "Fischer",
            "email": "TAKEN@globex.example",
            "mobile": "12",
        },
    )
    assert response.status_code == 422
    assert "Step 1 of 4: User details" in response.text
    assert "Email must be unique within the operator." in response.text
    assert 'value="TAKEN@globex.example"' in response.text
    assert c.db.scalar(select(OccupierUser.id).where(OccupierUser.first_name == "Frank")) is None


def test_edit_shows_field_errors_and_keeps_what_was_typed(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier, first_name="Ada", last_name="Abbott")
    url = f"/occupiers/{c.occupier.id}/users/{user.id}/edit"
    response = c.post(
        url,
        {
            "first_name": "",
            "last_name": "Abbott-Smith",
            "mobile": "not a phone",
            "version": str(user.version_id),
        },
        htmx="user-detail",
    )
    assert response.status_code == 422
    assert "<html" not in response.text
    assert 'id="edit-first_name-error"' in response.text and 'id="edit-mobile-error"' in response.text
    assert 'value="Abbott-Smith"' in response.text and 'value="not a phone"' in response.text
    c.db.expire_all()
    assert c.db.get(OccupierUser, user.id).last_name == "Abbott"  # type: ignore[union-attr]

    saved = c.post(
        url,
        {
            "first_name": "Ada",
            "last_name": "Abbott-Smith",
            "job_title": "CFO",
            "version": str(user.version_id),
        },
        htmx="user-detail",
    )
    assert saved.status_code == 200
    assert "CFO" in saved.text and f'id="user-row-{user.id}" hx-swap-oob="true"' in saved.text
    assert (
        "The user&#39;s details were saved." in saved.text or "The user's details were saved." in saved.text
    )


def test_stale_edit_is_refused_with_a_clear_message(console: Console) -> None:
    user = make_user(console.db, console.occupier)
    response = console.post(
        f"/occupiers/{console.occupier.id}/users/{user.id}/edit",
        {"first_name": "Ada", "last_name": "Abbott", "version": str(user.version_id + 5)},
    )
    assert response.status_code == 412
    assert "The record changed since you read it" in response.text


def test_deactivate_reactivate_and_change_email(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier, email="ada@globex.example")
    c.db.flush()
    base = f"/occupiers/{c.occupier.id}/users/{user.id}"

    off = c.post(f"{base}/deactivate", htmx="user-detail")
    assert off.status_code == 200 and "Reactivate" in off.text and "Deactivated" in off.text
    on = c.post(f"{base}/reactivate")
    assert on.status_code == 303
    bad = c.post(f"{base}/email", {"email": "nope"}, htmx="user-detail")
    assert bad.status_code == 422 and "Not a valid email address" in bad.text
    changed = c.post(f"{base}/email", {"email": "ada.new@globex.example"}, htmx="user-detail")
    assert changed.status_code == 200 and "ada.new@globex.example" in changed.text
    c.db.expire_all()
    assert c.db.get(OccupierUser, user.id).status == UserStatus.ACTIVE  # type: ignore[union-attr]
    actions = list(
        c.db.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target_type == "occupier_user", AuditEvent.target_id == str(user.id))
            .order_by(AuditEvent.id)
        )
    )
    assert actions == ["user.created", "user.deactivated", "user.reactivated", "user.email_changed"]


def test_delete_user_after_confirmation(console: Console) -> None:
    user = make_user(console.db, console.occupier)
    base = f"/occupiers/{console.occupier.id}/users"
    confirm = console.get(f"{base}/{user.id}/delete")
    assert "Delete user" in confirm.text and f'action="{base}/{user.id}/delete"' in confirm.text
    done = console.post(f"{base}/{user.id}/delete")
    assert done.status_code == 303 and done.headers["location"] == base
    assert console.db.scalar(select(OccupierUser.id).where(OccupierUser.id == user.id)) is None
    assert "The user was deleted." in console.get(base).text


@pytest.mark.parametrize(
    "state",
    [OccupierState.DECOMMISSION_PENDING, OccupierState.DECOMMISSIONED, OccupierState.DECOMMISSION_FAILED],
)
def test_decommissioning_occupier_offers_no_user_changes(console: Console, state: OccupierState) -> None:
    c = console
    user = make_user(c.db, c.occupier, first_name="Ada", last_name="Abbott")
    c.occupier.state = state
    c.db.flush()
    base = f"/occupiers/{c.occupier.id}/users"

    page = c.get(base).text
    assert "Ada Abbott" in page
    for offered in ("Add user", ">Edit<", ">Delete<", "Deactivate</button>", "Manage groups", "Change email"):
        assert offered not in page, offered
    assert "its users cannot be added, edited or deleted" in page
    for path, data in [
        (
            f"{base}/new",
            {"step": "details", "go": "submit", "first_name": "A", "last_name": "B", "email": "a@b.example"},
        ),
        (f"{base}/{user.id}/edit", {"first_name": "X", "last_name": "Y"}),
        (f"{base}/{user.id}/delete", {}),
    ]:
        response = c.post(path, data)
        assert response.status_code == 409, path
        assert "decommissioned" in response.text
    htmx = c.post(f"{base}/{user.id}/deactivate", htmx="user-detail")
    assert htmx.status_code == 409 and htmx.headers["HX-Retarget"] == "#flash" and 'role="alert"' in htmx.text


def test_decommission_starts_from_the_overview(console: Console) -> None:
    c = console
    make_user(c.db, c.occupier)
    response = c.post(f"/occupiers/{c.occupier.id}/decommission", htmx="occupier-state")
    assert response.status_code == 200
    assert "Decommission pending" in response.text and 'hx-trigger="every 2s"' in response.text
    c.db.expire_all()
    assert c.db.get(Occupier, c.occupier.id).state == OccupierState.DECOMMISSION_PENDING  # type: ignore[union-attr]


def test_site_and_occupier_forms_show_field_errors(console: Console) -> None:
    c = console
    site = c.post("/sites/new", {"code": "lon 01", "name": "", "country": "XX", "nas_identifiers": "ap-1"})
    assert site.status_code == 422
    text = text_of(site.text)
    assert "Name: This field is required." in text
    assert 'value="lon 01"' in site.text and "ap-1" in site.text
    assert "Code: Use capital letters, digits" in text
    ok = c.post(
        "/sites/new",
        {"code": "par01", "name": "Paris Opéra", "country": "fr", "nas_identifiers": "ap-par-1\nap-par-2"},
    )
    assert ok.status_code == 303
    paris = c.db.scalars(select(Site).where(Site.code == "PAR01")).one()
    assert (paris.country, paris.nas_identifiers) == ("FR", ["ap-par-1", "ap-par-2"])

    occupier = c.post("/occupiers/new", {"name": "Globex", "portal_offered": "on"})
    assert occupier.status_code == 422
    assert "Sites: Choose at least one." in text_of(occupier.text)
    created = c.post(
        "/occupiers/new",
        {
            "name": "Initech",
            "site_ids": [str(paris.id)],
            "telephony_managed": "on",
            "default_wifi_device_limit": "3",
        },
    )
    assert created.status_code == 303
    initech = c.db.scalars(select(Occupier).where(Occupier.name == "Initech")).one()
    assert (initech.telephony_managed, initech.portal_offered, initech.mobile_app_offered) == (
        True,
        False,
        False,
    )


def test_site_in_use_cannot_be_deleted(console: Console) -> None:
    response = console.post(f"/sites/{console.site.id}/delete")
    assert response.status_code == 409
    assert "Occupiers still have access to this site" in response.text


def test_groups_manage_members_and_user_groups(console: Console) -> None:
    c = console
    ada = make_user(c.db, c.occupier, first_name="Ada", last_name="Abbott")
    ben = make_user(c.db, c.occupier, first_name="Ben", last_name="Brown")
    created = c.post(f"/occupiers/{c.occupier.id}/groups/new", {"name": "Finance team"})
    group_id = int(created.headers["location"].rsplit("/", 1)[1])
    candidates = c.hx_get(f"/groups/{group_id}?q=ada", "group-candidates")
    assert (
        "Ada Abbott" in candidates.text
        and "Ben Brown" not in candidates.text
        and "<html" not in candidates.text
    )

    assert c.post(f"/groups/{group_id}/members", {"user_ids": [str(ada.id), str(ben.id)]}).status_code == 303
    assert sorted(groups.group_member_ids(c.db, group_id)) == sorted([ada.id, ben.id])
    assert c.post(f"/occupiers/{c.occupier.id}/users/{ben.id}/groups", {}).status_code == 303
    assert groups.group_member_ids(c.db, group_id) == [ada.id]
    page = c.get(f"/occupiers/{c.occupier.id}/users/{ada.id}")
    assert "Finance team" in page.text


def test_api_key_is_shown_once_then_revoked(console: Console) -> None:
    created = console.post("/api-keys", {"name": "HR sync"})
    token = created.text.split("data-select-on-focus")[0].rsplit('value="', 1)[1].split('"')[0]
    assert token.startswith("occ_")
    key = console.db.scalars(select(ApiKey)).one()
    assert token not in console.get("/api-keys").text
    assert (
        console.client.get("/api/v1/sites", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    assert console.post(f"/api-keys/{key.id}/revoke").status_code == 303
    assert (
        console.client.get("/api/v1/sites", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    blank = console.post("/api-keys", {"name": ""})
    assert blank.status_code == 422 and "Give the key a name" in blank.text


def test_audit_log_filters_and_exports_csv(console: Console) -> None:
    c = console
    user = make_user(c.db, c.occupier)
    c.db.flush()
    page = c.get(f"/audit?action=user&occupier_id={c.occupier.id}")
    assert "user.created" in page.text and "occupier.created" not in page.text
    export = c.get(f"/audit/export.csv?action=user&occupier_id={c.occupier.id}")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff"))))
    assert rows[0][:5] == ["id", "occurred_at", "actor_type", "actor_id", "action"]
    assert [(r[4], r[6]) for r in rows[1:]] == [("user.created", str(user.id))]
    bad = c.get("/audit?since=yesterday")
    assert bad.status_code == 422 and "Enter a date as YYYY-MM-DD." in bad.text


def test_unknown_pages_and_bad_addresses_answer_html(console: Console) -> None:
    missing = console.get("/no-such-page")
    assert missing.status_code == 404 and "There is no page at this address." in missing.text
    bad_cursor = console.get(f"/occupiers/{console.occupier.id}/users?cursor=%%%")
    assert bad_cursor.status_code == 422 and "The cursor is not valid." in bad_cursor.text
    api = console.client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/json")


def test_mailbox_lists_and_shows_local_mail(console: Console, tmp_path: object, db: Session) -> None:
    from occupant.kit.settings import get_settings
    from occupant.notify.mailbox import operator_folder

    folder = operator_folder(get_settings().mail_dir, console.operator.id)
    folder.mkdir(parents=True, exist_ok=True)
    name = "20261121T101500.123456Z-42.eml"
    (folder / name).write_bytes(
        b"From: Acme <no-reply@acme.example>\r\nTo: ada@globex.example\r\n"
        b"Subject: Your email was changed\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Hello Ada\r\n"
    )
    try:
        listing = console.get("/mailbox")
        assert "Your email was changed" in listing.text and "ada@globex.example" in listing.text
        message = console.get(f"/mailbox/{name}")
        assert message.status_code == 200 and "Hello Ada" in message.text
        assert console.get("/mailbox/..%2F..%2Fsecret.key").status_code == 404
    finally:
        (folder / name).unlink()


def test_failed_decommission_shows_why_and_can_be_retried(console: Console) -> None:
    c = console
    c.occupier.state = OccupierState.DECOMMISSION_FAILED
    c.occupier.decommission_error = "1 users could not be deleted: user 7: action in progress"
    c.db.flush()
    page = c.get(f"/occupiers/{c.occupier.id}")
    assert "Decommissioning did not finish." in page.text and "action in progress" in page.text
    assert "Retry decommissioning" in page.text and "Edit occupier" not in page.text
    retried = c.post(f"/occupiers/{c.occupier.id}/decommission")
    assert retried.status_code == 303
    c.db.expire_all()
    assert c.db.get(Occupier, c.occupier.id).state == OccupierState.DECOMMISSION_PENDING  # type: ignore[union-attr]
    pending = c.hx_get(f"/occupiers/{c.occupier.id}", "occupier-state")
    assert (
        "<html" not in pending.text and "Decommission pending" in pending.text and "Retry" not in pending.text
    )


def test_site_edit_changes_name_country_and_nas(console: Console) -> None:
    c = console
    url = f"/sites/{c.site.id}/edit"
    form = c.get(url).text
    assert 'value="London Bridge"' in form and "LON01" in form
    saved = c.post(
        url,
        {
            "name": "London Bridge Tower",
            "country": "GB",
            "nas_identifiers": "ap-1, ap-2",
            "version": str(c.site.version_id),
        },
    )
    assert saved.status_code == 303
    c.db.expire_all()
    site = c.db.get(Site, c.site.id)
    assert site is not None and (site.name, site.nas_identifiers) == ("London Bridge Tower", ["ap-1", "ap-2"])
    assert "London Bridge Tower" in c.get("/sites").text
