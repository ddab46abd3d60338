"""The OpenAPI document, and JSON errors for paths that do not exist."""

from __future__ import annotations


def test_openapi_lists_every_endpoint_with_bearer_security(api):
    doc = api.client.get("/api/v1/openapi.json").json()
    paths = doc["paths"]
    expected = {
        "/api/v1/sites": {"get", "post"},
        "/api/v1/sites/{site_id}": {"get", "patch", "delete"},
        "/api/v1/occupiers": {"get", "post"},
        "/api/v1/occupiers/{occupier_id}": {"get", "patch"},
        "/api/v1/occupiers/{occupier_id}/decommission": {"post"},
        "/api/v1/occupiers/{occupier_id}/groups": {"get"},
        "/api/v1/occupiers/{occupier_id}/users": {"get", "post"},
        "/api/v1/users": {"get"},
        "/api/v1/users/{user_id}": {"get", "patch", "delete"},
        "/api/v1/users/{user_id}/deactivate": {"post"},
        "/api/v1/users/{user_id}/reactivate": {"post"},
        "/api/v1/users/{user_id}/change-email": {"post"},
        "/api/v1/users/{user_id}/groups": {"get", "put"},
        "/api/v1/groups": {"get", "post"},
        "/api/v1/groups/{group_id}": {"get", "patch", "delete"},
        "/api/v1/groups/{group_id}/members": {"get", "put"},
        "/api/v1/audit-events": {"get"},
        "/api/v1/audit-events.csv": {"get"},
        "/api/v1/users/{user_id}/account": {"get", "put"},
        "/api/v1/users/{user_id}/account/resend-invitation": {"post"},
        "/api/v1/users/{user_id}/account/deactivate": {"post"},
        "/api/v1/users/{user_id}/account/activate": {"post"},
        "/api/v1/users/{user_id}/account/password-reset": {"post"},
        "/api/v1/users/{user_id}/account/force-password-reset": {"post"},
        "/api/v1/users/{user_id}/account/welcome": {"post"},
        "/api/v1/auth/token": {"post"},
        "/api/v1/auth/refresh": {"post"},
        "/api/v1/auth/sign-out": {"post"},
        "/api/v1/me": {"get", "patch"},
    }
    # The mobile app's endpoints take its own tokens (or, to get them, email and password), never an API key.
    mobile_security: dict[str, list[dict[str, list[str]]]] = {
        "/api/v1/auth/token": [],
        "/api/v1/auth/refresh": [],
        "/api/v1/auth/sign-out": [{"MobileToken": []}],
        "/api/v1/me": [{"MobileToken": []}],
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "occ_…",
        "description": (
            "An operator API key, sent as `Authorization: Bearer occ_…`. It is shown once when created."
        ),
    }
    api_paths = {p: ops for p, ops in paths.items() if p.startswith("/api/v1/")}
    for path, operations in api_paths.items():
        for method, op in operations.items():
            assert op["security"] == mobile_security.get(path, [{"ApiKey": []}]), (method, path)
            assert op["tags"], (method, path)
            assert "$ref" in str(op["responses"]["401"]), (method, path)
            ok = next(code for code in op["responses"] if code.startswith("2"))
            if ok != "204" and not path.endswith(".csv"):
                assert "schema" in str(op["responses"][ok]), (method, path)
    assert {t["name"] for t in doc["tags"]} >= {"sites", "occupiers", "users", "groups", "audit", "accounts"}
    assert doc["components"]["securitySchemes"]["MobileToken"]["scheme"] == "bearer"
    error = doc["components"]["schemas"]["ErrorOut"]
    assert set(error["properties"]) == {"code", "message", "details"}
    get_user = paths["/api/v1/users/{user_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert get_user["schema"]["$ref"].endswith("/UserDetailOut")


def test_unknown_api_paths_and_methods_answer_json(api):
    missing = api.get("/no-such-thing")
    assert missing.status_code == 404
    assert missing.json() == {"code": "not_found", "message": "Not found.", "details": None}
    wrong_method = api.request("PUT", "/users")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"
    assert "GET" in wrong_method.headers["allow"]


def test_responses_carry_a_request_id(api):
    response = api.get("/users", headers={"X-Request-ID": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
