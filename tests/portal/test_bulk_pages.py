"""The portal's bulk pages for an occupier admin: the "Edit or delete multiple users" dialog (admins and
yourself left out of a delete, with the reason), deactivating users, adding users from a file, a job's page;
in the visitor's language; and what other roles and occupiers get (nothing).
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import inspect, select

from occupant.accounts.models import AccountRole
from occupant.bulk import engine
from occupant.bulk.models import BulkJob, JobState
from occupant.kit.clock import utcnow
from occupant.kit.runtime import get_session_factory
from occupant.occupiers.models import OccupierState
from occupant.users.models import OccupierUser, UserStatus
from tests.factories import make_occupier, make_user
from tests.portal.conftest import Portal, give_account, text_of

DIALOG = "bulk-dialog"


def people(p: Portal, n: int) -> list[OccupierUser]:
    return [
        make_user(
            p.db, p.occupier, first_name=f"Person{k:02d}", last_name="Test", email=f"p{k}@globex.example"
        )
        for k in range(n)
    ]


def latest(p: Portal) -> BulkJob:
    p.db.expire_all()
    found = p.db.scalars(select(BulkJob).order_by(BulkJob.id.desc()).limit(1)).first()
    assert found is not None
    return found


def run(job_id: int) -> JobState | None:
    return engine.run_job(get_session_factory(), job_id)


def existing(p: Portal, users: list[OccupierUser]) -> set[int]:
    ids = [inspect(u).identity[0] for u in users]  # type: ignore[index]
    p.db.expire_all()
    return set(p.db.scalars(select(OccupierUser.id).where(OccupierUser.id.in_(ids))))


def test_user_management_offers_the_bulk_actions(portal: Portal) -> None:
    p = portal
    page = text_of(p.get("/portal/users").text)
    for label in ("Add multiple users", "Edit or delete multiple users", "Deactivate users"):
        assert label in page
    p.occupier.state = OccupierState.DECOMMISSIONED
    p.db.flush()
    assert "Edit or delete multiple users" not in text_of(p.get("/portal/users").text)
    for path in ("/portal/users/bulk", "/portal/users/import", "/portal/users/deactivate"):
        assert p.get(path).status_code == 409, path


def test_a_portal_delete_leaves_out_admins_and_yourself_and_is_partially_done(portal: Portal) -> None:
    p = portal
    users = people(p, 2)
    other_admin = make_user(p.db, p.occupier, first_name="Olga", last_name="Admin")
    give_account(p.db, other_admin, role=AccountRole.ADMIN)
    dialog = p.hx_get("/portal/users/bulk", "dialog-slot")
    assert dialog.status_code == 200 and dialog.text.startswith("<dialog")
    assert "Olga Admin" in dialog.text and "Ada Admin" in dialog.text  # listed: they can be edited

    preview = p.post("/portal/users/bulk", {"action": "delete", "all": "1"}, htmx=DIALOG)
    text = text_of(preview.text)
    assert "Delete 2 users?" in text and "This is permanent." in text
    assert "2 users of the selection are left out" in text
    assert "Occupier admins cannot be deleted in the portal; ask your operator." in text
    job = latest(p)
    p.post(f"/portal/jobs/{job.id}/confirm", {"view": "dialog"}, htmx=DIALOG)
    assert run(job.id) == JobState.PARTIALLY_DONE
    outcome = text_of(p.hx_get(f"/portal/jobs/{job.id}?view=dialog", DIALOG).text)
    assert "Partially done" in outcome and "Retry failed" in outcome
    assert existing(p, [*users, other_admin, p.me]) == {other_admin.id, p.me.id}


def test_the_dialog_and_a_job_speak_the_visitors_language(portal: Portal) -> None:
    p = portal
    users = people(p, 2)
    p.me.language = "fr"
    p.db.flush()
    dialog = p.hx_get("/portal/users/bulk", "dialog-slot")
    text = text_of(dialog.text)
    assert "Modifier ou supprimer plusieurs utilisateurs" in text
    assert "Sélectionner tous les utilisateurs" in text
    assert "Supprimer les utilisateurs" in text
    preview = p.post(
        "/portal/users/bulk", {"action": "delete", "user_ids": [u.id for u in users]}, htmx=DIALOG
    )
    assert "Supprimer 2 utilisateurs ?" in text_of(preview.text)
    p.me.language = "de"
    p.db.flush()
    nothing = p.post("/portal/users/bulk", {"action": "delete"}, htmx=DIALOG)
    assert nothing.status_code == 422 and "Wählen Sie zuerst mindestens einen Benutzer aus." in nothing.text


def test_edit_in_the_portal(portal: Portal) -> None:
    p = portal
    users = people(p, 2)
    form = p.post("/portal/users/bulk", {"action": "edit", "user_ids": [u.id for u in users]}, htmx=DIALOG)
    assert form.status_code == 200 and "Edit 2 users" in text_of(form.text)
    nothing = p.post("/portal/users/bulk/edit", {"sel_user_ids": [u.id for u in users]}, htmx=DIALOG)
    assert nothing.status_code == 422 and "Choose at least one change to apply." in nothing.text
    preview = p.post(
        "/portal/users/bulk/edit",
        {"sel_user_ids": [u.id for u in users], "invite_portal": "on", "role": "user"},
        htmx=DIALOG,
    )
    text = text_of(preview.text)
    assert "Apply these changes to 2 users?" in text and "Send invite to join the portal" in text
    job = latest(p)
    p.post(f"/portal/jobs/{job.id}/confirm", {"view": "dialog"}, htmx=DIALOG)
    assert run(job.id) == JobState.DONE


def test_deactivate_pasted_emails_in_the_portal(portal: Portal) -> None:
    p = portal
    ada, _bob = people(p, 2)
    other = make_occupier(p.db, p.operator, sites_=[p.site], name="Initech")
    ivy = make_user(p.db, other, first_name="Ivy", email="ivy@initech.example")
    page = p.get("/portal/users/deactivate")
    assert page.status_code == 200 and "Paste email addresses" in page.text
    empty = p.post("/portal/users/deactivate", {"emails": ""})
    assert empty.status_code == 422 and "paste email addresses" in empty.text.lower()
    sent = p.post("/portal/users/deactivate", {"emails": f"{ada.email}\n{ivy.email}"})
    assert sent.status_code == 303
    job = latest(p)
    assert sent.headers["location"] == f"/portal/jobs/{job.id}"
    preview = text_of(p.get(sent.headers["location"]).text)
    assert "Deactivate 1 user?" in preview
    assert "No user of your organisation has this email address" in preview  # the other occupier's
    p.post(f"/portal/jobs/{job.id}/confirm")
    assert run(job.id) == JobState.PARTIALLY_DONE
    p.db.expire_all()
    assert p.db.get(OccupierUser, ada.id).status == UserStatus.DEACTIVATED  # type: ignore[union-attr]
    assert p.db.get(OccupierUser, ivy.id).status == UserStatus.ACTIVE  # type: ignore[union-attr]
    results = p.get(f"/portal/jobs/{job.id}/results.csv")
    assert results.status_code == 200 and "ivy@initech.example" in results.text


def test_the_upload_pages_say_what_is_wrong(portal: Portal) -> None:
    p = portal
    page = p.get("/portal/users/import")
    assert page.status_code == 200 and "Add multiple users" in page.text
    none = p.post("/portal/users/import", {"on_existing": "update"})
    assert none.status_code == 422 and "Choose a CSV file to upload." in none.text
    picture = p.post("/portal/users/import", files={"file": ("me.jpg", b"\xff\xd8\xff", "image/jpeg")})
    assert picture.status_code == 422 and "This is not a CSV file." in picture.text
    p.me.language = "nl"
    p.db.flush()
    header = p.post("/portal/users/import", files={"file": ("x.csv", b"naam,mail\nA,b\n", "text/csv")})
    assert header.status_code == 422
    assert "De kolommen zijn niet de verwachte" in header.text  # the reader's detail follows, in English


def test_add_users_from_a_file_in_the_portal(portal: Portal) -> None:
    p = portal
    data = b"first_name,last_name,email\nZoe,Zed,zoe@globex.example\n,Nameless,x@globex.example\n"
    sent = p.post("/portal/users/import", files={"file": ("team.csv", data, "text/csv")})
    assert sent.status_code == 303, text_of(sent.text)
    job = latest(p)
    preview = text_of(p.get(sent.headers["location"]).text)
    assert "Add 1 user?" in preview and "team.csv" in preview
    p.post(f"/portal/jobs/{job.id}/confirm")
    assert run(job.id) == JobState.PARTIALLY_DONE


def test_other_occupiers_jobs_and_occupier_users_get_nothing(portal: Portal) -> None:
    p = portal
    (user,) = people(p, 1)
    p.post("/portal/users/bulk", {"action": "delete", "user_ids": [user.id]}, htmx=DIALOG)
    mine = latest(p)
    # An admin of another occupier: the job is not found.
    other = make_occupier(p.db, p.operator, sites_=[p.site], name="Initech")
    stranger = make_user(p.db, other, first_name="Sam", email="sam@initech.example")
    give_account(p.db, stranger, role=AccountRole.ADMIN)
    p.sign_in_as(stranger)
    assert p.get(f"/portal/jobs/{mine.id}").status_code == 404
    assert p.get(f"/portal/jobs/{mine.id}/results.csv").status_code == 404
    assert p.post(f"/portal/jobs/{mine.id}/confirm").status_code == 404
    assert "Person00" not in p.hx_get("/portal/users/bulk", "dialog-slot").text
    # An occupier user (not an admin): no access at all.
    plain = make_user(p.db, p.occupier, first_name="Uma", email="uma@globex.example")
    give_account(p.db, plain, role=AccountRole.USER)
    p.sign_in_as(plain)
    for path in (
        "/portal/users/bulk",
        "/portal/users/import",
        "/portal/users/deactivate",
        f"/portal/jobs/{mine.id}",
    ):
        assert p.get(path).status_code == 403, path
    assert p.post("/portal/users/bulk", {"action": "delete", "user_ids": [user.id]}).status_code == 403
    assert latest(p).state == JobState.PREVIEW
    assert existing(p, [user]) == {user.id}


def test_a_busy_user_is_not_offered_in_the_portal(portal: Portal) -> None:
    p = portal
    busy, free = people(p, 2)
    busy.busy_owner, busy.busy_until = "wifi:1", utcnow() + timedelta(minutes=5)
    p.db.flush()
    html = p.hx_get("/portal/users/bulk", "dialog-slot").text
    assert free.full_name in html and busy.full_name not in html
    assert re.search(r"1 user with an action in progress is not listed", text_of(html))
