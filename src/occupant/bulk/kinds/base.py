"""What a kind of bulk job is: how its items are checked (preview) and applied, over the service actions.

A kind works on chunks of :class:`Item` (in memory; the engine reads and writes the rows). ``check`` only
reads; ``apply`` changes the database through the actions. Both mark every item: ``succeed`` /
``fail`` / ``exclude``; an item left unmarked by ``check`` would succeed.

Most kinds act on selected users, one action per user: :class:`UserKind` is that machinery, and a kind is
a few lines — its name, title and ``each`` (one action call); ``many`` where the service has a set-based
variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.authz.actor import Actor
from occupant.authz.scope import Perm, visible_user_ids
from occupant.bulk.models import BulkJob, ItemStatus
from occupant.kit.csvin import CsvRow, CsvSpec
from occupant.kit.errors import ActionInProgress, FieldErrors, NotFound, OccupantError
from occupant.occupiers.models import Occupier
from occupant.users.models import OccupierUser
from occupant.users.service import ensure_changeable


@dataclass(eq=False)
class Item:
    """One item of a job: a file's row, a list's entry or a selected user."""

    position: int
    identifier: str | None = None
    user_id: int | None = None
    payload: dict[str, Any] | None = None
    status: ItemStatus = ItemStatus.PENDING
    outcome: str | None = None
    code: str | None = None
    message: str | None = None
    errors: list[dict[str, str]] | None = None
    id: int | None = None
    made_user: bool = False  # a create made the user (``user_id``) while working on the item

    def succeed(self, outcome: str, *, user_id: int | None = None) -> None:
        self.status, self.outcome, self.code, self.message, self.errors = (
            ItemStatus.SUCCEEDED,
            outcome,
            None,
            None,
            None,
        )
        if user_id is not None and user_id != self.user_id:
            self.user_id, self.made_user = user_id, True

    def fail(self, error: OccupantError) -> None:
        self.status, self.outcome = ItemStatus.FAILED, None
        self.code, self.message = error.code, error.message
        self.errors = error.errors if isinstance(error, FieldErrors) and error.errors else None
        if self.errors and len(self.errors) == 1:
            self.code, self.message = self.errors[0]["code"], self.errors[0]["message"]
        elif self.errors:
            self.message = "; ".join(
                f"{e['field']}: {e['message']}" if e.get("field") else e["message"] for e in self.errors
            )

    def exclude(self, error: OccupantError) -> None:
        self.fail(error)
        self.status = ItemStatus.EXCLUDED

    @property
    def settled(self) -> bool:
        """Failed or excluded already (by the preview): not worked on."""
        return self.status in (ItemStatus.FAILED, ItemStatus.EXCLUDED)


@dataclass
class Run:
    """What a kind sees while it checks or applies a chunk."""

    session: Session
    job: BulkJob
    actor: Actor
    params: Any
    occupier: Occupier | None
    preview: bool = False
    cache: dict[str, Any] = field(default_factory=dict)  # per job run: e.g. the occupier's sites


class Kind:
    """A kind of bulk job. Subclasses set the class attributes and implement ``check`` and ``apply``."""

    name: ClassVar[str]
    title: ClassVar[str]
    permission: ClassVar[Perm] = Perm.MANAGE_USERS
    params_model: ClassVar[type[BaseModel] | None] = None
    # Users of the items are held busy from confirmation until their item is done.
    holds_users: ClassVar[bool] = True
    chunk_size: ClassVar[int] = 2_000
    # What an item that succeeds did (for the results): "deleted", "deactivated", ...
    outcome: ClassVar[str] = "done"

    # Kinds that read files: their columns (template, header checks) and how rows become items.
    csv_spec: ClassVar[CsvSpec | None] = None

    def items_from_rows(
        self, session: Session, actor: Actor, occupier: Occupier | None, rows: Sequence[CsvRow]
    ) -> list[Item]:
        """One item per row of a file (or of a JSON list, as rows with ``line`` = its index + 1), with the
        row's values as its payload. Only kinds with a ``csv_spec`` take rows."""
        raise NotImplementedError(f"{self.name} takes no file")

    def finished(self, session: Session, job: BulkJob) -> None:
        """When the job has finished (or was cancelled), in its last transaction: tidying that one call
        does for the whole job (a delete's search index). Nothing by default."""

    def parse_params(self, raw: dict[str, Any] | None) -> Any:
        """The job's options, validated (FieldErrors for bad ones)."""
        if self.params_model is None:
            return None
        from occupant.web.forms import parse

        return parse(self.params_model, raw or {})

    def check(self, run: Run, items: Sequence[Item]) -> None:
        raise NotImplementedError(f"{type(self).__name__}.check")

    def apply(self, run: Run, items: Sequence[Item]) -> None:
        raise NotImplementedError(f"{type(self).__name__}.apply")


class UserKind(Kind):
    """A kind over existing users: ``each`` calls the single action for one user (and may return the
    outcome's name); ``many``, where the service has a set-based variant, does a whole chunk and returns one
    result per user (with ``.error``, None on success, and optionally ``.outcome``)."""

    def each(self, session: Session, user: OccupierUser, params: Any, actor: Actor) -> object:
        raise NotImplementedError(f"{type(self).__name__}.each")

    def many(
        self, session: Session, users: Sequence[OccupierUser], params: Any, actor: Actor
    ) -> Sequence[object] | None:
        """None: no set-based variant, ``each`` is called per user."""
        return None

    # The preview also runs ``each`` inside a savepoint that is rolled back: every rule of the action,
    # nothing written. Off for kinds whose every refusal the exclusions already say (cheap previews).
    preview_runs_action: ClassVar[bool] = True

    def exclusion(self, run: Run, user: OccupierUser) -> OccupantError | None:
        """Why this user is not even offered (busy, and what the kind adds); None when selectable. A job
        that names an occupier (the portal's, or the console's occupier page) only reaches its users."""
        if run.occupier is not None and user.occupier_id != run.occupier.id:
            return NotFound(f"Not a user of {run.occupier.name}.")
        if user.is_busy and user.busy_owner != run.job.holder:
            return ActionInProgress()
        return None

    def many_of(self, run: Run, todo: Sequence[tuple[Item, OccupierUser]]) -> Sequence[object] | None:
        """The chunk's set-based call (``many``); a kind whose items carry their own options overrides
        this to read them."""
        return self.many(run.session, [user for _, user in todo], run.params, run.actor)

    def users_of(self, run: Run, items: Sequence[Item]) -> dict[int, OccupierUser]:
        """The items' users that exist and that the actor may see, loaded in one query per chunk."""
        ids = [i.user_id for i in items if i.user_id is not None]
        visible = visible_user_ids(run.session, run.actor, ids)
        if not visible:
            return {}
        users = run.session.scalars(select(OccupierUser).where(OccupierUser.id.in_(visible))).all()
        return {u.id: u for u in users}

    def check(self, run: Run, items: Sequence[Item]) -> None:
        users = self.users_of(run, items)
        for item in items:
            user = users.get(item.user_id or 0)
            if user is None:
                item.fail(NotFound("No such user (deleted, or not yours to change)."))
                continue
            item.identifier = item.identifier or user.full_name
            reason = self.exclusion(run, user)
            if reason is not None:
                item.exclude(reason)
                continue
            if self.preview_runs_action:
                try:
                    with run.session.begin_nested() as savepoint:
                        self.call_each(run, user)
                        savepoint.rollback()
                except OccupantError as exc:
                    item.fail(exc)
                finally:
                    run.session.expire(user)
            else:
                try:
                    ensure_changeable(user)
                except OccupantError as exc:
                    item.fail(exc)

    def call_each(self, run: Run, user: OccupierUser) -> object:
        return self.each(run.session, user, run.params, run.actor)

    def apply(self, run: Run, items: Sequence[Item]) -> None:
        users = self.users_of(run, items)
        todo: list[tuple[Item, OccupierUser]] = []
        for item in items:
            user = users.get(item.user_id or 0)
            if user is None:
                item.fail(NotFound("No such user (deleted, or not yours to change)."))
            else:
                todo.append((item, user))
        results = self.many_of(run, todo) if todo else None
        if results is not None:
            for (item, _user), result in zip(todo, results, strict=True):
                error = getattr(result, "error", None)
                if error is None:
                    item.succeed(getattr(result, "outcome", None) or self.outcome)
                else:
                    item.fail(error)
            return
        for item, user in todo:
            try:
                with run.session.begin_nested():
                    outcome = self.call_each(run, user)
            except OccupantError as exc:
                item.fail(exc)
            else:
                item.succeed(outcome if isinstance(outcome, str) else self.outcome)
