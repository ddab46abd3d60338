"""Delete, deactivate and reactivate users: a selection, a pasted list of emails, or (deactivate and
reactivate) a CSV file keyed by email (seed 004). Whole chunks go through the set-based actions of
``users.bulk_lifecycle``; the single actions (``each``) remain for the preview and for a chunk the engine
redoes item by item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from occupant.accounts.service import ensure_may_delete
from occupant.authz.actor import Actor, Role
from occupant.bulk.kinds.base import Item, Run, UserKind
from occupant.bulk.models import BulkJob
from occupant.kit.csvin import Column, CsvRow, CsvSpec
from occupant.kit.errors import OccupantError, PermissionDenied
from occupant.occupiers.models import Occupier
from occupant.users import bulk_lifecycle as lifecycle
from occupant.users import service as users
from occupant.users.models import OccupierUser, UserStatus

# Seed 004: the email finds the user; any other identifier filled in must match that user.
BY_EMAIL = CsvSpec(
    (
        Column(
            "email", required=True, description="The user's email: finds the user", example="ada@example.com"
        ),
        Column("user_id", description="If filled in: must be the user's ID", example=""),
        Column("username", description="If filled in: must be the user's username", example=""),
        Column("external_id", description="If filled in: must be the user's external ID", example=""),
        Column("occupier", description="If filled in: must be the ID of the user's occupier", example=""),
        Column(
            "remove_from_group", description="y or Y: also remove the user from their groups", example="y"
        ),
    ),
    key="email",
)


class ByEmailFile:
    """Items from a file (or list) of rows keyed by email, matched to users as seed 004 says."""

    csv_spec: ClassVar[CsvSpec | None] = BY_EMAIL

    def items_from_rows(
        self, session: Session, actor: Actor, occupier: Occupier | None, rows: Sequence[CsvRow]
    ) -> list[Item]:
        matches = lifecycle.match_deactivate_rows(
            session,
            actor,
            [
                lifecycle.DeactivateRow(
                    email=row.values.get("email"),
                    user_id=row.values.get("user_id"),
                    username=row.values.get("username"),
                    external_id=row.values.get("external_id"),
                    occupier=row.values.get("occupier"),
                    remove_from_group=row.values.get("remove_from_group"),
                )
                for row in rows
            ],
        )
        items = []
        for row, match in zip(rows, matches, strict=True):
            item = Item(position=row.line, identifier=row.values.get("email") or None, user_id=match.user_id)
            if match.error is not None:
                item.fail(match.error)
            elif match.remove_from_group:
                item.payload = {"remove_from_group": True}
            items.append(item)
        return items


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

    def many(
        self, session: Session, users: Sequence[OccupierUser], params: Any, actor: Actor
    ) -> Sequence[object]:
        # The search index's pages are rewritten once, when the job has finished (``finished``).
        return lifecycle.delete_users(session, users, actor=actor, index_purge="deferred")

    def finished(self, session: Session, job: BulkJob) -> None:
        lifecycle.purge_search_index(session)


class DeactivateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    remove_from_groups: bool = False


class DeactivateKind(ByEmailFile, UserKind):
    """A file's row with ``remove_from_group`` y/Y removes its user from their groups; ``remove_from_groups``
    does it for every item of the job."""

    name = "deactivate"
    title = "Deactivate users"
    outcome = "deactivated"
    chunk_size = 5_000
    params_model: ClassVar[type[BaseModel] | None] = DeactivateParams
    preview_runs_action = False  # it refuses only what the exclusions and ensure_changeable say

    def each(self, session: Session, user: OccupierUser, params: Any, actor: Actor) -> object:
        return self._one(session, user, bool(params and params.remove_from_groups), actor)

    def _one(self, session: Session, user: OccupierUser, remove: bool, actor: Actor) -> str:
        outcome = "unchanged"
        if user.status != UserStatus.DEACTIVATED:
            users.deactivate_user(session, user, actor=actor)
            outcome = "deactivated"
        if remove:
            from occupant.groups import service as groups

            before = groups.user_group_ids(session, user.id) if outcome == "unchanged" else None
            groups.set_user_groups(session, user, [], actor=actor)
            if before:
                outcome = "groups_removed"
        return outcome

    def many_of(self, run: Run, todo: Sequence[tuple[Item, OccupierUser]]) -> Sequence[object]:
        everyone = bool(run.params and run.params.remove_from_groups)
        removing = [(i, pair) for i, pair in enumerate(todo) if everyone or _removes(pair[0])]
        keeping = [(i, pair) for i, pair in enumerate(todo) if not (everyone or _removes(pair[0]))]
        results: list[object] = [None] * len(todo)
        for remove, part in ((True, removing), (False, keeping)):
            if part:
                done = lifecycle.deactivate_users(
                    run.session, [user for _, (_, user) in part], remove_from_groups=remove, actor=run.actor
                )
                for (i, _pair), result in zip(part, done, strict=True):
                    results[i] = result
        return results


def _removes(item: Item) -> bool:
    return bool(item.payload and item.payload.get("remove_from_group"))


class ReactivateKind(ByEmailFile, UserKind):
    name = "reactivate"
    title = "Reactivate users"
    outcome = "reactivated"
    chunk_size = 5_000

    def each(self, session: Session, user: OccupierUser, params: Any, actor: Actor) -> object:
        users.reactivate_user(session, user, actor=actor)
        return "reactivated"

    def many(
        self, session: Session, users: Sequence[OccupierUser], params: Any, actor: Actor
    ) -> Sequence[object]:
        return lifecycle.reactivate_users(session, users, actor=actor)
