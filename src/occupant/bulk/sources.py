"""Turning what an admin chose into a job's items: explicit users, every user matching a filter, a list of
emails. (Files are read by the kinds that take them: ``bulk.kinds.create``, ``bulk.kinds.deactivate``.)

A selection is evaluated here, once, when the job is submitted: the items are frozen, and users who match
later are not in the job.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.authz.scope import user_filter
from occupant.bulk.kinds.base import Item
from occupant.kit.errors import FieldErrors, NotFound
from occupant.users.filters import UserFilter, matching_ids
from occupant.users.models import OccupierUser

MAX_ITEMS = 100_000
IN_CHUNK = 5_000


def _check_size(count: int) -> None:
    if count > MAX_ITEMS:
        raise FieldErrors.single(
            "items",
            "too_many_items",
            f"{count:,} users are selected; one job takes at most {MAX_ITEMS:,}. Narrow the selection.",
        )


def items_from_ids(user_ids: Sequence[int]) -> list[Item]:
    """One item per user id, in the order given (a user asked for twice is one item)."""
    unique = list(dict.fromkeys(user_ids))
    _check_size(len(unique))
    return [Item(position=n, user_id=uid) for n, uid in enumerate(unique, 1)]


def items_from_filter(session: Session, actor: Actor, f: UserFilter) -> list[Item]:
    """Every user the actor can see that matches ``f``, now (seed 000: "select all" is the users under the
    current filters, never those filtered out)."""
    return items_from_ids(matching_ids(session, actor, f))


def items_from_emails(session: Session, actor: Actor, emails: Sequence[str]) -> list[Item]:
    """One item per email (a pasted list): the user with that email in the actor's scope, or an item that
    fails ``not_found``; blank lines are skipped, an email listed twice fails ``duplicate_in_list``."""
    cleaned = [(n, e.strip()) for n, e in enumerate(emails, 1) if e.strip()]
    _check_size(len(cleaned))
    keys = sorted({e.lower() for _, e in cleaned})
    found: dict[str, int] = {}
    for start in range(0, len(keys), IN_CHUNK):
        rows = session.execute(
            select(OccupierUser.email_key, OccupierUser.id).where(
                OccupierUser.email_key.in_(keys[start : start + IN_CHUNK]), user_filter(actor)
            )
        )
        found.update((key, uid) for key, uid in rows)
    items: list[Item] = []
    first_line: dict[str, int] = {}
    for line, email in cleaned:
        key = email.lower()
        item = Item(position=line, identifier=email, user_id=found.get(key))
        if key in first_line:
            item.fail(
                FieldErrors.single("email", "duplicate_in_list", f"Same email as line {first_line[key]}.")
            )
        elif item.user_id is None:
            item.fail(NotFound(f"No user has the email {email}."))
        first_line.setdefault(key, line)
        items.append(item)
    return items
