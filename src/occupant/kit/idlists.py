"""``column IN (thousands of values)`` with one bound parameter instead of one per value.

A many-user action names up to 5,000 users (ids, usernames, email keys) per statement. As a plain IN list
that is 5,000 bound parameters: SQLAlchemy renders a name for each and psycopg parses the ~100 kB statement
on every call — 40-70 ms of client CPU per statement on PostgreSQL, more than the database's own work.
:func:`one_of` sends the values as one parameter instead: a PostgreSQL array (``column = ANY(:values)``)
or, on SQLite, a JSON array read by ``json_each``; both databases still look each value up in the
column's index.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    String,
    any_,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session


def one_of(session: Session, column: Any, values: Collection[int] | Collection[str]) -> ColumnElement[bool]:
    """``column IN values`` for integer or string values, as one bound parameter on either database."""
    ordered: list[Any] = sorted(values)
    if session.get_bind().dialect.name == "postgresql":
        strings = bool(ordered) and isinstance(ordered[0], str)
        array = bindparam(None, ordered, type_=ARRAY(String() if strings else BigInteger()))
        clause: ColumnElement[bool] = column == any_(array)
        return clause
    listed: Select[Any] = select(literal_column("value")).select_from(
        func.json_each(bindparam(None, json.dumps(ordered)))
    )
    within: ColumnElement[bool] = column.in_(listed)
    return within
