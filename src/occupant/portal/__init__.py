"""The occupier portal at ``/portal``: occupier admins manage their organisation's users, occupier users
see and edit their own details. Server-rendered with htmx like the operator console, whose machinery it
reuses (``web.render.Pages``, CSRF, forms, error handling), with its own layout and its texts in the
visitor's language (``kit.i18n``).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from occupant.web.errors import add_area_error_page
from occupant.web.render import is_htmx, safe_next

from .deps import PREFIX, PasswordChangeRequired, PortalSignInRequired
from .render import STATIC_DIR, error_page


def sign_in_url(next_path: str | None) -> str:
    target = safe_next(next_path, "")
    keep = target.startswith(PREFIX + "/") and target != PREFIX + "/sign-in"
    return PREFIX + "/sign-in" + (f"?next={quote(target, safe='')}" if keep else "")


async def _on_sign_in_required(request: Request, _exc: Exception) -> Response:
    """To the sign-in page, and back to the page asked for afterwards (for a GET)."""
    if is_htmx(request):
        current = urlsplit(request.headers.get("hx-current-url", ""))
        path = current.path + (f"?{current.query}" if current.query else "")
        return Response(status_code=204, headers={"HX-Redirect": sign_in_url(path)})
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Response(
        status_code=303, headers={"Location": sign_in_url(path if request.method == "GET" else "")}
    )


async def _on_password_change_required(request: Request, _exc: Exception) -> Response:
    target = PREFIX + "/change-password"
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return Response(status_code=303, headers={"Location": target})


def install(app: FastAPI) -> None:
    """Mount the portal's pages, static files and error pages on ``app``."""
    from .account import router as account
    from .bulk import router as bulk
    from .me import router as me
    from .user_forms import router as user_forms
    from .users import router as users

    app.mount(PREFIX + "/static", StaticFiles(directory=STATIC_DIR), name="portal-static")
    for router in (account, user_forms, bulk, users, me):
        app.include_router(router)
    add_area_error_page(PREFIX, error_page)
    app.add_exception_handler(PortalSignInRequired, _on_sign_in_required)
    app.add_exception_handler(PasswordChangeRequired, _on_password_change_required)
