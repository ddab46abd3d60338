"""Portal pages for getting in: sign in and out, the invitation and password-reset links, "forgot
password", changing one's password (forced after an administrator's reset), and the language switch.

Forms shown before a session carry the pre-session CSRF token (``web.presession``). Errors never tell
whether an email has an account.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from occupant.accounts import service as accounts
from occupant.accounts.errors import AppNotAvailable, LinkInvalid
from occupant.accounts.models import AccountRole, App, TokenPurpose
from occupant.kit import i18n
from occupant.kit.errors import FieldErrors, NotAuthenticated, RateLimited
from occupant.kit.i18n import N_
from occupant.kit.settings import get_settings
from occupant.users import service as users
from occupant.users.schemas import OwnDetailsUpdate
from occupant.web import forms
from occupant.web.deps import ConsoleDb, form_data
from occupant.web.forms import Form
from occupant.web.presession import PRE_SESSION_COOKIE, pre_session_ok, pre_session_token, with_pre_session
from occupant.web.render import redirect, safe_next

from .deps import PORTAL_COOKIE, PortalContext, current, portal, portal_any
from .render import add_errors, error_text, gettext, language, render

router = APIRouter(prefix="/portal", include_in_schema=False)

HOME = "/portal"
SIGN_IN = "/portal/sign-in"


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _home_for(ctx: PortalContext) -> str:
    return "/portal/users" if ctx.is_admin else "/portal/me"


def _portal_next(value: str | None) -> str:
    """Only a portal page (never another site, nor a console page)."""
    target = safe_next(value, HOME)
    return target if target == HOME or target.startswith(HOME + "/") else HOME


@router.get("")
def home(request: Request, db: ConsoleDb, ctx: PortalContext = Depends(portal)) -> Response:
    """The start page: user management for an occupier admin, their own details for an occupier user."""
    return redirect(request, _home_for(ctx))


# --- sign in and out ----------------------------------------------------------------------------------


def _sign_in_page(
    request: Request, form: Form, *, next_url: str, error: str | None = None, status_code: int = 200
) -> Response:
    token = pre_session_token(request)
    context = {"form": form, "next": next_url, "error": error, "pre_csrf": token}
    headers = {}
    if status_code == 429 and (retry := getattr(request.state, "retry_after", None)):
        headers["Retry-After"] = str(retry)
    response = render(request, "account/sign_in.html", context, status_code=status_code, headers=headers)
    return with_pre_session(request, response, token)


@router.get("/sign-in")
def sign_in_form(request: Request, db: ConsoleDb, next: str = "") -> Response:
    next_url = _portal_next(next)
    ctx = current(request, db)
    if ctx is not None and not ctx.must_change_password:
        return redirect(request, next_url if next else _home_for(ctx))
    return _sign_in_page(request, Form(), next_url=next_url)


def _rate_limited_text(request: Request, exc: RateLimited) -> str:
    seconds = int((exc.details or {}).get("retry_after") or 60)
    request.state.retry_after = seconds
    minutes = max(1, -(-seconds // 60))
    translations = i18n.get_translations(language(request))
    return translations.ngettext(
        "Too many attempts. Try again in %(num)d minute.",
        "Too many attempts. Try again in %(num)d minutes.",
        minutes,
    ) % {"num": minutes}


@router.post("/sign-in")
def sign_in(request: Request, db: ConsoleDb, data: FormData = Depends(form_data)) -> Response:
    next_url = _portal_next(forms.text(data, "next"))
    form = Form(values={"email": forms.text(data, "email")})
    if not pre_session_ok(request, data):
        error = gettext(request, N_("The form expired. Please sign in again."))
        return _sign_in_page(request, form, next_url=next_url, error=error, status_code=403)
    password = data.get("password")
    try:
        signed = accounts.sign_in(
            db,
            email=form.values["email"],
            password=password if isinstance(password, str) else "",
            app=App.PORTAL,
            address=_address(request),
            user_agent=request.headers.get("user-agent"),
        )
    except RateLimited as exc:
        return _sign_in_page(
            request, form, next_url=next_url, error=_rate_limited_text(request, exc), status_code=429
        )
    except NotAuthenticated as exc:
        # The failure is counted (the request commits): that is what slows down password guessing.
        error = error_text(request, exc.code, exc.message)
        return _sign_in_page(request, form, next_url=next_url, error=error, status_code=401)
    except AppNotAvailable:
        error = gettext(
            request,
            N_(
                "Your account does not give access to the portal. Ask your organisation's portal admin "
                "to invite you."
            ),
        )
        return _sign_in_page(request, form, next_url=next_url, error=error, status_code=403)
    if signed.must_change_password:
        target = "/portal/change-password"
    elif next_url != HOME:
        target = next_url
    else:
        target = "/portal/users" if signed.account.role == AccountRole.ADMIN else "/portal/me"
    settings = get_settings()
    response = redirect(request, target)
    response.set_cookie(
        PORTAL_COOKIE,
        signed.token,
        max_age=settings.session_hours * 3600,
        path=HOME,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    response.delete_cookie(PRE_SESSION_COOKIE, path="/")
    return response


@router.post("/sign-out")
def sign_out(request: Request, db: ConsoleDb, ctx: PortalContext = Depends(portal_any)) -> Response:
    """End this browser's session on the server, so the cookie is worthless even if it was copied."""
    accounts.sign_out(db, ctx.session)
    response = redirect(request, SIGN_IN, flash="portal_signed_out")
    response.delete_cookie(PORTAL_COOKIE, path=HOME)
    return response


# --- forgot password ----------------------------------------------------------------------------------


def _forgot_page(
    request: Request,
    form: Form,
    *,
    sent: bool = False,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    token = pre_session_token(request)
    context = {
        "form": form,
        "sent": sent,
        "error": error,
        "pre_csrf": token,
        "hours": get_settings().invitation_hours,
    }
    headers = {}
    if status_code == 429 and (retry := getattr(request.state, "retry_after", None)):
        headers["Retry-After"] = str(retry)
    response = render(request, "account/forgot.html", context, status_code=status_code, headers=headers)
    return with_pre_session(request, response, token)


@router.get("/forgot")
def forgot_form(request: Request) -> Response:
    return _forgot_page(request, Form())


@router.post("/forgot")
def forgot(request: Request, db: ConsoleDb, data: FormData = Depends(form_data)) -> Response:
    """The same answer whether or not the email has an account (the service sends nothing when not)."""
    form = Form(values={"email": forms.text(data, "email")})
    if not pre_session_ok(request, data):
        error = gettext(request, N_("The form expired. Please try again."))
        return _forgot_page(request, form, error=error, status_code=403)
    if not form.values["email"]:
        form.errors["email"] = [gettext(request, N_("Enter your email address."))]
        return _forgot_page(request, form, status_code=422)
    try:
        accounts.request_password_reset(
            db, email=form.values["email"], operator_id=None, address=_address(request)
        )
    except RateLimited as exc:
        return _forgot_page(request, form, error=_rate_limited_text(request, exc), status_code=429)
    return _forgot_page(request, Form(), sent=True)


# --- invitation and reset links -----------------------------------------------------------------------

_LINKS = {
    TokenPurpose.INVITATION: (
        N_("Welcome! Choose your password"),
        N_("Choose the password you will use to sign in to the portal and the mobile app."),
        N_("Set password"),
    ),
    TokenPurpose.PASSWORD_RESET: (
        N_("Choose a new password"),
        N_("Choose a new password for the portal and the mobile app. Your old password stops working."),
        N_("Set new password"),
    ),
}


def _speak_holders_language(request: Request, db: Session, token: str, purpose: TokenPurpose) -> None:
    """A valid link's pages speak the language of the person it was emailed to (their email was in it),
    unless the visitor chose another one with the language switch."""
    try:
        link = accounts.check_link(db, token, purpose)
    except LinkInvalid:
        return
    _, holder = accounts.link_holder(db, link)
    request.state.lang = i18n.request_language(request, user_language=holder.language)


def _link_invalid_page(request: Request, exc: LinkInvalid, purpose: TokenPurpose) -> Response:
    context = {
        "reason": exc.reason,
        "invitation": purpose == TokenPurpose.INVITATION,
        "hours": get_settings().invitation_hours,
    }
    return render(request, "account/link_invalid.html", context, status_code=exc.status)


def _link_page(
    request: Request,
    db: Session,
    token: str,
    purpose: TokenPurpose,
    form: Form,
    *,
    status_code: int = 200,
) -> Response:
    try:
        link = accounts.check_link(db, token, purpose)
    except LinkInvalid as exc:
        return _link_invalid_page(request, exc, purpose)
    heading, intro, button = _LINKS[purpose]
    pre = pre_session_token(request)
    segment = "invitation" if purpose == TokenPurpose.INVITATION else "reset"
    context = {
        "form": form,
        "pre_csrf": pre,
        "heading": gettext(request, heading),
        "intro": gettext(request, intro),
        "button": gettext(request, button),
        "action": f"/portal/{segment}/{token}",
        "email": accounts.link_holder(db, link)[1].email,  # for password managers; not shown
    }
    response = render(request, "account/set_password.html", context, status_code=status_code)
    # The link is a secret: never sent on to another site, never kept by a cache.
    response.headers["Referrer-Policy"] = "no-referrer"
    return with_pre_session(request, response, pre)


def _set_password(
    request: Request, db: Session, token: str, purpose: TokenPurpose, data: FormData
) -> Response:
    form = Form()
    if not pre_session_ok(request, data):
        form.errors["_form"] = [gettext(request, N_("The form expired. Please try again."))]
        return _link_page(request, db, token, purpose, form, status_code=403)
    password, confirm = data.get("password"), data.get("password_confirm")
    password = password if isinstance(password, str) else ""
    try:
        if not password:
            raise FieldErrors.single("password", "required", "Choose a password.")
        if password != confirm:
            raise FieldErrors.single("password_confirm", "mismatch", "The two passwords are not the same.")
        accounts.check_link(db, token, purpose)
        accounts.set_password_with_link(db, token, password, address=_address(request))
    except LinkInvalid as exc:
        return _link_invalid_page(request, exc, purpose)
    except FieldErrors as exc:
        db.rollback()
        add_errors(request, form, exc)
        return _link_page(request, db, token, purpose, form, status_code=422)
    response = redirect(request, SIGN_IN, flash="portal_password_set")
    response.delete_cookie(PORTAL_COOKIE, path=HOME)
    return response


@router.get("/invitation/{token}")
def invitation_form(request: Request, token: str, db: ConsoleDb) -> Response:
    _speak_holders_language(request, db, token, TokenPurpose.INVITATION)
    return _link_page(request, db, token, TokenPurpose.INVITATION, Form())


@router.post("/invitation/{token}")
def accept_invitation(
    request: Request, token: str, db: ConsoleDb, data: FormData = Depends(form_data)
) -> Response:
    _speak_holders_language(request, db, token, TokenPurpose.INVITATION)
    return _set_password(request, db, token, TokenPurpose.INVITATION, data)


@router.get("/reset/{token}")
def reset_form(request: Request, token: str, db: ConsoleDb) -> Response:
    _speak_holders_language(request, db, token, TokenPurpose.PASSWORD_RESET)
    return _link_page(request, db, token, TokenPurpose.PASSWORD_RESET, Form())


@router.post("/reset/{token}")
def reset(request: Request, token: str, db: ConsoleDb, data: FormData = Depends(form_data)) -> Response:
    _speak_holders_language(request, db, token, TokenPurpose.PASSWORD_RESET)
    return _set_password(request, db, token, TokenPurpose.PASSWORD_RESET, data)


# --- change password -------------------------------------------------------------------------------


def _change_page(request: Request, ctx: PortalContext, form: Form, *, status_code: int = 200) -> Response:
    context = {
        "form": form,
        "forced": ctx.must_change_password,
        "email": ctx.user.email,
        "section": "password",
    }
    return render(request, "account/change_password.html", context, status_code=status_code)


@router.get("/change-password")
def change_password_form(
    request: Request, db: ConsoleDb, ctx: PortalContext = Depends(portal_any)
) -> Response:
    return _change_page(request, ctx, Form())


@router.post("/change-password")
def change_password(
    request: Request,
    db: ConsoleDb,
    ctx: PortalContext = Depends(portal_any),
    data: FormData = Depends(form_data),
) -> Response:
    """A new password; the user's other sessions end (this browser stays signed in). In the forced step
    (after an administrator's reset) the user has just signed in, so the current password is not asked."""
    current_pw, new_pw, confirm = (
        value if isinstance(value, str) else ""
        for value in (data.get(name) for name in ("current_password", "new_password", "password_confirm"))
    )
    form = Form()
    try:
        if new_pw != confirm:
            raise FieldErrors.single("password_confirm", "mismatch", "The two passwords are not the same.")
        accounts.change_own_password(
            db,
            ctx.account,
            current=None if ctx.must_change_password else current_pw,
            new=new_pw,
            keep_session_id=ctx.session.id,
        )
    except FieldErrors as exc:
        # Nothing was changed; a wrong current password is counted like a failed sign-in (kept: no rollback).
        add_errors(request, form, exc)
        return _change_page(request, ctx, form, status_code=422)
    except RateLimited as exc:
        form.errors["current_password"] = [_rate_limited_text(request, exc)]
        return _change_page(request, ctx, form, status_code=429)
    ctx.must_change_password = False
    return redirect(request, _home_for(ctx), flash="portal_password_changed")


# --- language ---------------------------------------------------------------------------------------


def remember_language(response: Response, lang: str) -> Response:
    """The visitor's language choice, kept in the ``occupant_lang`` cookie (it wins over everything)."""
    response.set_cookie(
        i18n.LANG_COOKIE,
        lang,
        max_age=i18n.LANG_COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=get_settings().cookie_secure,
    )
    return response


@router.get("/language")
def choose_language(request: Request, lang: str = "", next: str = "") -> Response:
    """Signed out: the choice is kept in a cookie only."""
    target = _portal_next(next)
    if lang not in i18n.LANGUAGES:
        return redirect(request, target)
    return remember_language(redirect(request, target), lang)


@router.post("/language")
def save_language(
    request: Request,
    db: ConsoleDb,
    ctx: PortalContext = Depends(portal_any),
    data: FormData = Depends(form_data),
) -> Response:
    """Signed in: the choice is kept in a cookie and saved as the user's language (portal and emails)."""
    lang, target = forms.text(data, "lang"), _portal_next(forms.text(data, "next"))
    if lang not in i18n.LANGUAGES:
        return redirect(request, target)
    if lang != ctx.user.language:
        users.update_own_details(db, ctx.user, OwnDetailsUpdate(language=lang), actor=ctx.actor)
    return remember_language(redirect(request, target), lang)
