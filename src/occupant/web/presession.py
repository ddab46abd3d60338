"""CSRF for forms shown before any session (sign-in, first-run set-up, the portal's password links).

A random value in a short-lived cookie that the form must echo (double submit).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from occupant.kit.security import new_token, tokens_equal
from occupant.kit.settings import get_settings
from occupant.web.deps import CSRF_FIELD

PRE_SESSION_COOKIE = "occupant_presession"


def pre_session_token(request: Request) -> str:
    """The browser's pre-session token, or a new one (set it with ``with_pre_session``)."""
    token = request.cookies.get(PRE_SESSION_COOKIE)
    return token if token and 20 <= len(token) <= 64 else new_token(nbytes=24)


def with_pre_session(request: Request, response: Response, token: str) -> Response:
    if request.cookies.get(PRE_SESSION_COOKIE) != token:
        response.set_cookie(
            PRE_SESSION_COOKIE,
            token,
            max_age=3600,
            path="/",
            httponly=True,
            samesite="lax",
            secure=get_settings().cookie_secure,
        )
    return response


def pre_session_ok(request: Request, data: FormData) -> bool:
    cookie, sent = request.cookies.get(PRE_SESSION_COOKIE), data.get(CSRF_FIELD)
    return bool(cookie and isinstance(sent, str) and tokens_equal(cookie, sent))
