"""Whatever a client sends, the API answers with a 2xx or a 4xx JSON error, never a 500."""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import make_user

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
user_fields = st.sampled_from(
    [
        "first_name",
        "last_name",
        "email",
        "mobile",
        "direct_line",
        "language",
        "job_title",
        "group_ids",
        "username",
        "external_id",
        "employee_number",
    ]
)
user_bodies = st.dictionaries(user_fields, json_values, max_size=6) | json_values
query_values = st.text(max_size=40) | st.integers(min_value=-(10**30), max_value=10**30).map(str)
fuzz = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def send(api, method, path, body):
    """The body as Python's json writes it (NaN and Infinity included, as some clients send them)."""
    return api.request(method, path, content=json.dumps(body), headers={"Content-Type": "application/json"})


def assert_clean(response):
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["code"] and body["message"]


@fuzz
@given(body=user_bodies)
def test_any_body_for_create_and_update_is_answered_cleanly(api, body):
    assert_clean(send(api, "POST", f"/occupiers/{api.occupier.id}/users", body))
    assert_clean(send(api, "POST", "/occupiers", body))
    assert_clean(send(api, "POST", "/groups", body))
    assert_clean(send(api, "POST", "/sites", body))
    user = make_user(api.db, api.occupier)
    api.db.flush()
    assert_clean(send(api, "PATCH", f"/users/{user.id}", body))
    assert_clean(send(api, "PUT", f"/users/{user.id}/groups", body))


@fuzz
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "q",
                "status",
                "occupier_id",
                "limit",
                "cursor",
                "state",
                "site_id",
                "since",
                "until",
                "actor_type",
                "target_id",
            ]
        ),
        query_values,
        max_size=4,
    ),
    path_id=query_values,
)
def test_any_query_or_path_is_answered_cleanly(api, params, path_id):
    for path in ("/users", "/occupiers", "/audit-events", "/groups", "/sites"):
        assert_clean(api.get(path, params=params))
    quoted = quote(path_id, safe="")
    if quoted and quoted not in (".", ".."):
        assert_clean(api.get(f"/users/{quoted}"))
        assert_clean(api.patch(f"/occupiers/{quoted}", json={}))
