"""A bulk job from what a client sent (the API's JSON body, the CLI's options): which occupier, which items,
which options; then the engine's preview, and its confirmation when no preview is wanted.

The rules of a request: exactly one source of items; selections (``user_ids``, ``filter``, ``emails``) for
kinds over existing users, ``rows`` for kinds that read files; a job for an occupier only takes that
occupier's users (others fail ``not_found``, as users out of scope do); an occupier key or admin works in
their own occupier unless they name it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from occupant.authz import scope
from occupant.authz.actor import Actor
from occupant.bulk import engine, sources
from occupant.bulk.kinds.base import Item, Kind, UserKind
from occupant.bulk.models import BulkJob
from occupant.bulk.schemas import SOURCES, JobCreate, csv_rows
from occupant.kit.csvin import CsvError
from occupant.kit.errors import FieldErrors, NotFound
from occupant.occupiers.models import Occupier
from occupant.users.filters import UserFilter
from occupant.users.models import OccupierUser

IN_CHUNK = 5_000


def submit_request(
    session: Session, body: JobCreate, *, actor: Actor, requested_by_name: str | None = None
) -> BulkJob:
    """Check every item of the job ``body`` asks for (a PREVIEW job), and start it unless a preview was
    asked for. Raises FieldErrors (no source or several, a source the kind does not take, bad options, too
    many items, no occupier for a kind that needs one), NotFound (an occupier out of scope),
    OccupierDecommissioned, UnknownKind, PermissionDenied."""
    handler = engine.kind_of(body.kind)
    source = _the_source(body, handler)
    occupier_id = body.occupier_id
    if source == "filter" and body.filter is not None and body.filter.occupier_id is not None:
        if occupier_id is not None and occupier_id != body.filter.occupier_id:
            raise FieldErrors.single(
                "filter.occupier_id", "occupier_mismatch", "The filter names another occupier than the job."
            )
        occupier_id = body.filter.occupier_id
    occupier = occupier_for(session, actor, occupier_id)
    params = check_params(handler, body.params)
    if source == "rows":
        assert body.rows is not None
        spec = handler.csv_spec
        if spec is None:
            raise engine.NoRowsForKind(handler.name)
        job = engine.submit_rows(
            session,
            kind=handler.name,
            rows=csv_rows(body.rows, spec),
            actor=actor,
            occupier=occupier,
            params=params,
            requested_by_name=requested_by_name,
        )
    else:
        items, selection = _selected(session, actor, body, occupier)
        job = engine.submit(
            session,
            kind=handler.name,
            items=items,
            actor=actor,
            occupier=occupier,
            params=params,
            selection=selection,
            requested_by_name=requested_by_name,
        )
    if not body.preview:
        job = engine.confirm(session, job, actor=actor)
    return job


def submit_upload(
    session: Session,
    *,
    kind: str,
    data: bytes,
    filename: str | None,
    occupier_id: int | None,
    params: dict[str, Any] | None,
    preview: bool,
    actor: Actor,
    requested_by_name: str | None = None,
) -> BulkJob:
    """:func:`submit_request` for a CSV file (``engine.submit_file``): raises CsvError for the file as a
    whole, and what :func:`submit_request` raises."""
    handler = engine.kind_of(kind)
    checked = check_params(handler, params)
    job = engine.submit_file(
        session,
        kind=handler.name,
        data=data,
        filename=filename,
        actor=actor,
        occupier=occupier_for(session, actor, occupier_id),
        params=checked,
        requested_by_name=requested_by_name,
    )
    if not preview:
        job = engine.confirm(session, job, actor=actor)
    return job


def occupier_for(session: Session, actor: Actor, occupier_id: int | None) -> Occupier | None:
    """The job's occupier (locked: no decommissioning starts while the job is made); an occupier actor's own
    when none is named. Raises NotFound outside the actor's scope."""
    if occupier_id is None:
        occupier_id = actor.occupier_id
    if occupier_id is None:
        return None
    return scope.get_occupier(session, actor, occupier_id, for_update=True)


def _the_source(body: JobCreate, handler: Kind) -> str:
    given = body.sources
    names = ", ".join(SOURCES)
    if not given:
        raise FieldErrors.single("source", "source_required", f"Say which items: give one of {names}.")
    if len(given) > 1:
        raise FieldErrors.single(
            "source", "one_source_only", f"Give only one of {names} (this request gives {', '.join(given)})."
        )
    source = given[0]
    if source != "rows" and not isinstance(handler, UserKind):
        raise FieldErrors.single(
            source, "source_not_supported", f"A {handler.name} job takes rows, not a selection of users."
        )
    return source


def check_params(handler: Kind, params: dict[str, Any] | None) -> dict[str, Any] | None:
    """The kind's options, checked now so that every error names its option as ``params.<name>``."""
    if not params:
        return None
    if handler.params_model is None:
        raise FieldErrors(
            [
                {
                    "field": f"params.{name}",
                    "code": "unknown_field",
                    "message": f"A {handler.name} job has no options.",
                }
                for name in params
            ]
        )
    try:
        handler.parse_params(params)
    except FieldErrors as exc:
        errors = [{**e, "field": _param_field(e.get("field", ""))} for e in exc.errors]
        raise FieldErrors(errors, exc.message if len(errors) > 1 else errors[0]["message"]) from None
    return params


def _param_field(name: str) -> str:
    return "params" if name in ("", "_form") else f"params.{name}"


def _selected(
    session: Session, actor: Actor, body: JobCreate, occupier: Occupier | None
) -> tuple[list[Item], dict[str, Any]]:
    """The items of a selection, frozen now, and how they were chosen (for people)."""
    if body.filter is not None:
        criteria: UserFilter = body.filter
        if occupier is not None and criteria.occupier_id is None:
            criteria = criteria.model_copy(update={"occupier_id": occupier.id})
        shown: dict[str, Any] = dict(criteria.non_personal)
        if criteria.q:
            shown["search"] = True  # the fragment itself may be a name: not kept
        return sources.items_from_filter(session, actor, criteria), {"filter": shown}
    if body.user_ids is not None:
        items = sources.items_from_ids(body.user_ids)
        selection: dict[str, Any] = {"ids": len(items)}
    else:
        assert body.emails is not None
        items = sources.items_from_emails(session, actor, body.emails)
        selection = {"emails": len(items)}
    if occupier is not None:
        _only_of(session, items, occupier)
    return items, selection


def _only_of(session: Session, items: Sequence[Item], occupier: Occupier) -> None:
    """Items whose user is not the occupier's fail ``not_found``: a job for an occupier is about its users."""
    ids = sorted({i.user_id for i in items if i.user_id is not None and not i.settled})
    theirs: set[int] = set()
    for start in range(0, len(ids), IN_CHUNK):
        theirs.update(
            session.scalars(
                select(OccupierUser.id).where(
                    OccupierUser.id.in_(ids[start : start + IN_CHUNK]),
                    OccupierUser.occupier_id == occupier.id,
                )
            )
        )
    for item in items:
        if item.user_id is not None and not item.settled and item.user_id not in theirs:
            item.fail(NotFound(f"No such user in {occupier.name}."))


def file_too_large(size: int, limit: int) -> CsvError:
    """``csv_too_large`` for a file known to be ``size`` bytes (from its length, before it is read)."""
    shown, most = _size(size), _size(limit)
    if shown == most:
        shown = f"larger than {most}"
    return CsvError(
        "csv_too_large",
        f"The file is {shown}; at most {most} can be imported at once. Split it into smaller files.",
        {"bytes": size, "max_bytes": limit},
    )


def _size(n: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:,.1f}".removesuffix(".0") + f" {unit}"
    return f"{n:,} bytes"
