"""HTML answers for errors on console pages: a clear page (or, for htmx, a message), never a traceback.

API paths keep their JSON errors: these handlers hand ``/api/`` and ``/scim/`` requests to whatever
handler was installed before them (the API's), or answer with the error's JSON.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from occupant.kit.errors import FieldErrors, NotFound, OccupantError
from occupant.web.deps import CsrfFailed, SignInRequired
from occupant.web.render import is_htmx, render, sign_in_url

log = logging.getLogger(__name__)

Handler = Callable[[Request, Any], Response | Awaitable[Response]]
MACHINE_PREFIXES = ("/api/", "/scim/")


class AreaErrorPage(Protocol):
    def __call__(
        self, request: Request, status: int, message: str, *, details: list[str] | None, code: str | None
    ) -> Response: ...


# Page areas with their own layout (the occupier portal): path prefix -> how it shows an error.
_AREA_ERROR_PAGES: dict[str, AreaErrorPage] = {}


def add_area_error_page(prefix: str, page: AreaErrorPage) -> None:
    """Errors on pages under ``prefix`` (e.g. ``/portal``) are shown by ``page`` instead of the console's."""
    _AREA_ERROR_PAGES[prefix.rstrip("/")] = page


def _area_page(request: Request) -> AreaErrorPage | None:
    path = request.url.path
    for prefix, page in _AREA_ERROR_PAGES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return page
    return None


_TITLES = {
    400: "Request not valid",
    401: "Sign in required",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    412: "Changed meanwhile",
    422: "Check the form",
    429: "Too many attempts",
    500: "Something went wrong",
}


def is_machine_path(request: Request) -> bool:
    return request.url.path.startswith(MACHINE_PREFIXES) or request.url.path in ("/api", "/scim")


def error_page(
    request: Request, status: int, message: str, *, details: list[str] | None = None, code: str | None = None
) -> Response:
    """The error as a page, or for htmx an alert swapped into the page's message region."""
    area = _area_page(request)
    if area is not None:
        return area(request, status, message, details=details, code=code)
    context = {
        "status": status,
        "title": _TITLES.get(status, "Error"),
        "message": message,
        "details": details or [],
        "code": code,
    }
    if is_htmx(request):
        return render(
            request,
            "_error.html",
            {**context, "fragment": True},
            partial="_error_alert.html",
            status_code=status,
            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
        )
    return render(request, "_error.html", context, status_code=status)


def html_error_response(request: Request, exc: OccupantError) -> Response | None:
    """A domain error on a console page (the API's handlers call this for non-API paths).

    Declines (None) for machine paths such as ``/scim/``, which answer in JSON.
    """
    if is_machine_path(request):
        return None
    return _page_for(request, exc)


def _page_for(request: Request, exc: OccupantError) -> Response:
    details = [e["message"] for e in exc.errors] if isinstance(exc, FieldErrors) else None
    if isinstance(exc, FieldErrors) and details == [exc.message]:
        details = None
    return error_page(request, exc.status, exc.message, details=details, code=exc.code)


async def _delegate(previous: Handler | None, fallback: Handler, request: Request, exc: Any) -> Response:
    handler = previous or fallback
    result = handler(request, exc)
    if inspect.isawaitable(result):
        result = await result
    return result


def install_error_handlers(app: FastAPI) -> None:
    previous_domain = app.exception_handlers.get(OccupantError)
    previous_http = app.exception_handlers.get(StarletteHTTPException)
    previous_validation = app.exception_handlers.get(RequestValidationError)
    previous_unexpected = app.exception_handlers.get(Exception)

    def domain_json(_request: Request, exc: OccupantError) -> Response:
        return JSONResponse(exc.as_dict(), status_code=exc.status)

    def internal_json(_request: Request, exc: Exception) -> Response:
        log.error("api.unexpected_error", exc_info=exc)
        return JSONResponse({"code": "internal_error", "message": "Something went wrong."}, status_code=500)

    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OccupantError)
        if is_machine_path(request):
            return await _delegate(previous_domain, domain_json, request, exc)
        if exc.status >= 500:
            log.error("web.domain_error", extra={"code": exc.code})
        return _page_for(request, exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if is_machine_path(request):
            return await _delegate(previous_http, http_exception_handler, request, exc)
        if exc.status_code == 404:
            return _page_for(request, NotFound("There is no page at this address."))
        if exc.status_code == 405:
            return error_page(request, 405, "This page cannot be used that way.")
        return error_page(request, exc.status_code, str(exc.detail))

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if is_machine_path(request):
            return await _delegate(
                previous_validation,
                request_validation_exception_handler,
                request,
                exc,
            )
        return error_page(request, 400, "The address or the form was not valid.")

    async def on_sign_in_required(request: Request, _exc: Exception) -> Response:
        if is_htmx(request):
            current = urlsplit(request.headers.get("hx-current-url", ""))
            path = current.path + (f"?{current.query}" if current.query else "")
            return Response(status_code=204, headers={"HX-Redirect": sign_in_url(path)})
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            path = "/"
        return Response(status_code=303, headers={"Location": sign_in_url(path)})

    async def on_csrf_failed(request: Request, _exc: Exception) -> Response:
        return error_page(
            request,
            403,
            "This form has expired or did not come from this site. Reload the page and try again.",
            code="csrf_failed",
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        if is_machine_path(request):
            return await _delegate(previous_unexpected, internal_json, request, exc)
        log.error("web.unexpected_error", exc_info=exc)
        return error_page(
            request,
            500,
            "Something went wrong on our side. Try again; if it keeps "
            "happening, tell your administrator the request id shown below.",
        )

    app.add_exception_handler(OccupantError, on_domain_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(SignInRequired, on_sign_in_required)
    app.add_exception_handler(CsrfFailed, on_csrf_failed)
    app.add_exception_handler(Exception, on_unexpected)
