"""Delete, deactivate and reactivate a selection of users: the single actions, item by item.

(The set-based variants in ``users.bulk_lifecycle`` take over for whole chunks where they exist.)
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from occupant.accounts.service import ensure_may_delete
from occupant.authz.actor import Actor, Role
from occupant.bulk.kinds.base import Run, UserKind
from occupant.kit.errors import OccupantError, PermissionDenied
from occupant.users import service as users
from occupant.users.models import OccupierUser, UserStatus


class DeleteKind(UserKind):
    """Seed 000: users with an action in progress are not offered; in the portal, admins are not either."""

    name = "delete"
    title = "Delete users"
    outcome = "deleted"
    chunk_size = 2_000
    preview_runs_action = False  # its refusals are the exclusions below and ensure_changeable

    def exclusion(self, run: Run, user: OccupierUser) -> OccupantError | None:
        reason = super().exclusion(run, user)
        if reason is None and run.actor.role is Role.OCCUPIER_ADMIN:
            try:
                ensure_may_delete(run.session, user, actor=run.actor)
                if run.actor.id == user.id:
                    raise PermissionDenied("You cannot delete yourself.")
            except OccupantError as exc:
                return exc
        return reason

    def each(self, session: Session, user: OccupierUser, params: Any, actor: Actor) -> object:
        users.delete_user(session, user, actor=actor)
        return "deleted"


class DeactivateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    remove_from_groups: bool = False


class DeactivateKind(UserKind):
    name = "deactivate"
    title = "Deactivate users"
    outcome = "deactivated"
    params_model: ClassVar[type[BaseModel] | None] = DeactivateParams

    def each(self, session: Session, user: OccupierUser, params: Any, actor: Actor) -> object:
        if user.status == UserStatus.DEACTIVATED and not (params and params.remove_from_groups):
            return "unchanged"
        users.deactivate_user(session, user, actor=actor)
        if params is not None and params.remove_from_groups:
            from occupant.groups import service as groups

            groups.set_user_groups(session, user, [], actor=actor)
        return "deactivated"


class ReactivateKind(UserKind):
    name = "reactivate"
    title = "Reactivate users"
    outcome = "reactivated"

    def each(self, session: Session, user: OccupierUser, params: Any, actor: Actor) -> object:
        users.reactivate_user(session, user, actor=actor)
        return "reactivated"
