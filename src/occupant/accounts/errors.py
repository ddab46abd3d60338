"""Errors of app accounts, each with a stable code (the API answers ``{code, message, details}``)."""

from __future__ import annotations

from typing import Literal

from occupant.kit.errors import FieldErrors, OccupantError, PermissionDenied

LinkReason = Literal["expired", "used", "unknown"]

_LINK_MESSAGES: dict[str, str] = {
    "expired": "This link has expired. Ask for a new one.",
    "used": "This link has already been used. Sign in, or ask for a new link.",
    "unknown": "This link is not valid. Ask for a new one.",
}


class LinkInvalid(OccupantError):
    """An invitation or password-reset link that cannot be used (410 Gone): ``details.reason`` is
    ``expired``, ``used`` or ``unknown`` (never issued, replaced by a newer link, or its account is
    deactivated). The page offers to ask for a new one."""

    code = "link_invalid"
    status = 410

    def __init__(self, reason: LinkReason) -> None:
        super().__init__(_LINK_MESSAGES[reason], details={"reason": reason})
        self.reason = reason


class PasswordChangeRequired(PermissionDenied):
    """The password was right, but an administrator requires a new one before the apps may be used."""

    code = "password_change_required"
    default_message = (
        "You must choose a new password before you can continue. Sign in to the portal, or use "
        "“Forgot password”, to choose one."
    )


class AppNotAvailable(PermissionDenied):
    """The password was right, but the account is not invited to this app (or the occupier stopped
    offering it)."""

    code = "app_not_available"
    default_message = "Your account does not give access to this app."


class CannotDeleteAdmin(PermissionDenied):
    """Occupier admins cannot delete users whose app-account role is admin (operator staff can)."""

    code = "cannot_delete_admin"
    default_message = "Occupier admins cannot be deleted from the portal; change their role to user first."


class AppNotOffered(FieldErrors):
    """An invitation to an app that the user's occupier does not offer."""

    code = "app_not_offered"

    def __init__(self, fields: list[str]) -> None:
        super().__init__(
            [
                {
                    "field": field,
                    "code": "app_not_offered",
                    "message": "The occupier does not offer this app.",
                }
                for field in fields
            ],
            "The occupier does not offer this app.",
        )
