"""Checking a password without holding the database's write lock.

An argon2id check takes about 0.1 s of CPU. Done inside a request's write transaction, it holds that
transaction open, and on SQLite (one writer for the whole database) every other sign-in and every other
write waits in line behind it: seconds of queueing under load. So the throttle check, the reading of the
stored hashes and the password check happen in a read-only session (on SQLite it takes no write lock),
and the caller's write transaction then only accepts the accounts whose hash is still the one that matched:
a password changed in between fails closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from occupant.kit import throttle
from occupant.kit.db import reader_beside
from occupant.kit.security import verify_password

# Failed sign-ins allowed per window: per account, and per address. Everyone in a building behind one NAT
# shares an address, so a person's typos must not lock the whole building out.
ACCOUNT_LIMIT = 10
ADDRESS_LIMIT = 100
WINDOW = timedelta(minutes=15)


def check_limits(session: Session, account_key: str, address_key: str | None) -> None:
    """Raise RateLimited when the account or the address has too many recent failures."""
    throttle.check(session, [account_key], limit=ACCOUNT_LIMIT, window=WINDOW)
    if address_key:
        throttle.check(session, [address_key], limit=ADDRESS_LIMIT, window=WINDOW)


def matching_hashes(
    session: Session,
    candidates: Select[int, str | None] | None,
    password: str,
    *,
    account_key: str,
    address_key: str | None,
) -> set[tuple[int, str]]:
    """(id, stored hash) of the candidates whose password is ``password``, read beside ``session`` (the
    caller's write session, left untouched); ``candidates`` selects (id, hash) rows (None: nobody to
    check). The same effort when there is no candidate. Raises RateLimited."""
    with reader_beside(session) as reader:
        check_limits(reader, account_key, address_key)
        rows: Sequence[Any] = reader.execute(candidates).all() if candidates is not None else []
    if not rows:
        verify_password(None, password)
        return set()
    return {(row_id, stored) for row_id, stored in rows if stored and verify_password(stored, password)}


def record_failure(session: Session, account_key: str, address_key: str | None) -> None:
    """Count a failed sign-in against the account and the address (in the caller's transaction)."""
    throttle.fail(session, [account_key] + ([address_key] if address_key else []), window=WINDOW)
