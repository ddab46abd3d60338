"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from occupant.kit.errors import FieldErrors

T = TypeVar("T")


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FieldErrors.single("cursor", "invalid_cursor", "The cursor is not valid.") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise FieldErrors.single("cursor", "invalid_cursor", "The cursor is not valid.")
    return values


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def page_of(rows: list[T], limit: int, key: Callable[[T], list[Any]]) -> Page[T]:
    """A page from ``limit + 1`` fetched rows: the extra row only says that a next page exists."""
    if len(rows) <= limit:
        return Page(items=rows)
    rows = rows[:limit]
    return Page(items=rows, next_cursor=encode_cursor(key(rows[-1])))
