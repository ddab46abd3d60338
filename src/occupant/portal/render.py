"""Rendering portal pages: the console's page machinery (``web.render.Pages``) with the portal's own
templates, in the visitor's language, and the portal's error pages and translated messages.

Every text a person reads goes through gettext. Texts that come from elsewhere (a domain error's message,
a form's field error) are translated by their stable code; an unknown code keeps its English message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from babel.support import Translations
from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from occupant.kit import i18n
from occupant.kit.context import current_request_id
from occupant.kit.errors import FieldErrors
from occupant.kit.i18n import N_
from occupant.web import static_assets
from occupant.web.forms import Form
from occupant.web.render import Pages, is_htmx
from occupant.web.render import templates as console_templates

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True
i18n.install_gettext(templates.env)
for _name in ("humanize", "blank", "datetime"):
    templates.env.filters[_name] = console_templates.env.filters[_name]

# Outcome messages carried over a redirect: the cookie holds only the key.
FLASH_MESSAGES = {
    "portal_signed_out": N_("You have signed out."),
    "portal_password_set": N_("Your password is set. Sign in with your email and your new password."),
    "portal_password_changed": N_("Your password was changed."),
    "portal_language_saved": N_("Your language was saved."),
    "portal_user_created": N_("The user was added."),
    "portal_user_created_invited": N_("The user was added; their invitations are on their way by email."),
    "portal_user_updated": N_("The changes were saved."),
    "portal_user_deleted": N_("The user was deleted."),
    "portal_invite_resent": N_("The invitation was sent again; the previous link no longer works."),
    "portal_details_saved": N_("Your details were saved."),
}

_TITLES = {
    400: N_("Request not valid"),
    401: N_("Sign in required"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not possible"),
    409: N_("Not possible now"),
    410: N_("Link no longer valid"),
    412: N_("Changed meanwhile"),
    422: N_("Check the form"),
    429: N_("Too many attempts"),
    500: N_("Something went wrong"),
}

# Domain errors by code: what the portal says instead of the service's English message.
_ERRORS = {
    "not_found": N_("There is nothing here, or it is not yours to see."),
    "permission_denied": N_("You do not have permission to do this."),
    "cannot_delete_admin": N_("Occupier admins cannot be deleted in the portal; ask your operator."),
    "not_authenticated": N_("Email or password is incorrect."),
    "rate_limited": N_("Too many attempts; wait and try again."),
    "csrf_failed": N_("This form has expired or did not come from this site. Reload the page and try again."),
    "action_in_progress": N_("An action is in progress for this user; try again when it has finished."),
    "occupier_decommissioned": N_("Your organisation is being closed down: its users cannot be changed."),
    "precondition_failed": N_(
        "Someone changed this user meanwhile. Reload the page and make your changes again."
    ),
    "invalid_state": N_("This is not possible in the current state."),
    "no_wifi_account": N_("This user has no Wi-Fi account."),
    "wifi_account_exists": N_("This user already has a Wi-Fi account."),
    "wifi_username_taken": N_(
        "This email address is already a Wi-Fi username on this service; the user needs another email "
        "address for Wi-Fi."
    ),
    "link_invalid": N_("This link can no longer be used."),
    "internal_error": N_(
        "Something went wrong on our side. Try again; if it keeps happening, tell your operator the "
        "request id shown below."
    ),
    "bad_request": N_("The address or the form was not valid."),
}

# Domain errors whose own message says more than their code: the service's English message -> the portal's.
_SPECIFIC_ERRORS = {
    "The user is deactivated; reactivate the user first.": N_(
        "This user is deactivated. Ask your operator to reactivate them first."
    ),
    "The app account is deactivated; activate it first.": N_(
        "This user's account is deactivated. Ask your operator to activate it first."
    ),
    "Only an account awaiting its first sign-in can be sent its invitation again.": N_(
        "There is no invitation to resend: this user has signed in already, or their account is deactivated."
    ),
    "You cannot delete yourself.": N_("You cannot delete yourself."),
    "You cannot change your own role; ask another admin.": N_(
        "You cannot change your own role; ask another admin."
    ),
}

# Field errors by code (services and form parsing).
_FIELD_ERRORS = {
    "required": N_("This field is required."),
    "missing": N_("This field is required."),
    "string_too_short": N_("This field is required."),
    "string_too_long": N_("This is too long."),
    "too_long": N_("This is too long."),
    "invalid_email": N_("This is not a valid email address."),
    "email_taken": N_("Another user already has this email address."),
    "invalid_phone": N_("This is not a valid phone number."),
    "invalid_language": N_("Choose one of the languages offered."),
    "username_taken": N_("This username is already in use."),
    "external_id_taken": N_("This external id is already in use."),
    "invalid_homesite": N_("Choose one of your organisation's sites."),
    "invalid_device_limit": N_("Enter a number within the limits shown."),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "greater_than_equal": N_("Enter a number within the limits shown."),
    "less_than_equal": N_("Enter a number within the limits shown."),
    "too_short": N_("Use at least 10 characters."),
    "password_is_email": N_("Your password must not be your email address."),
    "mismatch": N_("The two passwords are not the same."),
    "incorrect": N_("Your current password is not correct."),
    "password_unchanged": N_("Choose a password different from your current one."),
    "app_not_offered": N_("Your organisation does not offer this app."),
    "invalid_role": N_("Choose a role."),
}

# Form fields, for the error summary at the top of a form.
FIELD_LABELS = {
    "first_name": N_("First name"),
    "last_name": N_("Last name"),
    "email": N_("Email"),
    "job_title": N_("Job title"),
    "mobile": N_("Mobile"),
    "direct_line": N_("Direct line"),
    "language": N_("Language"),
    "password": N_("New password"),  # the set-password page's (sign-in errors are not per field)
    "password_confirm": N_("Confirm password"),
    "current_password": N_("Current password"),
    "new_password": N_("New password"),
    "wifi": N_("Wi-Fi access"),
    "homesite_id": N_("Homesite"),
    "device_limit": N_("Concurrent device limit"),
    "role": N_("Role"),
    "invite_portal": N_("Send invite to portal"),
    "invite_mobile_app": N_("Send invite to mobile app"),
    "_form": N_("Form"),
}


def language(request: Request) -> str:
    """The request's language: the ``occupant_lang`` cookie, the signed-in user's language, the browser's."""
    lang = getattr(request.state, "lang", None)
    if lang is None:
        ctx = getattr(request.state, "portal_ctx", None)
        lang = i18n.request_language(request, user_language=ctx.language if ctx is not None else None)
        request.state.lang = lang
    return str(lang)


def translations(request: Request) -> Translations:
    return i18n.get_translations(language(request))


def gettext(request: Request, message: str, **variables: Any) -> str:
    text = translations(request).gettext(message)
    return text % variables if variables else text


def error_text(request: Request, code: str | None, message: str) -> str:
    """A domain error's message in the page's language (by the message when the portal knows it, else by
    its code), else its own English message."""
    known = _SPECIFIC_ERRORS.get(message) or _ERRORS.get(code or "")
    return gettext(request, known) if known else gettext(request, message)


def add_errors(request: Request, form: Form, exc: FieldErrors) -> Form:
    """``exc``'s field errors on ``form``, each translated by its code."""
    for item in exc.errors:
        known = _FIELD_ERRORS.get(item.get("code", ""))
        text = gettext(request, known) if known else gettext(request, item["message"])
        form.errors.setdefault(item.get("field") or "_form", []).append(text)
    return form


def base_context(request: Request) -> dict[str, Any]:
    ctx = getattr(request.state, "portal_ctx", None)
    lang = language(request)
    return {
        "request": request,
        "lang": lang,
        "me": ctx,
        "languages": i18n.LANGUAGE_NAMES,
        "field_labels": FIELD_LABELS,
        "htmx_available": static_assets.htmx_available(),
        "flash": getattr(request.state, "flash", None),
        "flash_error": getattr(request.state, "flash_error", None),
        "request_id": current_request_id(),
    }


def _flash_text(request: Request, key: str) -> str | None:
    message = FLASH_MESSAGES.get(key)
    return gettext(request, message) if message else None


PORTAL_PAGES = Pages(templates, base_context, _flash_text)
render = PORTAL_PAGES.render


def set_flash(request: Request, key: str) -> None:
    """Show an outcome message on the page being rendered now."""
    text = _flash_text(request, key)
    if text:
        request.state.flash = text


def error_page(
    request: Request, status: int, message: str, *, details: list[str] | None, code: str | None
) -> Response:
    """A portal error as a page in the portal's layout, or for htmx an alert in the message region."""
    if code is None and status == 404:
        code = "not_found"
    if code is None and status == 500:
        code = "internal_error"
    context = {
        "status": status,
        "title": gettext(request, _TITLES.get(status, N_("Error"))),
        "message": error_text(request, code, message),
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
