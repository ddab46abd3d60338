"""Domain errors. Each carries a stable code, an HTTP status and a human message."""

from __future__ import annotations

from typing import Any


class OccupantError(Exception):
    code = "error"
    status = 400
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class FieldErrors(OccupantError):
    """One or more fields are invalid: ``details`` is a list of {field, code, message}."""

    code = "validation_error"
    status = 422
    default_message = "Some fields are invalid."

    def __init__(self, errors: list[dict[str, str]], message: str | None = None) -> None:
        super().__init__(message, details=errors)
        self.errors = errors

    @classmethod
    def single(cls, field: str, code: str, message: str) -> FieldErrors:
        return cls([{"field": field, "code": code, "message": message}])


class EmailTaken(FieldErrors):
    code = "email_taken"
    status = 409

    def __init__(self, field: str = "email") -> None:
        super().__init__(
            [{"field": field, "code": "email_taken", "message": "Email must be unique within the operator."}],
            "Email must be unique within the operator.",
        )


class NotFound(OccupantError):
    code = "not_found"
    status = 404
    default_message = "Not found."


class PermissionDenied(OccupantError):
    code = "permission_denied"
    status = 403
    default_message = "You do not have permission to do this."


class NotAuthenticated(OccupantError):
    code = "not_authenticated"
    status = 401
    default_message = "Sign in or send a valid API key."


class Conflict(OccupantError):
    code = "conflict"
    status = 409


class OccupierDecommissioned(Conflict):
    code = "occupier_decommissioned"
    default_message = "The occupier is being or has been decommissioned; its users cannot be changed."


class ActionInProgress(Conflict):
    code = "action_in_progress"
    default_message = "An action is in progress for this user; try again when it has finished."


class InvalidState(Conflict):
    code = "invalid_state"
    default_message = "This action is not possible in the current state."


class PreconditionFailed(OccupantError):
    code = "precondition_failed"
    status = 412
    default_message = "The record changed since you read it; reload and try again."


class RateLimited(OccupantError):
    code = "rate_limited"
    status = 429
    default_message = "Too many attempts; wait and try again."
