"""``/api/v1/bulk-jobs``: submit, preview, confirm, run, follow, items, results, cancel, retry; uploads;
every bad input answered with its code; who sees which jobs."""

# ruff: noqa: F811  (the fixtures borrowed from tests/api are parameters of the tests)

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from occupant.authz.actor import Role
from occupant.bulk import engine
from occupant.bulk.kinds.base import Item
from occupant.bulk.models import BulkItem, BulkJob
from occupant.kit import runtime
from occupant.kit.clock import utcnow
from occupant.kit.errors import NotFound
from occupant.kit.settings import get_settings
from occupant.occupiers import service as occupiers
from occupant.staff.models import ApiKey
from occupant.users.models import OccupierUser, UserStatus
from tests.api.conftest import Api, api, app, make_key, other  # noqa: F401
from tests.bulk.support import file_kinds  # noqa: F401
from tests.factories import admin_actor, make_occupier, make_site, make_user, site_manager_actor


def scoped_key(api: Api, role: Role, occupier_id: int | None) -> dict[str, str]:
    key_id, token = make_key(api.db, api.operator, name=f"{role} key")
    key = api.db.get(ApiKey, key_id)
    assert key is not None
    key.role, key.occupier_id = role, occupier_id
    api.db.flush()
    return {"Authorization": f"Bearer {token}"}


def people(api: Api, n: int = 3, **fields: object) -> list[OccupierUser]:
    users = [
        make_user(api.db, api.occupier, first_name=f"P{i}", email=f"p{i}@acme.example", **fields)
        for i in range(n)
    ]
    api.db.flush()
    return users


def run(job_id: int) -> str | None:
    """What the worker does after the commit (the queue is in memory in the tests)."""
    return engine.run_job(runtime.get_session_factory(), job_id)


def submit(api: Api, body: dict[str, object], **kwargs: object):  # type: ignore[no-untyped-def]
    return api.post("/bulk-jobs", json=body, **kwargs)


def error(response) -> tuple[int, str, set[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    body = response.json()
    assert body["message"], body
    details = (
        {(d.get("field", d.get("column")), d["code"]) for d in body["details"] or []}
        if isinstance(body["details"], list)
        else set()
    )
    return response.status_code, body["code"], details


def results_of(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(response.text[1:])))


# --- the whole flow ---------------------------------------------------------------------------------------


def test_a_job_is_previewed_confirmed_run_followed_and_its_results_downloaded(api: Api) -> None:
    ada, ben, cy = people(api)
    created = submit(
        api, {"kind": "deactivate", "occupier_id": api.occupier.id, "user_ids": [ada.id, ben.id, 999_999]}
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert created.headers["location"] == f"/api/v1/bulk-jobs/{job['id']}"
    assert (job["kind"], job["title"], job["state"], job["occupier_id"]) == (
        "deactivate",
        "Deactivate users",
        "PREVIEW",
        api.occupier.id,
    )
    # The preview: two would be deactivated, one fails; nothing changed yet.
    assert job["counts"] == {
        "total": 3,
        "processed": 1,
        "succeeded": 0,
        "failed": 1,
        "excluded": 0,
        "pending": 2,
    }
    assert job["requested_by"] == {"kind": "api_key", "id": str(api.key_id), "name": "API key integration"}
    assert job["selection"] == {"ids": 3}
    assert job["links"]["results"] == f"/api/v1/bulk-jobs/{job['id']}/results.csv"
    failed = api.get(f"/bulk-jobs/{job['id']}/items", params={"status": "FAILED"}).json()["items"]
    assert [(i["position"], i["status"], i["code"]) for i in failed] == [(3, "FAILED", "not_found")]
    api.db.expire_all()
    assert api.db.get(OccupierUser, ada.id).status == UserStatus.ACTIVE

    confirmed = api.post(f"/bulk-jobs/{job['id']}/confirm")
    assert confirmed.status_code == 200 and confirmed.json()["state"] == "QUEUED"
    again = api.post(f"/bulk-jobs/{job['id']}/confirm")
    assert error(again)[:2] == (409, "job_not_pending")

    assert run(job["id"]) == "PARTIALLY_DONE"
    progress = api.get(f"/bulk-jobs/{job['id']}").json()
    assert progress["state"] == "PARTIALLY_DONE"
    assert progress["counts"] == {
        "total": 3,
        "processed": 3,
        "succeeded": 2,
        "failed": 1,
        "excluded": 0,
        "pending": 0,
    }
    assert progress["confirmed_at"] and progress["started_at"] and progress["finished_at"]
    api.db.expire_all()
    assert {api.db.get(OccupierUser, u.id).status for u in (ada, ben)} == {UserStatus.DEACTIVATED}
    assert api.db.get(OccupierUser, cy.id).status == UserStatus.ACTIVE

    rows = results_of(api.get(f"/bulk-jobs/{job['id']}/results.csv"))
    assert rows[0] == engine.RESULT_HEADER
    assert rows[1:] == [
        ["1", "P0 " + ada.last_name, "SUCCEEDED", "deactivated", "", ""],
        ["2", "P1 " + ben.last_name, "SUCCEEDED", "deactivated", "", ""],
        ["3", "", "FAILED", "", "not_found", "No such user in Acme Ltd."],
    ]

    retried = api.post(f"/bulk-jobs/{job['id']}/retry-failed")
    assert retried.status_code == 201, retried.text
    retry = retried.json()
    assert (retry["state"], retry["retry_of_id"], retry["counts"]["total"]) == ("PREVIEW", job["id"], 1)
    actions = [e.action for e in api.events(target_type="bulk_job")]
    assert actions == ["bulk_job.previewed", "bulk_job.confirmed", "bulk_job.finished", "bulk_job.previewed"]


def test_preview_false_queues_at_once_and_a_filter_selects_what_matches_now(api: Api) -> None:
    users = people(api, 4)
    make_user(api.db, make_occupier(api.db, api.operator, sites_=[api.site]), first_name="Elsewhere")
    api.db.flush()
    created = submit(
        api, {"kind": "deactivate", "filter": {"occupier_id": api.occupier.id, "q": "p"}, "preview": False}
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert (job["state"], job["occupier_id"], job["counts"]["total"]) == ("QUEUED", api.occupier.id, 4)
    assert job["selection"] == {"filter": {"occupier_id": api.occupier.id, "search": True}}
    assert run(job["id"]) == "DONE"
    api.db.expire_all()
    assert {api.db.get(OccupierUser, u.id).status for u in users} == {UserStatus.DEACTIVATED}


def test_a_pasted_list_of_emails(api: Api) -> None:
    ada, _ben, _cy = people(api)
    body = {
        "kind": "deactivate",
        "occupier_id": api.occupier.id,
        "emails": [ada.email.upper(), "", "x@no.example"],
    }
    job = submit(api, body).json()
    items = api.get(f"/bulk-jobs/{job['id']}/items").json()["items"]
    assert [(i["position"], i["identifier"], i["status"], i["code"]) for i in items] == [
        (1, ada.email.upper(), "PENDING", None),
        (3, "x@no.example", "FAILED", "not_found"),
    ]


def test_cancel_leaves_what_was_not_started_and_says_so(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    users = people(api, 4)
    job = submit(
        api, {"kind": "deactivate", "occupier_id": api.occupier.id, "user_ids": [u.id for u in users]}
    ).json()
    api.post(f"/bulk-jobs/{job['id']}/confirm")
    cancelled = api.post(f"/bulk-jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"
    assert cancelled.json()["counts"]["pending"] == 4
    assert error(api.post(f"/bulk-jobs/{job['id']}/cancel"))[:2] == (409, "job_not_pending")
    assert error(api.post(f"/bulk-jobs/{job['id']}/confirm"))[:2] == (409, "job_not_pending")
    assert run(job["id"]) == "CANCELLED"
    rows = results_of(api.get(f"/bulk-jobs/{job['id']}/results.csv"))
    assert {r[2] for r in rows[1:]} == {"NOT_STARTED"}
    items = api.get(f"/bulk-jobs/{job['id']}/items").json()["items"]
    assert {i["status"] for i in items} == {"NOT_STARTED"}
    api.db.expire_all()
    assert {api.db.get(OccupierUser, u.id).status for u in users} == {UserStatus.ACTIVE}


def test_retry_before_the_end_or_with_nothing_failed_is_refused(api: Api) -> None:
    (ada,) = people(api, 1)
    job = submit(api, {"kind": "deactivate", "occupier_id": api.occupier.id, "user_ids": [ada.id]}).json()
    assert error(api.post(f"/bulk-jobs/{job['id']}/retry-failed"))[:2] == (409, "job_not_pending")
    api.post(f"/bulk-jobs/{job['id']}/confirm")
    assert run(job["id"]) == "DONE"
    assert error(api.post(f"/bulk-jobs/{job['id']}/retry-failed")) == (
        422,
        "validation_error",
        {("items", "no_items")},
    )


def test_results_neutralise_formulas(api: Api) -> None:
    (ada,) = people(api, 1)
    api.db.get(OccupierUser, ada.id).first_name = "=HYPERLINK(1)"
    api.db.flush()
    job = submit(api, {"kind": "deactivate", "occupier_id": api.occupier.id, "user_ids": [ada.id]}).json()
    rows = results_of(api.get(f"/bulk-jobs/{job['id']}/results.csv"))
    assert rows[1][1].startswith("'=HYPERLINK(1)")


def test_the_list_is_newest_first_filtered_and_paged(api: Api) -> None:
    users = people(api, 2)
    ids = [
        submit(api, {"kind": kind, "occupier_id": api.occupier.id, "user_ids": [users[0].id]}).json()["id"]
        for kind in ("deactivate", "delete", "deactivate")
    ]
    api.post(f"/bulk-jobs/{ids[0]}/cancel")
    walked = api.walk("/bulk-jobs", limit=1)
    assert [j["id"] for j in walked] == ids[::-1]
    assert [j["id"] for j in api.get("/bulk-jobs", params={"kind": "deactivate"}).json()["items"]] == [
        ids[2],
        ids[0],
    ]
    assert [j["id"] for j in api.get("/bulk-jobs", params={"state": "CANCELLED"}).json()["items"]] == [ids[0]]
    other_occupier = make_occupier(api.db, api.operator, sites_=[api.site])
    api.db.flush()
    assert api.get("/bulk-jobs", params={"occupier_id": other_occupier.id}).json()["items"] == []
    assert error(api.get("/bulk-jobs", params={"state": "SLEEPING"}))[:2] == (422, "validation_error")
    assert error(api.get("/bulk-jobs", params={"cursor": "nonsense"}))[2] == {("cursor", "invalid_cursor")}


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "details"),
    [
        ({"kind": "teleport", "user_ids": [1]}, 422, "validation_error", {("kind", "unknown_kind")}),
        ({"kind": "delete"}, 422, "validation_error", {("source", "source_required")}),
        (
            {"kind": "delete", "user_ids": [1], "emails": ["a@b.c"]},
            422,
            "validation_error",
            {("source", "one_source_only")},
        ),
        ({"kind": "delete", "user_ids": []}, 422, "validation_error", {("items", "no_items")}),
        (
            {"kind": "delete", "rows": [{"email": "a@b.c"}]},
            422,
            "validation_error",
            {("rows", "no_rows_for_kind")},
        ),
        (
            {"kind": "delete", "user_ids": [1], "params": {"force": True}},
            422,
            "validation_error",
            {("params.force", "unknown_field")},
        ),
        (
            {"kind": "deactivate", "user_ids": [1], "params": {"colour": 1}},
            422,
            "validation_error",
            {("params.colour", "extra_forbidden")},
        ),
        ({"kind": "edit", "user_ids": [1], "params": {}}, 422, "validation_error", None),
        (
            {"kind": "edit", "user_ids": [1], "params": {"role": "boss"}},
            422,
            "validation_error",
            {("params.role", "enum")},
        ),
        (
            {"kind": "edit", "user_ids": [1], "params": {"invite_portal": "maybe"}},
            422,
            "validation_error",
            {("params.invite_portal", "bool_parsing")},
        ),
        ({"kind": "delete", "user_ids": ["x"]}, 422, "validation_error", {("user_ids.0", "invalid_integer")}),
        ({"kind": "delete", "user_ids": [0]}, 422, "validation_error", {("user_ids.0", "out_of_range")}),
        (
            {"kind": "delete", "filter": {"wifi": "sometimes"}},
            422,
            "validation_error",
            {("filter.wifi", "invalid_choice")},
        ),
        (
            {"kind": "delete", "filter": {"colour": "red"}},
            422,
            "validation_error",
            {("filter.colour", "unknown_field")},
        ),
        ({"kind": "delete", "emails": "a@b.c"}, 422, "validation_error", {("emails", "invalid_type")}),
        (
            {"kind": "delete", "user_ids": [1], "preview": "perhaps"},
            422,
            "validation_error",
            {("preview", "invalid_boolean")},
        ),
        (
            {"kind": "delete", "user_ids": [1], "extra": 1},
            422,
            "validation_error",
            {("extra", "unknown_field")},
        ),
        ({"user_ids": [1]}, 422, "validation_error", {("kind", "required")}),
        ([1, 2], 422, "validation_error", None),
        (
            {"kind": "delete", "occupier_id": 2**70, "user_ids": [1]},
            422,
            "validation_error",
            {("occupier_id", "out_of_range")},
        ),
    ],
)
def test_bad_bodies_answer_their_codes(
    api: Api, body: object, status: int, code: str, details: set[tuple[str, str]] | None
) -> None:
    response = submit(api, body)  # type: ignore[arg-type]
    got = error(response)
    assert got[:2] == (status, code), response.text
    if details is not None:
        assert got[2] == details, response.text
    assert api.db.scalar(select(BulkJob.id)) is None


def test_a_body_that_is_not_json_is_invalid_json(api: Api) -> None:
    response = api.post("/bulk-jobs", content=b"{kind: ", headers={"Content-Type": "application/json"})
    assert error(response)[:2] == (400, "invalid_json")


def test_too_many_items_is_a_clear_error(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from occupant.bulk import sources

    monkeypatch.setattr(sources, "MAX_ITEMS", 2)
    response = submit(api, {"kind": "delete", "user_ids": [1, 2, 3]})
    assert error(response) == (422, "validation_error", {("items", "too_many_items")})
    assert "at most 2" in response.json()["details"][0]["message"]


def test_a_decommissioning_occupier_refuses_the_job_whole(api: Api) -> None:
    (ada,) = people(api, 1)
    job = submit(api, {"kind": "delete", "occupier_id": api.occupier.id, "user_ids": [ada.id]}).json()
    occupiers.start_decommission(api.db, api.occupier, actor=admin_actor(api.operator))
    api.db.flush()
    refused = submit(api, {"kind": "delete", "occupier_id": api.occupier.id, "user_ids": [ada.id]})
    assert error(refused)[:2] == (409, "occupier_decommissioned")
    assert error(api.post(f"/bulk-jobs/{job['id']}/confirm"))[:2] == (409, "occupier_decommissioned")


def test_a_filter_for_another_occupier_than_the_job_is_refused(api: Api) -> None:
    theirs = make_occupier(api.db, api.operator, sites_=[api.site])
    api.db.flush()
    body = {"kind": "delete", "occupier_id": api.occupier.id, "filter": {"occupier_id": theirs.id}}
    assert error(submit(api, body)) == (
        422,
        "validation_error",
        {("filter.occupier_id", "occupier_mismatch")},
    )


scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
fields = st.sampled_from(["kind", "occupier_id", "preview", "params", "user_ids", "filter", "emails", "rows"])
kinds = st.sampled_from(["delete", "edit", "deactivate", "test_make", "create", "nope"])
bodies = (
    st.builds(lambda kind, rest: {"kind": kind, **rest}, kinds, st.dictionaries(fields, values, max_size=4))
    | values
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_any_body_is_answered_without_a_server_error(api: Api, file_kinds: object, body: object) -> None:
    response = api.post("/bulk-jobs", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["code"] and response.json()["message"]


# --- rows and files -------------------------------------------------------------------------------------


def test_rows_are_read_as_a_files_cells(api: Api, file_kinds: object) -> None:
    rows = [
        {"Email": "a@x.example", "first_name": " Ada ", "wifi": True, "groups": ["Doors", "Gym"]},
        {"email": "b@x.example", "wifi": False, "first_name": None},
        {"email": "A@x.example"},
        {"first_name": "No email"},
    ]
    created = submit(api, {"kind": "test_make", "occupier_id": api.occupier.id, "rows": rows})
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["counts"]["total"] == 4 and job["selection"] == {"rows": 4}
    items = api.get(f"/bulk-jobs/{job['id']}/items").json()["items"]
    assert [(i["position"], i["status"], i["code"]) for i in items] == [
        (1, "PENDING", None),
        (2, "PENDING", None),
        (3, "FAILED", "duplicate_in_file"),
        (4, "FAILED", "required"),
    ]
    payload = api.db.scalars(
        select(BulkItem.payload).where(BulkItem.job_id == job["id"]).order_by(BulkItem.position)
    ).first()
    assert payload == {"email": "a@x.example", "first_name": "Ada", "wifi": "y", "groups": "Doors;Gym"}
    api.post(f"/bulk-jobs/{job['id']}/confirm")
    assert run(job["id"]) == "PARTIALLY_DONE"


def test_rows_with_unknown_columns_or_objects_as_cells_are_refused_whole(
    api: Api, file_kinds: object
) -> None:
    rows = [{"email": "a@x.example", "colour": "red"}, {"email": {"nested": 1}}]
    response = submit(api, {"kind": "test_make", "occupier_id": api.occupier.id, "rows": rows})
    assert error(response) == (
        422,
        "validation_error",
        {("rows.0.colour", "unknown_column"), ("rows.1.email", "invalid_type")},
    )
    assert "The columns are: email, first_name, last_name, wifi, groups." in response.json()["message"]


def test_a_kind_that_makes_users_needs_an_occupier_and_takes_no_selection(
    api: Api, file_kinds: object
) -> None:
    missing = submit(api, {"kind": "test_make", "rows": [{"email": "a@x.example"}]})
    assert error(missing) == (422, "validation_error", {("occupier_id", "required")})
    selection = submit(api, {"kind": "test_make", "occupier_id": api.occupier.id, "user_ids": [1]})
    assert error(selection) == (422, "validation_error", {("user_ids", "source_not_supported")})


def test_too_many_rows(api: Api, file_kinds: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "csv_max_rows", 2)
    rows = [{"email": f"{n}@x.example"} for n in range(3)]
    response = submit(api, {"kind": "test_make", "occupier_id": api.occupier.id, "rows": rows})
    assert error(response) == (422, "validation_error", {("rows", "too_many_items")})


def upload(api: Api, data: bytes, *, content_type: str = "text/csv", **params: object):  # type: ignore[no-untyped-def]
    return api.post("/bulk-jobs/upload", params=params, content=data, headers={"Content-Type": content_type})


def test_a_csv_upload_is_previewed_then_run(api: Api, file_kinds: object) -> None:
    ada, ben, _cy = people(api)
    lines = [
        "Email;Username",
        f"{ada.email};",
        "",
        "nobody@x.example;",
        f"{ben.email.upper()};",
        ";ghost",
        "",
    ]
    data = "\r\n".join(lines).encode("utf-16")
    created = upload(api, data, kind="deactivate", occupier_id=api.occupier.id, filename="leavers.csv")
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["selection"] == {"file": "leavers.csv", "rows": 4, "encoding": "utf-16-le"}
    items = api.get(f"/bulk-jobs/{job['id']}/items").json()["items"]
    assert [(i["position"], i["status"], i["code"]) for i in items] == [
        (2, "PENDING", None),
        (4, "FAILED", "not_found"),
        (5, "PENDING", None),
        (6, "FAILED", "required"),
    ]
    api.post(f"/bulk-jobs/{job['id']}/confirm")
    assert run(job["id"]) == "PARTIALLY_DONE"
    rows = results_of(api.get(f"/bulk-jobs/{job['id']}/results.csv"))
    assert [r[0] for r in rows[1:]] == ["2", "4", "5", "6"]
    api.db.expire_all()
    assert {api.db.get(OccupierUser, u.id).status for u in (ada, ben)} == {UserStatus.DEACTIVATED}


def test_a_multipart_upload_with_options_confirmed_at_once(api: Api, file_kinds: object) -> None:
    (ada,) = people(api, 1)
    response = api.post(
        "/bulk-jobs/upload",
        params={"kind": "deactivate", "preview": "false", "remove_from_groups": "true"},
        files={"file": ("team.csv", f"email\n{ada.email}\n".encode(), "text/csv")},
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert (job["state"], job["params"], job["selection"]["file"]) == (
        "QUEUED",
        {"remove_from_groups": "true"},
        "team.csv",
    )
    assert run(job["id"]) == "DONE"
    missing = api.post(
        "/bulk-jobs/upload", params={"kind": "deactivate"}, files={"other": ("a.csv", b"email\n")}
    )
    assert error(missing) == (422, "validation_error", {("file", "required")})


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "csv_empty"),
        (b"mail,colour\nx@y.z,red\n", "csv_columns"),
        (b"email\n\xff\xfe\xfa\n", "csv_encoding"),
        (b'email\n"x@y.z\n', "csv_malformed"),
    ],
)
def test_file_level_problems_answer_422_with_their_csv_code(
    api: Api, file_kinds: object, data: bytes, code: str
) -> None:
    response = upload(api, data, kind="deactivate")
    assert error(response)[:2] == (422, code), response.text
    assert api.db.scalar(select(BulkJob.id)) is None


def test_a_file_too_large_is_refused_before_it_is_read(
    api: Api, file_kinds: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "csv_max_bytes", 1000)
    data = b"email\n" + b"someone@example.com\n" * 100
    response = upload(api, data, kind="deactivate")
    assert error(response)[:2] == (422, "csv_too_large")
    assert response.json()["details"] == {"bytes": len(data), "max_bytes": 1000}

    def chunked():  # type: ignore[no-untyped-def]  # no Content-Length: refused once past the limit
        for _ in range(1000):
            yield b"someone@example.com\n" * 10

    streamed = api.post(
        "/bulk-jobs/upload",
        params={"kind": "deactivate"},
        content=chunked(),
        headers={"Content-Type": "text/csv"},
    )
    assert error(streamed)[:2] == (422, "csv_too_large")
    multipart = api.post(
        "/bulk-jobs/upload", params={"kind": "deactivate"}, files={"file": ("big.csv", data * 700)}
    )
    assert error(multipart)[:2] == (422, "csv_too_large")
    assert api.db.scalar(select(BulkJob.id)) is None


def test_upload_errors_name_their_cause(api: Api, file_kinds: object) -> None:
    assert error(upload(api, b"email\n", kind="delete")) == (
        422,
        "validation_error",
        {("file", "no_file_for_kind")},
    )
    assert error(upload(api, b"email\n", kind="nope")) == (
        422,
        "validation_error",
        {("kind", "unknown_kind")},
    )
    assert error(upload(api, b"[]", kind="deactivate", content_type="application/json"))[:2] == (
        415,
        "unsupported_media_type",
    )
    bad_option = upload(api, b"email\nx@y.z\n", kind="deactivate", colour="red")
    assert error(bad_option) == (422, "validation_error", {("params.colour", "extra_forbidden")})
    no_occupier = upload(api, b"email\nx@y.z\n", kind="test_make")
    assert error(no_occupier) == (422, "validation_error", {("occupier_id", "required")})
    assert error(api.post("/bulk-jobs/upload", content=b"email\n"))[2] == {("kind", "required")}
    broken = api.post(
        "/bulk-jobs/upload",
        params={"kind": "deactivate"},
        content=b"--xyz\r\nnonsense",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code < 500 and broken.status_code >= 400


def test_templates(api: Api, file_kinds: object) -> None:
    response = api.get("/bulk-jobs/templates/deactivate.csv")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text == (
        "\ufeffemail,user_id,username,external_id,occupier,remove_from_group\r\nada@example.com,,,,,y\r\n"
    )
    assert error(api.get("/bulk-jobs/templates/delete.csv")) == (
        422,
        "validation_error",
        {("file", "no_file_for_kind")},
    )
    assert error(api.get("/bulk-jobs/templates/nope.csv"))[2] == {("kind", "unknown_kind")}


def test_create_from_a_csv_upload_and_from_rows(api: Api) -> None:
    template = api.get("/bulk-jobs/templates/create.csv")
    assert template.status_code == 200 and template.text.startswith("\ufefffirst_name")
    data = b"first_name,last_name,email\nAda,Lovelace,ada@new.example\nBad,,bad@new.example\n"
    job = upload(api, data, kind="create", occupier_id=api.occupier.id).json()
    assert (job["state"], job["counts"]["total"], job["counts"]["failed"]) == ("PREVIEW", 2, 1)
    api.post(f"/bulk-jobs/{job['id']}/confirm")
    assert run(job["id"]) == "PARTIALLY_DONE"
    made = api.db.scalars(select(OccupierUser).where(OccupierUser.email_key == "ada@new.example")).one()
    assert made.occupier_id == api.occupier.id
    rows = {
        "kind": "create",
        "occupier_id": api.occupier.id,
        "preview": False,
        "rows": [{"first_name": "Bo", "last_name": "B", "email": "bo@new.example"}],
    }
    listed = submit(api, rows).json()
    assert run(listed["id"]) == "DONE"


# --- who sees what --------------------------------------------------------------------------------------


def test_another_operators_jobs_and_occupiers_are_not_found(api: Api, other) -> None:  # type: ignore[no-untyped-def]
    theirs = other()
    their_job = engine.submit(
        api.db,
        kind="delete",
        items=[Item(position=1, user_id=theirs["user"].id)],
        actor=admin_actor(theirs["operator"]),
        occupier=theirs["occupier"],
    )
    api.db.flush()
    for method, path in [
        ("GET", ""),
        ("GET", "/items"),
        ("GET", "/results.csv"),
        ("POST", "/confirm"),
        ("POST", "/cancel"),
        ("POST", "/retry-failed"),
    ]:
        response = api.request(method, f"/bulk-jobs/{their_job.id}{path}")
        assert error(response)[:2] == (404, "not_found"), (method, path)
    assert api.get("/bulk-jobs").json()["items"] == []
    body = {"kind": "delete", "occupier_id": theirs["occupier"].id, "user_ids": [theirs["user"].id]}
    assert error(submit(api, body))[:2] == (404, "not_found")
    # Their user in a job of ours: not found, like any user out of reach.
    mine = submit(api, {"kind": "delete", "user_ids": [theirs["user"].id]}).json()
    assert mine["counts"]["failed"] == 1


def test_an_occupier_key_works_in_its_own_occupier_only(api: Api) -> None:
    (ada,) = people(api, 1)
    initech = make_occupier(api.db, api.operator, sites_=[api.site], name="Initech")
    ivy = make_user(api.db, initech, first_name="Ivy")
    api.db.flush()
    theirs = submit(api, {"kind": "deactivate", "occupier_id": initech.id, "user_ids": [ivy.id]}).json()
    headers = scoped_key(api, Role.OCCUPIER_ADMIN, api.occupier.id)
    created = submit(api, {"kind": "deactivate", "user_ids": [ada.id, ivy.id]}, headers=headers)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["occupier_id"] == api.occupier.id  # its own, unless named
    items = api.get(f"/bulk-jobs/{job['id']}/items", headers=headers).json()["items"]
    assert [(i["user_id"], i["status"], i["code"]) for i in items] == [
        (ada.id, "PENDING", None),
        (ivy.id, "FAILED", "not_found"),
    ]
    assert [j["id"] for j in api.get("/bulk-jobs", headers=headers).json()["items"]] == [job["id"]]
    assert error(api.get(f"/bulk-jobs/{theirs['id']}", headers=headers))[:2] == (404, "not_found")
    assert error(api.post(f"/bulk-jobs/{theirs['id']}/cancel", headers=headers))[:2] == (404, "not_found")
    named = submit(
        api, {"kind": "deactivate", "occupier_id": initech.id, "user_ids": [ivy.id]}, headers=headers
    )
    assert error(named)[:2] == (404, "not_found")
    # The operator's key sees both.
    assert {j["id"] for j in api.get("/bulk-jobs").json()["items"]} == {job["id"], theirs["id"]}


def test_an_occupier_user_key_sees_no_jobs(api: Api) -> None:
    (ada,) = people(api, 1)
    job = submit(api, {"kind": "deactivate", "occupier_id": api.occupier.id, "user_ids": [ada.id]}).json()
    headers = scoped_key(api, Role.OCCUPIER_USER, api.occupier.id)
    assert error(api.get("/bulk-jobs", headers=headers))[:2] == (403, "permission_denied")
    assert error(api.get(f"/bulk-jobs/{job['id']}", headers=headers))[:2] == (404, "not_found")
    assert error(api.post(f"/bulk-jobs/{job['id']}/cancel", headers=headers))[:2] == (404, "not_found")
    refused = submit(api, {"kind": "deactivate", "user_ids": [ada.id]}, headers=headers)
    assert error(refused)[:2] == (403, "permission_denied")


def test_site_managers_see_the_jobs_of_occupiers_at_their_sites(api: Api) -> None:
    (ada,) = people(api, 1)
    paris = make_site(api.db, api.operator, code="PAR01", country="FR")
    elsewhere = make_occupier(api.db, api.operator, sites_=[paris])
    eve = make_user(api.db, elsewhere)
    api.db.flush()
    here = submit(api, {"kind": "deactivate", "occupier_id": api.occupier.id, "user_ids": [ada.id]}).json()
    there = submit(api, {"kind": "deactivate", "occupier_id": elsewhere.id, "user_ids": [eve.id]}).json()
    manager = site_manager_actor(api.operator, [api.site.id])
    assert engine.get_job(api.db, manager, here["id"]).id == here["id"]
    with pytest.raises(NotFound):
        engine.get_job(api.db, manager, there["id"])
    # A site-manager API key has no sites: it sees no job.
    headers = scoped_key(api, Role.SITE_MANAGER, None)
    assert api.get("/bulk-jobs", headers=headers).json()["items"] == []
    assert error(api.get(f"/bulk-jobs/{here['id']}", headers=headers))[:2] == (404, "not_found")


def test_the_endpoints_are_documented(api: Api) -> None:
    paths = api.client.get("/api/v1/openapi.json").json()["paths"]
    expected = {
        "/api/v1/bulk-jobs": {"get", "post"},
        "/api/v1/bulk-jobs/upload": {"post"},
        "/api/v1/bulk-jobs/templates/{kind}.csv": {"get"},
        "/api/v1/bulk-jobs/{job_id}": {"get"},
        "/api/v1/bulk-jobs/{job_id}/items": {"get"},
        "/api/v1/bulk-jobs/{job_id}/confirm": {"post"},
        "/api/v1/bulk-jobs/{job_id}/cancel": {"post"},
        "/api/v1/bulk-jobs/{job_id}/retry-failed": {"post"},
        "/api/v1/bulk-jobs/{job_id}/results.csv": {"get"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
        for op in paths[path].values():
            assert op["security"] == [{"ApiKey": []}] and op["tags"] == ["bulk jobs"] and op["description"]
    upload_body = paths["/api/v1/bulk-jobs/upload"]["post"]["requestBody"]["content"]
    assert set(upload_body) == {"text/csv", "multipart/form-data"}
    created = paths["/api/v1/bulk-jobs"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"]["$ref"].endswith("/JobOut")


def test_a_busy_user_is_excluded_at_confirmation(api: Api) -> None:
    ada, ben, _ = people(api)
    job = submit(
        api, {"kind": "deactivate", "occupier_id": api.occupier.id, "user_ids": [ada.id, ben.id]}
    ).json()
    busy = api.db.get(OccupierUser, ben.id)
    busy.busy_owner, busy.busy_until = "wifi:1", utcnow().replace(year=utcnow().year + 1)
    api.db.flush()
    confirmed = api.post(f"/bulk-jobs/{job['id']}/confirm").json()
    assert confirmed["counts"]["excluded"] == 1
    assert run(job["id"]) == "PARTIALLY_DONE"
    excluded = api.get(f"/bulk-jobs/{job['id']}/items", params={"status": ["EXCLUDED"]}).json()["items"]
    assert [(i["user_id"], i["code"]) for i in excluded] == [(ben.id, "action_in_progress")]


def test_an_occupier_whose_sites_have_nas_identifiers(api: Api) -> None:
    """The preview lets go of what each chunk loaded; a site's NAS rows go with their site."""
    paris = make_site(api.db, api.operator, code="PAR02", country="FR", nas=["ap-par-1", "ap-par-2"])
    occupier = make_occupier(api.db, api.operator, sites_=[paris])
    users = [make_user(api.db, occupier) for _ in range(3)]
    api.db.flush()
    body = {"kind": "deactivate", "occupier_id": occupier.id, "user_ids": [u.id for u in users]}
    created = submit(api, body)
    assert created.status_code == 201, created.text
    assert created.json()["counts"]["pending"] == 3
