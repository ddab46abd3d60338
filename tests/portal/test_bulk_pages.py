"""The portal's bulk pages for an occupier admin: the "Edit or delete multiple users" dialog (admins and
yourself left out of a delete, with the reason), deactivating users, adding users from a file, a job's page;
in the visitor's language; the Jobs page (the organisation's jobs only); and what other roles and occupiers
get (nothing).
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select

from occupant.accounts import service as accounts
from occupant.accounts.models import AccountRole
from occupant.authz.actor import Actor
from occupant.bulk import engine, sources
from occupant.bulk.models import BulkJob, JobState
from occupant.groups import service as groups
from occupant.kit.clock import utcnow
from occupant.kit.runtime import get_session_factory
from occupant.occupiers.models import Occupier, OccupierState
from occupant.portal import bulk as portal_bulk
from occupant.users.models import OccupierUser, UserStatus
from tests.factories import admin_actor, make_occupier, make_user
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


def my_actor(p: Portal) -> Actor:
    account = accounts.account_of(p.db, p.me)
    assert account is not None
    return accounts.actor_for_account(account, p.me)


def job_for(
    p: Portal, occupier: Occupier, user_ids: list[int], *, kind: str = "delete", actor: Actor | None = None
) -> BulkJob:
    """A previewed job on the users ``user_ids`` of ``occupier``, started by ``actor`` (operator staff by
    default)."""
    return engine.submit(
        p.db,
        kind=kind,
        items=sources.items_from_ids(user_ids),
        actor=actor or admin_actor(p.operator),
        occupier=occupier,
        requested_by_name="Stella Staff",
    )


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


# --- the Jobs page ---------------------------------------------------------------------------------------


def test_the_jobs_page_lists_the_organisations_jobs_newest_first_and_no_one_elses(portal: Portal) -> None:
    p = portal
    ada, bob = people(p, 2)
    other = make_occupier(p.db, p.operator, sites_=[p.site], name="Initech")
    ivy = make_user(p.db, other, first_name="Ivy", email="ivy@initech.example")
    bob_name = bob.full_name
    by_staff = job_for(p, p.occupier, [ada.id], kind="send_welcome")
    theirs = job_for(p, other, [ivy.id])
    mine = job_for(p, p.occupier, [bob.id], kind="deactivate", actor=my_actor(p))
    p.post(f"/portal/jobs/{mine.id}/confirm")
    assert run(mine.id) == JobState.DONE

    page = p.get("/portal/jobs")
    assert page.status_code == 200
    html = page.text
    body = re.search(r'<tbody id="job-rows">(.*?)</tbody>', html, re.S)
    assert body is not None
    rows = [text_of(row) for row in re.findall(r"<tr>.*?</tr>", body.group(1), re.S)]
    assert len(rows) == 2  # the organisation's two jobs, newest first
    assert rows[0].startswith("Deactivate users") and "You" in rows[0] and "Done" in rows[0]
    assert rows[1].startswith("Send welcome email") and "Your operator" in rows[1]
    assert "Awaiting confirmation" in rows[1]
    assert "Stella Staff" not in html  # the operator's staff are not named in the portal
    assert f'href="/portal/jobs/{mine.id}"' in html and f'href="/portal/jobs/{by_staff.id}"' in html
    assert f'href="/portal/jobs/{mine.id}/results.csv"' in html  # finished: its results
    assert f"/portal/jobs/{by_staff.id}/results.csv" not in html  # a preview has none yet
    assert f"/portal/jobs/{theirs.id}" not in html and "Initech" not in html
    results = p.get(f"/portal/jobs/{mine.id}/results.csv")
    assert results.status_code == 200 and bob_name in results.text
    # Another occupier's job is not found, page or results, even with its id.
    assert p.get(f"/portal/jobs/{theirs.id}").status_code == 404
    assert p.get(f"/portal/jobs/{theirs.id}/results.csv").status_code == 404


def test_the_jobs_page_shows_older_jobs_a_page_at_a_time(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = portal
    monkeypatch.setattr(portal_bulk, "JOBS_PAGE", 2)
    ada_id = people(p, 1)[0].id
    jobs = [job_for(p, p.occupier, [ada_id], kind="send_welcome") for _ in range(3)]
    first = p.get("/portal/jobs").text
    assert f'href="/portal/jobs/{jobs[2].id}"' in first and f'href="/portal/jobs/{jobs[0].id}"' not in first
    more = re.search(r'hx-get="(/portal/jobs\?cursor=[^"]+)"', first)
    assert more is not None and "Show older jobs" in first
    older = p.hx_get(more.group(1).replace("&amp;", "&"), "jobs-more")
    assert older.status_code == 200 and not older.text.lstrip().startswith("<!doctype")
    assert f'href="/portal/jobs/{jobs[0].id}"' in older.text and "Show older jobs" not in older.text


def test_the_jobs_page_and_a_jobs_outcome_speak_the_visitors_language(portal: Portal) -> None:
    p = portal
    ada, bob = people(p, 2)
    group = groups.create_group(
        p.db, actor=admin_actor(p.operator), name="Floor 3", occupier_id=p.occupier.id
    )
    groups.add_memberships(p.db, bob, [group])
    bob.status = UserStatus.DEACTIVATED  # already deactivated: only their groups go
    p.me.language = "fr"
    p.db.flush()
    sent = p.post(
        "/portal/users/deactivate",
        {"emails": f"{ada.email}\n{bob.email}\nnobody@globex.example", "remove_from_groups": "on"},
    )
    assert sent.status_code == 303
    job = latest(p)
    p.post(f"/portal/jobs/{job.id}/confirm")
    assert run(job.id) == JobState.PARTIALLY_DONE

    listing = text_of(p.get("/portal/jobs").text)
    assert "Opérations" in listing and "Lancée par" in listing
    assert (
        "Désactiver les utilisateurs" in listing and "Partiellement terminé" in listing and "Vous" in listing
    )
    outcome = html.unescape(text_of(p.get(f"/portal/jobs/{job.id}?show=all").text))
    assert "Partiellement terminé" in outcome
    assert "Désactivé" in outcome and "Retiré des groupes" in outcome and "Échec" in outcome  # item labels
    assert "Aucun utilisateur de votre organisation n'a cette adresse e-mail" in outcome  # by its code
    assert "No user has the email" not in outcome and "Groups removed" not in outcome


def test_the_nav_offers_jobs_to_admins_only(portal: Portal) -> None:
    p = portal
    nav = re.search(r'<nav class="mainnav".*?</nav>', p.get("/portal/users").text, re.S)
    assert nav is not None and '<a href="/portal/jobs"' in nav.group(0) and "Jobs" in nav.group(0)
    current = re.search(r'<nav class="mainnav".*?</nav>', p.get("/portal/jobs").text, re.S)
    assert current is not None and '<a href="/portal/jobs" aria-current="page">' in current.group(0)
    plain = make_user(p.db, p.occupier, first_name="Uma", email="uma@globex.example")
    give_account(p.db, plain, role=AccountRole.USER)
    p.sign_in_as(plain)
    assert "/portal/jobs" not in p.get("/portal/me").text
    assert p.get("/portal/jobs").status_code == 403
