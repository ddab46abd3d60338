"""Reading HTML forms into the services' input models, and field errors back onto the form."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from occupant.kit.errors import FieldErrors

M = TypeVar("M", bound=BaseModel)


@dataclass
class Form:
    """What a form shows: the values entered and the errors of each field (``errors[field]``)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    def add_errors(self, exc: FieldErrors) -> Form:
        for item in exc.errors:
            self.errors.setdefault(item.get("field") or "_form", []).append(item["message"])
        return self


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: FormData, name: str) -> str | None:
    return text(form, name) or None


def checkbox(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "true", "1", "yes")


def ids(form: FormData, name: str) -> list[int]:
    """Every integer value of a multi-valued field (checkbox lists); anything else is ignored."""
    out = []
    for value in form.getlist(name):
        if isinstance(value, str) and value.strip().isdigit():
            out.append(int(value))
    return out


def lines(value: str) -> list[str]:
    """One entry per line (or comma), blanks dropped."""
    return [part.strip() for chunk in value.splitlines() for part in chunk.split(",") if part.strip()]


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        return "This field is required."
    if kind == "string_too_short":
        return f"Use at least {ctx.get('min_length')} characters."
    if kind == "string_too_long":
        return f"Use at most {ctx.get('max_length')} characters."
    if kind == "too_short":
        return "Choose at least one."
    if kind == "string_pattern_mismatch":
        return "Use capital letters, digits, '-' and '_' only."
    if kind in ("int_parsing", "int_type"):
        return "Enter a whole number."
    if kind == "greater_than_equal":
        return f"Enter {ctx.get('ge')} or more."
    if kind == "less_than_equal":
        return f"Enter {ctx.get('le')} or less."
    return str(error.get("msg", "This value is not valid."))


def field_errors(exc: ValidationError) -> FieldErrors:
    errors = []
    for error in exc.errors():
        loc = error.get("loc") or ("_form",)
        errors.append({"field": str(loc[0]), "code": error["type"], "message": _message(error)})
    return FieldErrors(errors)


def parse(model: type[M], data: dict[str, Any]) -> M:
    """Build ``model`` from form values; raise FieldErrors with a readable message per field."""
    try:
        return model(**data)
    except ValidationError as exc:
        raise field_errors(exc) from exc


def only_fields(exc: FieldErrors, names: Iterable[str]) -> FieldErrors | None:
    wanted = set(names)
    kept = [e for e in exc.errors if e.get("field") in wanted]
    return FieldErrors(kept) if kept else None
