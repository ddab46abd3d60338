"""HTTP helpers the API routes share: id parameters, ETag / If-Match, cursor pages, timestamps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Protocol, TypeVar

from fastapi import Header, Path, Query, Request, Response

from occupant.api.schemas import PageOut
from occupant.kit.errors import FieldErrors, PreconditionFailed
from occupant.kit.pagination import Page, decode_cursor
from occupant.kit.settings import get_settings

API_PREFIX = "/api/v1"
MAX_ID = 2**63 - 1  # the largest id either database can hold; bigger numbers are refused, not sent to SQL

T = TypeVar("T")
M = TypeVar("M")

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Search = Annotated[str | None, Query(max_length=200, description="Any fragment of name or email.")]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The ETag you read. When it is no longer current the change is refused with 412.",
    ),
]


class Versioned(Protocol):
    id: int
    version_id: int


def etag(obj: Versioned) -> str:
    return f'"{obj.id}.{obj.version_id}"'


def set_etag(response: Response, obj: Versioned) -> None:
    response.headers["ETag"] = etag(obj)


def expected_version(if_match: str | None, obj: Versioned) -> int | None:
    """The version an ``If-Match`` header asks to change; 412 when none of its tags is the current one.

    No header or ``*`` means "whatever is current" (None).
    """
    if if_match is None or if_match.strip() == "*":
        return None
    tags = {tag.strip() for tag in if_match.split(",")}
    if etag(obj) not in tags:
        raise PreconditionFailed()
    return obj.version_id


@dataclass(frozen=True)
class PageParams:
    limit: int
    cursor: str | None


def page_params(*shape: type) -> Callable[..., PageParams]:
    """A dependency for ``?limit=&cursor=``; ``shape`` is the types of the list's cursor values."""

    def dependency(
        limit: Annotated[
            int | None,
            Query(
                ge=1,
                description="Items per page (default 50 and at most 500 unless the instance says otherwise).",
            ),
        ] = None,
        cursor: Annotated[
            str | None, Query(max_length=2000, description="`next_cursor` of the previous page.")
        ] = None,
    ) -> PageParams:
        settings = get_settings()
        if limit is not None and limit > settings.api_max_page_size:
            raise FieldErrors.single(
                "limit", "out_of_range", f"Limit must be at most {settings.api_max_page_size}."
            )
        _check_cursor(cursor, shape)
        return PageParams(limit=limit or settings.api_page_size, cursor=cursor or None)

    return dependency


def _check_cursor(cursor: str | None, shape: tuple[type, ...]) -> None:
    """Refuse a cursor that was not made by this list (wrong arity or value types) as a field error."""
    values = decode_cursor(cursor, len(shape))
    if values is None:
        return
    for value, kind in zip(values, shape, strict=True):
        ok = isinstance(value, kind) and not isinstance(value, bool)
        if ok and isinstance(value, int) and not -MAX_ID <= value <= MAX_ID:
            ok = False
        if not ok:
            raise FieldErrors.single("cursor", "invalid_cursor", "The cursor is not valid.")


def paged(request: Request, response: Response, page: Page[T], convert: Callable[[T], M]) -> PageOut[M]:
    """The page as JSON, with a ``Link: <…>; rel="next"`` header when there is a next page."""
    if page.next_cursor:
        url = request.url.include_query_params(cursor=page.next_cursor)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return PageOut(items=[convert(item) for item in page.items], next_cursor=page.next_cursor)


def naive_utc(value: datetime | None, field: str) -> datetime | None:
    """Timestamps are stored as naive UTC; an offset given by the caller is honoured."""
    if value is None or value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError as exc:
        raise FieldErrors.single(field, "out_of_range", "The date is out of range.") from exc
