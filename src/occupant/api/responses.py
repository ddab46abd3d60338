"""The error answers each kind of endpoint documents in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from occupant.api.schemas import ErrorOut


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


COMMON: dict[int | str, dict[str, Any]] = {
    400: _doc("`invalid_json`: the body is not JSON."),
    401: _doc("`not_authenticated`: no API key, or one that is not valid or has been revoked."),
    403: _doc("`permission_denied`."),
    422: _doc("`validation_error`: `details` lists every invalid field as {field, code, message}."),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _doc("`not_found`, also for another operator's objects.")}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: _doc(
        "`email_taken`, `occupier_decommissioned`, `action_in_progress`, `invalid_state`, `site_in_use`…"
    )
}
PRECONDITION: dict[int | str, dict[str, Any]] = {
    412: _doc("`precondition_failed`: the `If-Match` ETag is no longer current.")
}
ONE = NOT_FOUND
WRITE_ONE = {**NOT_FOUND, **CONFLICT, **PRECONDITION}
