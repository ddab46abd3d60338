"""JSON errors with stable codes for everything under ``/api/``.

Every answer is ``{code, message, details}``. Requests outside ``/api/`` are handed to the console's
``occupant.web.pages.html_error_response(request, exc)`` when it exists (it may return None to decline),
else answered with the same JSON.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from occupant.kit.errors import NotAuthenticated, OccupantError, PreconditionFailed, RateLimited

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
_HTTP_MESSAGES = {404: "Not found.", 405: "This method is not allowed here."}

# pydantic error types -> our field codes (anything else keeps "invalid")
_FIELD_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "string_too_long": "too_long",
    "too_long": "too_many",
    "too_short": "too_few",
    "string_pattern_mismatch": "invalid_format",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "int_parsing": "invalid_integer",
    "int_type": "invalid_integer",
    "int_from_float": "invalid_integer",
    "int_parsing_size": "out_of_range",
    "bool_parsing": "invalid_boolean",
    "bool_type": "invalid_boolean",
    "string_type": "invalid_type",
    "list_type": "invalid_type",
    "dict_type": "invalid_type",
    "model_type": "invalid_type",
    "model_attributes_type": "invalid_type",
    "enum": "invalid_choice",
    "literal_error": "invalid_choice",
    "datetime_parsing": "invalid_datetime",
    "datetime_from_date_parsing": "invalid_datetime",
    "datetime_type": "invalid_datetime",
}
_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def is_api_request(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(
    request: Request,
    exc: Exception,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if not is_api_request(request):
        pages = importlib.import_module("occupant.web.pages")
        hook: Callable[[Request, OccupantError], Response | None] | None = getattr(
            pages, "html_error_response", None
        )
        if hook is not None:
            answer = hook(
                request,
                exc if isinstance(exc, OccupantError) else _as_domain_error(status, code, message, details),
            )
            if answer is not None:
                return answer
    body = {"code": code, "message": message, "details": details}
    return JSONResponse(body, status_code=status, headers=headers)


def _as_domain_error(status: int, code: str, message: str, details: Any) -> OccupantError:
    """Any error, in the shape the console's error page takes."""
    err = OccupantError(message, details=details)
    err.status, err.code = status, code
    return err


def field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """pydantic's errors as [{field, code, message}], the field a dotted path without ``body``/``query``."""
    out = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] in _LOCATIONS:
            loc = loc[1:]
        kind = err.get("type", "")
        code = _FIELD_CODES.get(kind, "invalid")
        ctx = err.get("ctx") or {}
        if kind == "string_too_short":
            code = "required" if ctx.get("min_length") == 1 else "too_short"
        message = {"required": "This field is required.", "unknown_field": "Unknown field."}.get(
            code, str(err.get("msg", "Not valid.")).rstrip(".") + "."
        )
        out.append({"field": ".".join(loc) or "body", "code": code, "message": message})
    return out


def occupant_error_response(request: Request, exc: OccupantError) -> Response:
    """The answer to a domain error: ``WWW-Authenticate`` on 401, ``Retry-After`` on 429.

    Routes that must commit what led to the error (a counted sign-in failure, a session revoked for a
    reused refresh token) return this instead of raising, so the request's session still commits.
    """
    headers: dict[str, str] | None = None
    if isinstance(exc, NotAuthenticated):
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(exc, RateLimited) and isinstance(exc.details, dict) and "retry_after" in exc.details:
        headers = {"Retry-After": str(int(exc.details["retry_after"]))}
    return error_response(request, exc, exc.status, exc.code, exc.message, exc.details, headers)


async def _occupant_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OccupantError)
    return occupant_error_response(request, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if any(err.get("type") == "json_invalid" for err in exc.errors()):
        return error_response(request, exc, 400, "invalid_json", "The request body is not valid JSON.")
    return error_response(
        request, exc, 422, "validation_error", "Some fields are invalid.", field_errors(exc)
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error")
    message = _HTTP_MESSAGES.get(status) or (str(exc.detail) if exc.detail else "The request failed.")
    return error_response(request, exc, status, code, message, headers=dict(exc.headers or {}) or None)


async def _stale(request: Request, exc: Exception) -> Response:
    err = PreconditionFailed()
    return error_response(request, exc, err.status, err.code, err.message)


async def _data_error(request: Request, exc: Exception) -> Response:
    # The database refused a value (a NUL character, a number out of range): bad input, not a server fault.
    log.info("api.data_error", extra={"path": request.url.path})
    return error_response(
        request,
        exc,
        422,
        "validation_error",
        "A value is not valid (for example it contains a NUL character or is out of range).",
        [],
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("api.internal_error", exc_info=exc)
    return error_response(request, exc, 500, "internal_error", "Something went wrong on our side.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OccupantError, _occupant_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StaleDataError, _stale)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(Exception, _internal_error)
