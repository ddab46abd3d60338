"""Console pages for operator staff: sign in and out, the first-run set-up, and API keys.

Sign-in and set-up forms come before any session, so they carry their own CSRF token
(``web.presession``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from occupant.authz.scope import Perm, require
from occupant.kit.db import on_commit
from occupant.kit.errors import FieldErrors, NotAuthenticated, NotFound, RateLimited
from occupant.kit.settings import get_settings
from occupant.staff import service, setup
from occupant.staff.models import ApiKey, StaffSession
from occupant.web import forms
from occupant.web.deps import SESSION_COOKIE, ConsoleDb, StaffContext, console, form_data
from occupant.web.forms import Form
from occupant.web.presession import PRE_SESSION_COOKIE, pre_session_ok, pre_session_token, with_pre_session
from occupant.web.render import FLASH_COOKIE, redirect, render, safe_next

router = APIRouter(include_in_schema=False)


def _start_session(request: Request, response: Response, staff_session: StaffSession, token: str) -> Response:
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    response.delete_cookie(PRE_SESSION_COOKIE, path="/")
    return response


def _client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _sign_in_page(
    request: Request,
    db: Session,
    form: Form,
    *,
    next_url: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    token = pre_session_token(request)
    context = {
        "form": form,
        "next": next_url,
        "error": error,
        "pre_csrf": token,
        "no_staff": not service.has_any_staff(db),
    }
    return with_pre_session(
        request, render(request, "staff/sign_in.html", context, status_code=status_code), token
    )


@router.get("/sign-in")
def sign_in_form(request: Request, db: ConsoleDb, next: str = "") -> Response:
    """The sign-in form; with no staff yet, how to create the first admin instead."""
    next_url = safe_next(next, "/")
    if service.resolve_session(db, request.cookies.get(SESSION_COOKIE)) is not None:
        return redirect(request, next_url)
    return _sign_in_page(request, db, Form(), next_url=next_url)


@router.post("/sign-in")
def sign_in(request: Request, db: ConsoleDb, data: FormData = Depends(form_data)) -> Response:
    next_url = safe_next(forms.text(data, "next"), "/")
    form = Form(values={"email": forms.text(data, "email")})
    if not pre_session_ok(request, data):
        return _sign_in_page(
            request,
            db,
            form,
            next_url=next_url,
            status_code=403,
            error="The form expired. Please sign in again.",
        )
    password = data.get("password")
    try:
        staff_session, token = service.sign_in(
            db,
            email=form.values["email"],
            password=password if isinstance(password, str) else "",
            address=_client_address(request),
            user_agent=request.headers.get("user-agent"),
        )
    except (NotAuthenticated, RateLimited) as exc:
        # The failure is counted (the request commits): that is what slows down password guessing.
        return _sign_in_page(request, db, form, next_url=next_url, error=exc.message, status_code=exc.status)
    return _start_session(request, redirect(request, next_url), staff_session, token)


@router.post("/sign-out")
def sign_out(request: Request, db: ConsoleDb, ctx: StaffContext = Depends(console)) -> Response:
    """End this browser's session on the server, so the cookie is worthless even if it was copied."""
    service.sign_out(db, ctx.session, actor=ctx.actor)
    response = redirect(request, "/sign-in", flash="signed_out")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- first run -------------------------------------------------------------------------------------------


def _setup_page(request: Request, db: Session, token: str, form: Form, *, status_code: int = 200) -> Response:
    valid = not service.has_any_staff(db) and setup.check_setup_token(token)
    pre = pre_session_token(request)
    context = {
        "form": form,
        "token": token,
        "valid": valid,
        "pre_csrf": pre,
        "already_set_up": service.has_any_staff(db),
    }
    return with_pre_session(
        request, render(request, "staff/setup.html", context, status_code=status_code if valid else 403), pre
    )


@router.get("/setup")
def setup_form(request: Request, db: ConsoleDb, token: str = "") -> Response:
    """First run: the link printed by ``occupant serve`` opens this form to create the first admin."""
    return _setup_page(request, db, token, Form(values={"operator_name": "My workspace"}))


@router.post("/setup")
def run_setup(request: Request, db: ConsoleDb, data: FormData = Depends(form_data)) -> Response:
    token = forms.text(data, "token")
    form = Form(values={name: forms.text(data, name) for name in ("operator_name", "name", "email")})
    if service.has_any_staff(db) or not setup.check_setup_token(token) or not pre_session_ok(request, data):
        return _setup_page(request, db, token, form, status_code=403)
    password, confirm = data.get("password"), data.get("password_confirm")
    password = password if isinstance(password, str) else ""
    try:
        if password != confirm:
            raise FieldErrors.single("password_confirm", "mismatch", "The two passwords are not the same.")
        service.create_first_admin(
            db,
            email=form.values["email"],
            name=form.values["name"],
            password=password,
            operator_name=form.values["operator_name"] or "My workspace",
        )
        staff_session, session_token = service.sign_in(
            db, email=form.values["email"], password=password, address=_client_address(request)
        )
    except FieldErrors as exc:
        db.rollback()
        return _setup_page(request, db, token, form.add_errors(exc), status_code=422)
    on_commit(db, setup.discard_setup_token, key="staff.setup_token")
    response = _start_session(request, redirect(request, "/"), staff_session, session_token)
    response.set_cookie(FLASH_COOKIE, "welcome", max_age=60, path="/", httponly=True, samesite="lax")
    return response


# --- API keys ---------------------------------------------------------------------------------------------


def _keys_page(
    request: Request,
    db: Session,
    ctx: StaffContext,
    form: Form,
    *,
    created: tuple[ApiKey, str] | None = None,
    status_code: int = 200,
) -> Response:
    keys = list(
        db.scalars(
            select(ApiKey)
            .where(ApiKey.operator_id == ctx.actor.operator_id)
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())
        )
    )
    context = {"keys": keys, "form": form, "created": created, "section": "api_keys"}
    return render(request, "staff/api_keys.html", context, status_code=status_code)


@router.get("/api-keys")
def api_keys(request: Request, db: ConsoleDb, ctx: StaffContext = Depends(console)) -> Response:
    require(ctx.actor, Perm.MANAGE_API_KEYS)
    return _keys_page(request, db, ctx, Form())


@router.post("/api-keys")
def create_api_key(
    request: Request,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
    data: FormData = Depends(form_data),
) -> Response:
    """Create a key; it is shown on this response only (the database keeps its hash)."""
    form = Form(values={"name": forms.text(data, "name")})
    try:
        created = service.create_api_key(db, actor=ctx.actor, name=form.values["name"])
    except FieldErrors as exc:
        db.rollback()
        return _keys_page(request, db, ctx, form.add_errors(exc), status_code=422)
    return _keys_page(request, db, ctx, Form(), created=created, status_code=201)


@router.get("/api-keys/{key_id:int}/revoke")
def confirm_revoke(
    request: Request,
    key_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    require(ctx.actor, Perm.MANAGE_API_KEYS)
    key = db.get(ApiKey, key_id)
    if key is None or key.operator_id != ctx.actor.operator_id:
        raise NotFound()
    return render(request, "staff/confirm_revoke.html", {"key": key, "section": "api_keys"})


@router.post("/api-keys/{key_id:int}/revoke")
def revoke_api_key(
    request: Request,
    key_id: int,
    db: ConsoleDb,
    ctx: StaffContext = Depends(console),
) -> Response:
    service.revoke_api_key(db, key_id, actor=ctx.actor)
    return redirect(request, "/api-keys", flash="api_key_revoked")
