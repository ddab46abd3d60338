"""Shapes shared by every API endpoint: errors and pages."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class FieldErrorOut(BaseModel):
    field: str = Field(description="Dotted path of the field, e.g. `email` or `group_ids.0`.")
    code: str = Field(description="Stable machine code, e.g. `required`, `unknown_field`, `invalid_phone`.")
    message: str


class ErrorOut(BaseModel):
    """Every error answer: a stable ``code``, a human ``message`` and, for field errors, ``details``."""

    code: str = Field(description="Stable machine code, e.g. `not_found`, `validation_error`, `email_taken`.")
    message: str
    details: Any = Field(default=None, description="For field errors, a list of {field, code, message}.")


class PageOut(BaseModel, Generic[T]):
    """One page of a list. Pass ``next_cursor`` back as ``?cursor=`` for the next page; null on the last."""

    items: list[T]
    next_cursor: str | None = None
