"""The console's bulk pages: the "Edit or delete multiple users" dialog (seed 000), deactivating users from
pasted emails or a file (seed 004), adding users from a file (seed 002), the Jobs page and a job's page.

Jobs run as the worker runs them (``engine.run_job``) between requests; every step is also checked without
htmx (the full-page fallbacks).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

from sqlalchemy import inspect, select

from occupant.accounts.models import AccountRole
from occupant.authz.actor import Role
from occupant.bulk import engine
from occupant.bulk.models import BulkItem, BulkJob, ItemStatus, JobState
from occupant.kit.clock import utcnow
from occupant.kit.runtime import get_session_factory
from occupant.occupiers.models import OccupierState
from occupant.users.models import OccupierUser, UserStatus
from occupant.wifi.models import WifiAccount
from tests.factories import make_account, make_occupier, make_operator, make_site, make_staff, make_user
from tests.web.conftest import Console, text_of
from tests.wifi.support import give_wifi

DIALOG = "bulk-dialog"


def base(c: Console) -> str:
    return f"/occupiers/{c.occupier.id}/users"


def people(c: Console, n: int = 4) -> list[OccupierUser]:
    return [
        make_user(
            c.db, c.occupier, first_name=f"Person{k:03d}", last_name="Test", email=f"p{k}@globex.example"
        )
        for k in range(n)
    ]


def hold(user: OccupierUser, owner: str = "telephony:1") -> None:
    user.busy_owner, user.busy_until = owner, utcnow() + timedelta(hours=1)


def job(c: Console, job_id: int | None = None) -> BulkJob:
    c.db.expire_all()
    stmt = (
        select(BulkJob).order_by(BulkJob.id.desc()).limit(1)
        if job_id is None
        else select(BulkJob).where(BulkJob.id == job_id)
    )
    found = c.db.scalars(stmt).first()
    assert found is not None
    return found


def run(job_id: int) -> JobState | None:
    return engine.run_job(get_session_factory(), job_id)


def remaining(c: Console, users: list[OccupierUser]) -> set[int]:
    ids = [inspect(u).identity[0] for u in users]  # type: ignore[index]  # no reload: some may be deleted
    c.db.expire_all()
    return set(c.db.scalars(select(OccupierUser.id).where(OccupierUser.id.in_(ids))))


# --- the dialog: who is listed, the filters, the selection -------------------------------------------------


def test_the_users_tab_offers_the_bulk_actions_only_while_the_occupier_is_open(console: Console) -> None:
    c = console
    tab = text_of(c.get(base(c)).text)
    assert "Edit or delete multiple users" in tab
    assert "Add multiple users" in tab and "Deactivate users" in tab
    c.occupier.state = OccupierState.DECOMMISSION_PENDING
    c.db.flush()
    tab = text_of(c.get(base(c)).text)
    assert "Edit or delete multiple users" not in tab and "Add multiple users" not in tab
    for path in ("/bulk", "/import", "/deactivate"):
        refused = c.get(base(c) + path)
        assert refused.status_code == 409, path
        assert "decommissioned" in refused.text
    # A dialog left open meanwhile says so inside the dialog (the page's message area is behind it).
    late = c.post(base(c) + "/bulk", {"action": "delete", "all": "1"}, htmx=DIALOG)
    assert late.status_code == 409 and 'id="bulk-title"' in late.text and "HX-Retarget" not in late.headers


def test_the_dialog_lists_free_users_under_filters_with_the_values_the_users_have(console: Console) -> None:
    c = console
    ada, bob, _cy, dee = people(c)
    give_wifi(c.db, ada, limit=3)
    give_wifi(c.db, bob, limit=2)
    make_account(c.db, ada, role=AccountRole.USER, portal=True)
    hold(dee)
    other = make_occupier(c.db, c.operator, sites_=[c.site], name="Initech")
    make_user(c.db, other, first_name="Ivy", last_name="Other")
    c.db.flush()

    dialog = c.hx_get(base(c) + "/bulk", "bulk-slot")
    assert dialog.status_code == 200
    html = dialog.text
    assert html.startswith("<dialog") and 'aria-labelledby="bulk-title"' in html
    text = text_of(html)
    for name in ("Person000 Test", "Person001 Test", "Person002 Test"):
        assert name in text
    assert "Person003" not in text  # busy: not offered (seed 000)
    assert "Ivy Other" not in text
    assert "1 user with an action in progress is not listed" in text
    # Each filter offers "All" and the values the occupier's users have.
    wifi = re.search(r'id="bulk-f-wifi".*?</select>', html, re.S)
    assert wifi is not None
    assert re.findall(r"<option[^>]*>([^<]+)</option>", wifi.group(0)) == [
        "All",
        "No Wi-Fi account",
        "Active",
    ]
    limits = re.search(r'id="bulk-f-wifi_device_limit".*?</select>', html, re.S)
    assert limits is not None
    assert re.findall(r"<option[^>]*>([^<]+)</option>", limits.group(0)) == ["All", "2", "3"]
    for label in ("Select all users", "Filter by Wi-Fi account", "Filter by Wi-Fi homesite"):
        assert label in html
    assert f'for="bulk-u-{ada.id}"' in html  # each row's check box is labelled by the name

    # A filter narrows the list (the table alone for htmx).
    listed = c.hx_get(base(c) + "/bulk?wifi=ACTIVE&wifi_device_limit=3", "bulk-list")
    assert listed.status_code == 200
    assert "Person000" in listed.text and "Person001" not in listed.text and "Person002" not in listed.text
    assert "1 user matches these filters" in text_of(listed.text)
    assert '<input type="hidden" name="wifi" value="ACTIVE">' in listed.text
    # Without JavaScript the same URL is a page showing the dialog's content.
    page = c.get(base(c) + "/bulk?portal=INVITED")
    assert page.status_code == 200 and "<html" in page.text
    assert "Person000" in page.text and "Person001" not in page.text
    # A value no filter has is said clearly.
    bad = c.get(base(c) + "/bulk?wifi=SOMETIMES")
    assert bad.status_code == 422 and "Something went wrong" not in bad.text


def test_the_list_is_paged_and_select_all_means_every_user_matching_the_filters(console: Console) -> None:
    c = console
    users = people(c, 130)
    for u in users[120:]:
        give_wifi(c.db, u)
    first = c.hx_get(base(c) + "/bulk?wifi=none", "bulk-slot")
    assert first.text.count('name="user_ids"') == 100
    assert "120 users match these filters, showing the first 100" in text_of(first.text)
    assert 'data-total="120"' in first.text
    assert "All 120 users matching these filters are selected." in first.text
    more = re.search(r'hx-get="([^"]+cursor=[^"]+)" hx-target="#bulk-more"', first.text)
    assert more is not None
    rest = c.hx_get(more.group(1).replace("&amp;", "&"), "bulk-more")
    assert rest.text.count('name="user_ids"') == 20 and "<dialog" not in rest.text

    # "all" submits the filter, not the ids: every matching user is in the job, and only those.
    preview = c.post(base(c) + "/bulk", {"action": "delete", "all": "1", "wifi": "none"}, htmx=DIALOG)
    assert preview.status_code == 200
    assert "Delete 120 users?" in text_of(preview.text)
    j = job(c)
    assert j.state == JobState.PREVIEW and j.total == 120
    assert j.selection == {
        "filter": {"occupier_id": c.occupier.id, "wifi": "none", "busy": False},
        "all": True,
    }
    job_users = set(c.db.scalars(select(BulkItem.user_id).where(BulkItem.job_id == j.id)))
    assert job_users == {u.id for u in users[:120]}


def test_nothing_selected_is_said_in_the_dialog(console: Console) -> None:
    c = console
    people(c, 2)
    answer = c.post(base(c) + "/bulk", {"action": "delete"}, htmx=DIALOG)
    assert answer.status_code == 422
    assert "Select at least one user first." in answer.text
    assert "Edit or delete multiple users" in answer.text  # still the list, in the dialog
    nobody = c.post(base(c) + "/bulk", {"action": "delete", "all": "1", "wifi": "ACTIVE"}, htmx=DIALOG)
    assert nobody.status_code == 422 and "No user matches these filters." in nobody.text
    edit = c.post(base(c) + "/bulk", {"action": "edit"}, htmx=DIALOG)
    assert edit.status_code == 422 and "Select at least one user first." in edit.text
    unknown = c.post(base(c) + "/bulk", {"action": "launch", "user_ids": "1"}, htmx=DIALOG)
    assert unknown.status_code == 422 and "Choose one of the actions offered." in unknown.text
    assert c.db.scalars(select(BulkJob)).first() is None


def test_users_of_another_occupier_cannot_be_slipped_into_the_selection(console: Console) -> None:
    c = console
    (mine,) = people(c, 1)
    other = make_occupier(c.db, c.operator, sites_=[c.site], name="Initech")
    theirs = make_user(c.db, other, first_name="Ivy")
    c.post(base(c) + "/bulk", {"action": "delete", "user_ids": [mine.id, theirs.id]}, htmx=DIALOG)
    j = job(c)
    assert j.total == 1
    assert list(c.db.scalars(select(BulkItem.user_id).where(BulkItem.job_id == j.id))) == [mine.id]


# --- delete: confirmation, progress, outcomes, retry ------------------------------------------------------


def test_delete_from_confirmation_through_progress_to_done(console: Console) -> None:
    c = console
    users = people(c, 3)
    preview = c.post(
        base(c) + "/bulk", {"action": "delete", "user_ids": [u.id for u in users[:2]]}, htmx=DIALOG
    )
    text = text_of(preview.text)
    assert "Delete 2 users?" in text and "This is permanent." in text
    j = job(c)
    assert f'hx-post="/jobs/{j.id}/confirm?view=dialog"' in preview.text
    assert remaining(c, users) == {u.id for u in users}  # a preview writes nothing

    progress = c.post(f"/jobs/{j.id}/confirm", {}, htmx=DIALOG, params={"view": "dialog"})
    assert progress.status_code == 200
    assert "Deleting users…" in progress.text and "<progress" in progress.text
    assert f'hx-get="/jobs/{j.id}?view=dialog&amp;seen=QUEUED%3A0" hx-trigger="every 1s"' in progress.text
    assert 'role="status" aria-live="polite"' in progress.text
    assert job(c, j.id).state == JobState.QUEUED

    assert run(j.id) == JobState.DONE
    done = c.hx_get(f"/jobs/{j.id}?view=dialog&seen=QUEUED:0", "job-view")
    text = text_of(done.text)
    assert "Done" in text and "Deleted: 2 users." in text
    assert "hx-trigger" not in done.text  # polling stops
    assert 'id="job-announce" hx-swap-oob="innerHTML"' in done.text and "Done." in done.text
    assert f'href="/occupiers/{c.occupier.id}/users"' in done.text  # OK: back to the (changed) list
    assert remaining(c, users) == {users[2].id}

    results = c.get(f"/jobs/{j.id}/results.csv")
    assert results.status_code == 200 and results.headers["content-type"] == "text/csv; charset=utf-8"
    assert f'filename="job-{j.id}-delete-results.csv"' in results.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(results.text.lstrip("\ufeff"))))
    assert rows[0] == ["row", "identifier", "status", "outcome", "code", "message"]
    assert [r[2:4] for r in rows[1:]] == [["SUCCEEDED", "deleted"], ["SUCCEEDED", "deleted"]]
    assert all(r[1] == "" for r in rows[1:])  # no personal data of deleted users


def test_a_partially_done_delete_lists_the_failed_users_and_retries_them(console: Console) -> None:
    c = console
    users = people(c, 3)
    c.post(base(c) + "/bulk", {"action": "delete", "user_ids": [u.id for u in users]}, htmx=DIALOG)
    j = job(c)
    hold(users[1], "wifi:7")  # busy meanwhile: excluded when the job starts
    c.db.flush()
    c.post(f"/jobs/{j.id}/confirm", {"view": "dialog"}, htmx=DIALOG)
    assert run(j.id) == JobState.PARTIALLY_DONE
    outcome = c.hx_get(f"/jobs/{j.id}?view=dialog", DIALOG)
    text = text_of(outcome.text)
    assert "Partially done" in text and "Deleted: 2 of 3 users. Not deleted: 1, listed below." in text
    assert "Person001 Test" in text and "An action was in progress for this user" in text
    assert "Retry failed" in text and "Download results" in text

    users[1].busy_owner = users[1].busy_until = None
    c.db.flush()
    retry = c.post(f"/jobs/{j.id}/retry", {"view": "dialog"}, htmx=DIALOG)
    assert retry.status_code == 200 and "Delete 1 user?" in text_of(retry.text)
    again = job(c)
    assert again.id != j.id and again.retry_of_id == j.id and again.requested_by_name == "Staff Member"
    c.post(f"/jobs/{again.id}/confirm", {"view": "dialog"}, htmx=DIALOG)
    assert run(again.id) == JobState.DONE
    assert remaining(c, users) == set()


def test_none_deleted_is_the_error_outcome_with_try_again(console: Console) -> None:
    c = console
    users = people(c, 2)
    c.post(base(c) + "/bulk", {"action": "delete", "user_ids": [u.id for u in users]}, htmx=DIALOG)
    j = job(c)
    for u in users:
        hold(u)
    c.db.flush()
    c.post(f"/jobs/{j.id}/confirm", {"view": "dialog"}, htmx=DIALOG)
    assert run(j.id) == JobState.FAILED
    text = text_of(c.hx_get(f"/jobs/{j.id}?view=dialog", DIALOG).text)
    assert "Error" in text and "Not deleted: none of the 2 users." in text and "Try again" in text


def test_a_preview_with_users_left_out_says_who_and_why(console: Console) -> None:
    c = console
    users = people(c, 2)
    preview = c.post(base(c) + "/bulk", {"action": "delete", "user_ids": [u.id for u in users]}, htmx=DIALOG)
    j = job(c)
    hold(users[0])
    users[0].busy_until = utcnow() + timedelta(hours=1)
    c.db.flush()
    # Held since the list was shown: the confirmation of a new selection says so.
    preview = c.post(
        base(c) + "/bulk", {"action": "deactivate", "user_ids": [u.id for u in users]}, htmx=DIALOG
    )
    text = text_of(preview.text)
    assert "Deactivate 1 user?" in text and "1 user of the selection is left out" in text
    assert "Person000 Test" in text and "Left out" in text
    assert job(c).id != j.id


def test_cancel_discards_a_preview_and_stops_a_running_job(console: Console) -> None:
    c = console
    users = people(c, 3)
    c.post(base(c) + "/bulk", {"action": "delete", "user_ids": [u.id for u in users]}, htmx=DIALOG)
    j = job(c)
    closed = c.post(f"/jobs/{j.id}/cancel", {"view": "dialog"}, htmx=DIALOG)
    assert closed.status_code == 200 and closed.headers["HX-Trigger"] == "close-dialog"
    assert job(c, j.id).state == JobState.CANCELLED
    # A stale job (cancelled meanwhile, say) is said in the dialog, not as a server error.
    stale = c.post(f"/jobs/{j.id}/confirm", {"view": "dialog"}, htmx=DIALOG)
    assert stale.status_code == 409 and "Only a previewed job can be started." in stale.text
    assert "<dialog" not in stale.text and 'id="bulk-title"' in stale.text

    c.post(base(c) + "/bulk", {"action": "delete", "user_ids": [u.id for u in users]}, htmx=DIALOG)
    j = job(c)
    c.post(f"/jobs/{j.id}/confirm", {"view": "dialog"}, htmx=DIALOG)
    stopped = c.post(f"/jobs/{j.id}/cancel", {"view": "dialog"}, htmx=DIALOG)
    assert "Stopped" in text_of(stopped.text) and "not started: 3" in text_of(stopped.text)
    assert run(j.id) == JobState.CANCELLED
    assert remaining(c, users) == {u.id for u in users}
    # Without htmx a cancelled preview goes back where the admin came from.
    c.post(base(c) + "/bulk", {"action": "delete", "user_ids": [users[0].id]}, htmx=DIALOG)
    plain = c.post(f"/jobs/{job(c).id}/cancel")
    assert plain.status_code == 303 and plain.headers["location"] == base(c)


def test_without_javascript_every_step_is_a_page(console: Console) -> None:
    c = console
    users = people(c, 2)
    started = c.post(base(c) + "/bulk", {"action": "delete", "user_ids": [users[0].id]})
    assert started.status_code == 303
    j = job(c)
    assert started.headers["location"] == f"/jobs/{j.id}"
    page = c.get(f"/jobs/{j.id}")
    assert page.status_code == 200 and "<html" in page.text and "Delete 1 user?" in text_of(page.text)
    confirmed = c.post(f"/jobs/{j.id}/confirm")
    assert confirmed.status_code == 303 and confirmed.headers["location"] == f"/jobs/{j.id}"
    running = c.get(f"/jobs/{j.id}")
    assert '<meta http-equiv="refresh" content="3">' in running.text  # inside <noscript>
    run(j.id)
    assert "Deleted: 1 user." in text_of(c.get(f"/jobs/{j.id}").text)
    # A stale action without JavaScript is an error page, not a server error.
    again = c.post(f"/jobs/{j.id}/confirm")
    assert again.status_code == 409 and "Only a previewed job can be started." in again.text


# --- edit and the other actions ---------------------------------------------------------------------------


def test_edit_choose_the_changes_then_confirm_and_apply_them(console: Console) -> None:
    c = console
    users = people(c, 2)
    form = c.post(base(c) + "/bulk", {"action": "edit", "all": "1"}, htmx=DIALOG)
    assert form.status_code == 200
    text = text_of(form.text)
    assert "Edit all 2 users matching the filters" in text
    assert '<input type="hidden" name="sel_all" value="1">' in form.text
    assert "Send invite to join the portal" in text and "Create a Wi-Fi account" in text

    nothing = c.post(base(c) + "/bulk/edit", {"sel_all": "1"}, htmx=DIALOG)
    assert nothing.status_code == 422 and "Choose at least one change to apply." in nothing.text
    no_site = c.post(base(c) + "/bulk/edit", {"sel_all": "1", "wifi": "create"}, htmx=DIALOG)
    assert no_site.status_code == 422
    assert "New Wi-Fi accounts need a homesite: choose one." in no_site.text
    assert "Value error" not in no_site.text
    assert 'value="create" checked' in no_site.text  # what was chosen is kept
    bad_limit = c.post(base(c) + "/bulk/edit", {"sel_all": "1", "wifi_device_limit": "lots"}, htmx=DIALOG)
    assert bad_limit.status_code == 422 and "Enter a whole number." in bad_limit.text

    preview = c.post(
        base(c) + "/bulk/edit",
        {"sel_all": "1", "wifi": "create", "wifi_homesite_id": str(c.site.id), "wifi_device_limit": "2"},
        htmx=DIALOG,
    )
    text = text_of(preview.text)
    assert "Apply these changes to 2 users?" in text
    assert (
        "Create a Wi-Fi account for users without one, homesite LON01 · London Bridge, 2 devices at once"
        in text
    )
    j = job(c)
    assert j.kind == "edit" and j.params == {
        "wifi": "create",
        "wifi_homesite_id": c.site.id,
        "wifi_device_limit": 2,
    }
    c.post(f"/jobs/{j.id}/confirm", {"view": "dialog"}, htmx=DIALOG)
    assert run(j.id) == JobState.DONE
    c.db.expire_all()
    made = c.db.scalars(select(WifiAccount).where(WifiAccount.user_id.in_([u.id for u in users]))).all()
    assert len(made) == 2 and {a.device_limit for a in made} == {2}


def test_the_other_actions_start_their_kind_and_account_ones_need_apps(console: Console) -> None:
    c = console
    users = people(c, 2)
    dialog = text_of(c.hx_get(base(c) + "/bulk", "bulk-slot").text)
    for label in ("Deactivate users…", "Reactivate users…", "Send welcome email…", "Force password reset…"):
        assert label in dialog
    c.post(base(c) + "/bulk", {"action": "deactivate", "user_ids": [u.id for u in users]}, htmx=DIALOG)
    j = job(c)
    assert j.kind == "deactivate"
    c.post(f"/jobs/{j.id}/confirm", {"view": "dialog"}, htmx=DIALOG)
    assert run(j.id) == JobState.DONE
    c.db.expire_all()
    assert {c.db.get(OccupierUser, u.id).status for u in users} == {UserStatus.DEACTIVATED}  # type: ignore[union-attr]

    c.occupier.portal_offered = c.occupier.mobile_app_offered = False
    c.db.flush()
    dialog = text_of(c.hx_get(base(c) + "/bulk", "bulk-slot").text)
    assert "Reactivate users…" in dialog and "Send welcome email…" not in dialog
    refused = c.post(base(c) + "/bulk", {"action": "send_welcome", "user_ids": [users[0].id]}, htmx=DIALOG)
    assert refused.status_code == 422


# --- deactivate users from pasted emails or a file ----------------------------------------------------------


def test_deactivate_pasted_emails_previews_every_line(console: Console) -> None:
    c = console
    ada, bob = people(c, 2)
    other = make_occupier(c.db, c.operator, sites_=[c.site], name="Initech")
    ivy = make_user(c.db, other, first_name="Ivy", email="ivy@initech.example")
    page = c.get(base(c) + "/deactivate")
    assert page.status_code == 200 and "Paste email addresses" in page.text
    emails = f"{ada.email}\nnobody@globex.example\n{ivy.email}\n{ada.email.upper()}"
    sent = c.post(base(c) + "/deactivate", {"emails": emails, "remove_from_groups": "on"})
    assert sent.status_code == 303
    j = job(c)
    assert j.params == {"remove_from_groups": True}
    preview = text_of(c.get(sent.headers["location"]).text)
    assert "Deactivate 1 user?" in preview
    assert "4 pasted emails checked" in preview
    assert "No user has the email nobody@globex.example." in preview
    assert "No user of Globex has the email ivy@initech.example." in preview
    assert "Same email as line 1." in preview
    all_rows = text_of(c.get(f"/jobs/{j.id}?show=all").text)
    assert "Ready" in all_rows and ada.email in all_rows
    c.post(f"/jobs/{j.id}/confirm")
    assert run(j.id) == JobState.PARTIALLY_DONE
    c.db.expire_all()
    assert c.db.get(OccupierUser, ada.id).status == UserStatus.DEACTIVATED  # type: ignore[union-attr]
    assert c.db.get(OccupierUser, ivy.id).status == UserStatus.ACTIVE  # type: ignore[union-attr]
    assert c.db.get(OccupierUser, bob.id).status == UserStatus.ACTIVE  # type: ignore[union-attr]


def test_deactivate_bad_input_is_said_on_the_page(console: Console) -> None:
    c = console
    empty = c.post(base(c) + "/deactivate", {"emails": "  "})
    assert empty.status_code == 422 and "paste email addresses" in empty.text.lower()
    both = c.post(
        base(c) + "/deactivate",
        {"emails": "a@example.com"},
        files={"file": ("users.csv", b"email\na@example.com\n", "text/csv")},
    )
    assert both.status_code == 422 and "not both" in both.text
    assert "a@example.com" in both.text  # what was typed is kept
    picture = c.post(base(c) + "/deactivate", files={"file": ("photo.png", b"\x89PNG\r\n", "image/png")})
    assert picture.status_code == 422 and "photo.png is not a CSV file" in picture.text


def test_deactivate_from_a_csv_file(console: Console) -> None:
    c = console
    (ada,) = people(c, 1)
    template = c.get("/jobs/templates/deactivate.csv")
    assert template.status_code == 200 and template.text.lstrip("\ufeff").startswith("email")
    data = f"email\n{ada.email}\nnobody@globex.example\n{ada.email}\n".encode()
    sent = c.post(base(c) + "/deactivate", files={"file": ("leavers.csv", data, "text/csv")})
    assert sent.status_code == 303, text_of(sent.text)
    preview = text_of(c.get(sent.headers["location"]).text)
    assert "leavers.csv" in preview and "Deactivate 1 user?" in preview
    assert "2 rows have problems and will be left out" in preview
    bad = c.post(base(c) + "/deactivate", files={"file": ("leavers.csv", b"nothing,here\n1,2\n", "text/csv")})
    assert bad.status_code == 422 and "The file cannot be read" in bad.text


# --- add multiple users from a file ------------------------------------------------------------------------


def test_the_add_multiple_users_page_and_its_bad_input(console: Console) -> None:
    c = console
    page = c.get(base(c) + "/import")
    assert page.status_code == 200
    assert "Add multiple users" in page.text and "not available yet" not in page.text
    assert 'href="/jobs/templates/create.csv"' in page.text
    for value in ("fail", "skip", "update"):
        assert f'name="on_existing" value="{value}"' in page.text
    none = c.post(base(c) + "/import", {"on_existing": "skip"})
    assert none.status_code == 422 and "Choose a CSV file to upload." in none.text
    assert 'value="skip" checked' in none.text
    sheet = c.post(base(c) + "/import", files={"file": ("users.xlsx", b"PK\x03\x04rest", "application/zip")})
    assert sheet.status_code == 422 and "users.xlsx is not a CSV file" in sheet.text
    header = c.post(
        base(c) + "/import", files={"file": ("users.csv", b"name,mail\nAda,a@x.example\n", "text/csv")}
    )
    assert header.status_code == 422 and "The file cannot be read" in header.text


def test_add_users_from_a_file_with_bad_rows(console: Console) -> None:
    c = console
    make_user(c.db, c.occupier, first_name="Old", email="old@globex.example")
    template = c.get("/jobs/templates/create.csv")
    assert template.status_code == 200 and "first_name" in template.text
    rows = [
        "first_name,last_name,email",
        "Ada,Abbott,ada@globex.example",
        ",Baker,brian@globex.example",
        "Chloe,Carter,not-an-email",
        "Dup,Licate,ada@globex.example",
        "Old,User,old@globex.example",
    ]
    sent = c.post(
        base(c) + "/import",
        {"on_existing": "fail"},
        files={"file": ("people.csv", ("\r\n".join(rows) + "\r\n").encode(), "text/csv")},
    )
    assert sent.status_code == 303, text_of(sent.text)
    j = job(c)
    preview = text_of(c.get(sent.headers["location"]).text)
    assert "people.csv" in preview and "Add 1 user?" in preview
    assert "4 rows have problems and will be left out" in preview
    for line in ("3", "4", "5", "6"):
        assert f" {line} " in preview
    c.post(f"/jobs/{j.id}/confirm")
    assert run(j.id) == JobState.PARTIALLY_DONE
    done = text_of(c.get(f"/jobs/{j.id}").text)
    assert "Partially done" in done and "Download results" in done
    results = c.get(f"/jobs/{j.id}/results.csv")
    assert "ada@globex.example" in results.text


# --- the Jobs page, scope -------------------------------------------------------------------------------


def test_the_jobs_page_lists_recent_jobs_with_their_state(console: Console) -> None:
    c = console
    users = people(c, 2)
    c.post(base(c) + "/bulk", {"action": "delete", "user_ids": [users[0].id]}, htmx=DIALOG)
    first = job(c)
    c.post(f"/jobs/{first.id}/confirm", {"view": "dialog"}, htmx=DIALOG)
    run(first.id)
    c.post(base(c) + "/bulk", {"action": "deactivate", "user_ids": [users[1].id]}, htmx=DIALOG)
    page = c.get("/jobs")
    assert page.status_code == 200
    text = text_of(page.text)
    assert text.index("Deactivate users") < text.index("Delete users")  # newest first
    assert "Awaiting confirmation" in text and "Done" in text and "Globex" in text and "Staff Member" in text
    assert f'href="/jobs/{first.id}"' in page.text
    assert 'href="/jobs" aria-current="page"' in page.text
    assert "Globex" in text_of(c.get(f"/jobs?occupier_id={c.occupier.id}").text)


def test_jobs_are_scoped_like_their_occupiers(console: Console) -> None:
    c = console
    users = people(c, 1)
    c.post(base(c) + "/bulk", {"action": "delete", "user_ids": [users[0].id]}, htmx=DIALOG)
    mine = job(c)
    # A site manager of another site: the occupier, its jobs and their results are not found.
    paris = make_site(c.db, c.operator, code="PAR01", country="FR")
    c.sign_in_as(make_staff(c.db, c.operator, role=Role.SITE_MANAGER, sites_=[paris]))
    assert c.get(f"/jobs/{mine.id}").status_code == 404
    assert c.get(f"/jobs/{mine.id}/results.csv").status_code == 404
    assert c.post(f"/jobs/{mine.id}/confirm").status_code == 404
    assert "Delete users" not in text_of(c.get("/jobs").text)
    assert c.get(base(c) + "/bulk").status_code == 404
    in_dialog = c.hx_get(f"/jobs/{mine.id}?view=dialog", "job-view")
    assert in_dialog.status_code == 404 and 'id="job-view"' in in_dialog.text
    # A site manager of the occupier's site sees it.
    c.sign_in_as(make_staff(c.db, c.operator, role=Role.SITE_MANAGER, sites_=[c.site]))
    assert c.get(f"/jobs/{mine.id}").status_code == 200
    # Another operator's admin: not found.
    elsewhere = make_operator(c.db, name="Other Workspace")
    c.sign_in_as(make_staff(c.db, elsewhere, role=Role.OPERATOR_ADMIN))
    assert c.get(f"/jobs/{mine.id}").status_code == 404
    assert c.get("/jobs/999999").status_code == 404
    assert job(c, mine.id).state == JobState.PREVIEW
    items = c.db.scalars(select(BulkItem).where(BulkItem.job_id == mine.id)).all()
    assert [i.status for i in items] == [ItemStatus.PENDING]


def test_signed_out_visitors_are_sent_to_sign_in(console: Console) -> None:
    c = console
    c.client.cookies.clear()
    for path in ("/jobs", base(c) + "/bulk", "/jobs/1"):
        answer = c.client.get(path, follow_redirects=False)
        assert answer.status_code in (302, 303) and "/sign-in" in answer.headers["location"], path
