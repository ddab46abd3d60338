"""Reading app-account state for lists and details: a page of users' accounts in one query."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.accounts.models import AppAccount


def accounts_by_user(session: Session, user_ids: Iterable[int]) -> dict[int, AppAccount]:
    """The app accounts of these users (one query for a whole page), keyed by user id.

    A user missing from the answer has no account: NOT_INVITED, no role.
    """
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    return {a.user_id: a for a in session.scalars(select(AppAccount).where(AppAccount.user_id.in_(ids)))}
