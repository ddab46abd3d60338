"""The decommissioning job: delete every user of the occupier, then settle the state.

Each chunk of users is deleted in its own transaction, so a crash or restart resumes where it stopped.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from occupant.audit.service import record
from occupant.authz.actor import Actor
from occupant.kit.clock import utcnow
from occupant.kit.db import transaction
from occupant.occupiers.models import Occupier, OccupierState
from occupant.users.models import OccupierUser
from occupant.users.service import purge_user

log = logging.getLogger(__name__)
CHUNK = 200


def pending_decommissions(session: Session) -> list[int]:
    return list(
        session.scalars(select(Occupier.id).where(Occupier.state == OccupierState.DECOMMISSION_PENDING))
    )


def run_decommission(factory: sessionmaker[Session], occupier_id: int) -> OccupierState | None:
    """Delete the occupier's users chunk by chunk, then mark it DECOMMISSIONED or DECOMMISSION_FAILED."""
    failures: list[str] = []
    last_id = 0
    while True:
        with transaction(factory) as session:
            occupier = session.get(Occupier, occupier_id)
            if occupier is None or occupier.state != OccupierState.DECOMMISSION_PENDING:
                return occupier.state if occupier else None
            actor = Actor.system(occupier.operator_id)
            users = session.scalars(
                select(OccupierUser)
                .where(OccupierUser.occupier_id == occupier_id, OccupierUser.id > last_id)
                .order_by(OccupierUser.id)
                .limit(CHUNK)
            ).all()
            if not users:
                break
            for user in users:
                last_id = user.id
                try:
                    with session.begin_nested():
                        if user.is_busy:
                            raise RuntimeError("action in progress")
                        purge_user(session, user, actor=actor)
                except Exception as exc:  # one user failing must not stop the rest
                    log.warning("occupier.decommission.user_failed", extra={"user_id": user.id})
                    failures.append(f"user {user.id}: {exc}")
    with transaction(factory) as session:
        occupier = session.get(Occupier, occupier_id)
        if occupier is None or occupier.state != OccupierState.DECOMMISSION_PENDING:
            return occupier.state if occupier else None
        actor = Actor.system(occupier.operator_id)
        old = occupier.state
        if failures:
            occupier.state = OccupierState.DECOMMISSION_FAILED
            occupier.decommission_error = f"{len(failures)} users could not be deleted: " + "; ".join(
                failures[:20]
            )
        else:
            occupier.state = OccupierState.DECOMMISSIONED
            occupier.decommissioned_at = utcnow()
        record(
            session,
            actor=actor,
            action="occupier.decommission_finished",
            target_type="occupier",
            target_id=occupier.id,
            occupier_id=occupier.id,
            fields=["state"],
            changes={"state": [old, occupier.state]},
            outcome="failure" if failures else "success",
        )
        return occupier.state
