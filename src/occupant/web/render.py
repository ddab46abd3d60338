"""Rendering console pages: one helper decides between the full page and an htmx partial.

A handler names its full-page template and, optionally, the partial an htmx request wants: one
template, or a map from the request's ``HX-Target`` to a template. History restores and boosted
requests always get the full page, so every partial has a full-page fallback at the same URL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from occupant.authz.actor import Role
from occupant.authz.scope import Perm, can
from occupant.kit.context import current_request_id
from occupant.kit.settings import get_settings
from occupant.kit.validation import LANGUAGES
from occupant.web import static_assets

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True

FLASH_COOKIE = "occupant_flash"
# Outcome messages carried over a redirect: the cookie holds only the key, never text or personal data.
FLASH_MESSAGES = {
    "signed_out": "You have signed out.",
    "user_created": "The user was added.",
    "user_deleted": "The user was deleted.",
    "user_updated": "The user's details were saved.",
    "email_changed": "The email was changed; the old and the new address are being notified.",
    "user_deactivated": "The user was deactivated: all of their access is suspended.",
    "user_reactivated": "The user was reactivated.",
    "groups_saved": "Access groups saved.",
    "user_created_with_wifi": "The user was added; their Wi-Fi password is on its way by email.",
    "wifi_created": "The Wi-Fi account was created; the password is on its way by email.",
    "wifi_deactivated": "Wi-Fi was deactivated: the network refuses the user from the next attempt.",
    "wifi_activated": "Wi-Fi was activated; a new password is on its way by email.",
    "wifi_password_reset": "A new Wi-Fi password is on its way by email; the old one no longer works.",
    "wifi_saved": "The Wi-Fi settings were saved.",
    "wifi_session_cleared": "The session was cleared.",
    "site_created": "The site was added.",
    "site_saved": "The site was saved.",
    "site_deleted": "The site was deleted.",
    "occupier_created": "The occupier was added.",
    "occupier_saved": "The occupier was saved.",
    "decommission_started": "Decommissioning has started; the occupier's users are being deleted.",
    "group_created": "The group was created.",
    "group_saved": "The group was saved.",
    "group_deleted": "The group was deleted.",
    "api_key_revoked": "The API key was revoked.",
    "welcome": "Welcome to Occupant.",
}
ROLE_LABELS = {
    Role.OPERATOR_ADMIN: "Operator admin",
    Role.SITE_MANAGER: "Site manager",
    Role.OCCUPIER_ADMIN: "Occupier admin",
    Role.OCCUPIER_USER: "Occupier user",
}


def is_htmx(request: Request) -> bool:
    """An htmx request that wants a fragment (not a boosted navigation or a history restore)."""
    headers = request.headers
    return (
        headers.get("hx-request") == "true"
        and headers.get("hx-boosted") != "true"
        and headers.get("hx-history-restore-request") != "true"
    )


def hx_target(request: Request) -> str | None:
    return request.headers.get("hx-target") if is_htmx(request) else None


def _humanize(value: Any) -> str:
    return str(value or "").replace("_", " ").capitalize()


def _datetime(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _blank(value: Any) -> Any:
    return "" if value is None else value


templates.env.filters["humanize"] = _humanize
templates.env.filters["blank"] = _blank
templates.env.globals["field_labels"] = {
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "job_title": "Job title",
    "mobile": "Mobile",
    "direct_line": "Direct line",
    "language": "Language",
    "employee_number": "Employee number",
    "username": "Username",
    "external_id": "External id",
    "group_ids": "Access groups",
    "site_ids": "Sites",
    "primary_site_id": "Primary site",
    "default_wifi_device_limit": "Default Wi-Fi device limit",
    "nas_identifiers": "RADIUS NAS identifiers",
    "wifi_vlan": "Wi-Fi Secure VLAN",
    "guest_vlan": "Guest VLAN",
    "create_wifi": "Wi-Fi account",
    "homesite_id": "Wi-Fi homesite",
    "device_limit": "Concurrent device limit",
    "password_confirm": "Confirm password",
    "user_ids": "Members",
    "operator_name": "Organisation name",
    "site_id": "Site",
    "occupier_id": "Occupier",
}
templates.env.filters["datetime"] = _datetime


def base_context(request: Request) -> dict[str, Any]:
    ctx = getattr(request.state, "staff_ctx", None)
    actor = ctx.actor if ctx is not None else None
    return {
        "request": request,
        "me": ctx,
        "role_label": ROLE_LABELS.get(actor.role) if actor else None,
        "can": (lambda perm: actor is not None and can(actor, Perm(perm))),
        "htmx_available": static_assets.htmx_available(),
        "languages": LANGUAGES,
        "flash": getattr(request.state, "flash", None),
        "flash_error": getattr(request.state, "flash_error", None),
        "mailbox_enabled": not get_settings().smtp_url,
        "request_id": current_request_id(),
    }


def set_flash(request: Request, key: str) -> None:
    """Show an outcome message on the page being rendered now."""
    request.state.flash = FLASH_MESSAGES.get(key, key)


@dataclass(frozen=True)
class Pages:
    """One set of pages (the console, the occupier portal): its templates, what every page's context
    holds, and the text of an outcome message carried over a redirect (by key, in the flash cookie)."""

    templates: Jinja2Templates
    base_context: Callable[[Request], dict[str, Any]]
    flash_text: Callable[[Request, str], str | None]

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        partial: str | Mapping[str, str] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """The full page ``template``, or for an htmx request the ``partial`` it asked for.

        ``partial`` is one template, or a map from ``HX-Target`` ids to templates; a request whose target
        is not in the map gets the full page. A partial also carries the outcome message (out of band).
        """
        flash_key = request.cookies.get(FLASH_COOKIE)
        if flash_key and getattr(request.state, "flash", None) is None:
            text = self.flash_text(request, flash_key)
            if text is not None:
                request.state.flash = text
        chosen = template
        fragment = False
        if is_htmx(request) and partial is not None:
            if isinstance(partial, str):
                chosen, fragment = partial, True
            else:
                target = request.headers.get("hx-target") or ""
                if target in partial:
                    chosen, fragment = partial[target], True
        full_context = {**self.base_context(request), **(context or {}), "fragment": fragment}
        body = self.templates.get_template(chosen).render(full_context)
        if fragment and (full_context["flash"] or full_context["flash_error"]):
            body += self.templates.get_template("_flash.html").render({**full_context, "oob": True})
        response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
        response.headers["Vary"] = "HX-Request, HX-Target"
        response.headers["Cache-Control"] = "no-store"
        if flash_key:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response


CONSOLE_PAGES = Pages(templates, base_context, lambda _request, key: FLASH_MESSAGES.get(key))


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    partial: str | Mapping[str, str] | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A console page (see ``Pages.render``)."""
    return CONSOLE_PAGES.render(
        request, template, context, partial=partial, status_code=status_code, headers=headers
    )


def redirect(request: Request, url: str, *, flash: str | None = None) -> Response:
    """303 to ``url`` (for htmx, ``HX-Redirect`` so the browser navigates), with an outcome message."""
    if is_htmx(request):
        response: Response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE,
            flash,
            max_age=60,
            path="/",
            httponly=True,
            samesite="lax",
            secure=get_settings().cookie_secure,
        )
    return response


def safe_next(value: str | None, default: str = "/") -> str:
    """Only a path on this site: never another host, a scheme, or a protocol-relative URL."""
    if not value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ch in value for ch in "\r\n\\"):
        return default
    return value


def sign_in_url(next_path: str | None) -> str:
    target = safe_next(next_path, "")
    return "/sign-in" + (f"?next={quote(target, safe='')}" if target and target != "/" else "")
