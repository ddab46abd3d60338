"""Many users at once for the export and filter tests: Core inserts (no actions), with a Wi-Fi account, an
app account and a group membership each."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event, insert
from sqlalchemy.orm import Session

from occupant.accounts.models import AccountStatus, AppAccount, InviteState
from occupant.groups.models import group_members
from occupant.occupiers.models import Occupier
from occupant.users.models import OccupierUser, UserStatus
from occupant.wifi.models import WifiAccount, WifiStatus


def bulk_users(db: Session, occupier: Occupier, n: int, *, homesite_id: int, group_id: int) -> list[int]:
    """``n`` users of ``occupier`` (ids returned, in insertion order), each with an ACTIVE Wi-Fi account at
    ``homesite_id``, an app account invited to the portal, and membership of ``group_id``."""
    tag = f"o{occupier.id}"
    rows = []
    for i in range(n):
        first, last, email = f"Bulk{i:05d}", f"Person{i:05d}", f"bulk{i:05d}.{tag}@example.com"
        rows.append(
            {
                "operator_id": occupier.operator_id,
                "occupier_id": occupier.id,
                "first_name": first,
                "last_name": last,
                "email": email,
                "email_key": email,
                "mobile": "+447911123456",
                "language": "en",
                "status": UserStatus.ACTIVE,
                "sort_key": f"{last} {first}".lower(),
                "search_text": f"{first} {last} {email}".lower(),
            }
        )
    ids = list(
        db.scalars(insert(OccupierUser).returning(OccupierUser.id, sort_by_parameter_order=True), rows)
    )
    common: dict[str, Any] = {"operator_id": occupier.operator_id, "occupier_id": occupier.id}
    db.execute(
        insert(WifiAccount),
        [
            {
                **common,
                "user_id": uid,
                "username": row["email_key"],
                "status": WifiStatus.ACTIVE,
                "homesite_id": homesite_id,
                "device_limit": 2,
            }
            for uid, row in zip(ids, rows, strict=True)
        ],
    )
    db.execute(
        insert(AppAccount),
        [
            {
                **common,
                "user_id": uid,
                "status": AccountStatus.AWAITING_SIGN_IN,
                "portal": InviteState.INVITED,
            }
            for uid in ids
        ],
    )
    db.execute(insert(group_members), [{"group_id": group_id, "user_id": uid} for uid in ids])
    db.flush()
    return ids


class StatementLog:
    """The SQL statements an engine runs while attached (``before_cursor_execute``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement)

    def __enter__(self) -> StatementLog:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    @property
    def selects(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")]
