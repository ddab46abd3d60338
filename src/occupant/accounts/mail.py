"""The emails of app accounts: what each says, in the user's language. Links travel as sealed secrets."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from sqlalchemy.orm import Session

from occupant.accounts.models import App, TokenPurpose
from occupant.kit.settings import get_settings
from occupant.notify.service import Mail, queue_mail
from occupant.users.models import UserFacts

_LINK_PATHS = {TokenPurpose.INVITATION: "invitation", TokenPurpose.PASSWORD_RESET: "reset"}


def portal_url() -> str:
    return f"{get_settings().base_url.rstrip('/')}/portal"


def link_url(token: str, purpose: TokenPurpose) -> str:
    """``/portal/invitation/<token>`` or ``/portal/reset/<token>``."""
    return f"{portal_url()}/{_LINK_PATHS[purpose]}/{token}"


def _mail(user: UserFacts, template: str, context: dict[str, object], link: str | None = None) -> Mail:
    return Mail(
        operator_id=user.operator_id,
        to=user.email,
        template=template,
        language=user.language,
        context=dict(context),
        secrets={"link": link} if link else None,
        user_id=user.id,
    )


_APPS = tuple(App)


def _app_list(apps: Iterable[App]) -> list[str]:
    chosen = set(apps)
    return [app.value for app in _APPS if app in chosen]


def invitation(user: UserFacts, apps: Iterable[App], token: str, *, resent: bool) -> Mail:
    """``app_invitation``: the set-password link for the first app(s), or for a resend."""
    return _mail(
        user,
        "app_invitation",
        {
            "first_name": user.first_name,
            "occupier_name": user.occupier.name,
            "apps": _app_list(apps),
            "expires_hours": get_settings().invitation_hours,
            "resent": resent,
        },
        link_url(token, TokenPurpose.INVITATION),
    )


def second_invitation(user: UserFacts, app: App, *, password_set: bool) -> Mail:
    """``app_second_invitation``: a notice that the same password opens another app (no link)."""
    return _mail(
        user,
        "app_second_invitation",
        {
            "first_name": user.first_name,
            "app": app.value,
            "password_set": password_set,
            "portal_url": portal_url(),
        },
    )


def password_reset(user: UserFacts, token: str) -> Mail:
    return _mail(
        user,
        "password_reset",
        {"first_name": user.first_name, "expires_hours": get_settings().invitation_hours},
        link_url(token, TokenPurpose.PASSWORD_RESET),
    )


def welcome(user: UserFacts, apps: Iterable[App]) -> Mail:
    return _mail(
        user,
        "welcome",
        {
            "first_name": user.first_name,
            "occupier_name": user.occupier.name,
            "portal_url": portal_url(),
            "apps": _app_list(apps),
        },
    )


def send(session: Session, mail: Mail) -> None:
    queue_mail(session, **{f.name: getattr(mail, f.name) for f in dataclasses.fields(mail)})
