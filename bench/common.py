"""What the query benchmarks share: the app's engine and sessions on a dataset, actors, timing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bench.build import DatasetInfo
from occupant.authz.actor import Actor, ActorKind, Role
from occupant.kit.db import make_engine, make_session_factory
from occupant.sites.models import Site

T = TypeVar("T")


@contextmanager
def app_sessions(info: DatasetInfo) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    """The engine and session factory the app itself would make for this database."""
    engine = make_engine(info.url)
    try:
        yield engine, make_session_factory(engine)
    finally:
        engine.dispose()


def operator_admin(info: DatasetInfo) -> Actor:
    return Actor(kind=ActorKind.STAFF, id=None, operator_id=info.operator_id, role=Role.OPERATOR_ADMIN)


def site_manager(info: DatasetInfo, factory: sessionmaker[Session], code: str = "LON01") -> Actor:
    with factory() as session:
        site_id = session.scalar(
            select(Site.id).where(Site.operator_id == info.operator_id, Site.code == code)
        )
        session.rollback()
    assert site_id is not None
    return Actor(
        kind=ActorKind.STAFF,
        id=None,
        operator_id=info.operator_id,
        role=Role.SITE_MANAGER,
        site_ids=frozenset({site_id}),
    )


def request(factory: sessionmaker[Session], work: Callable[[Session], T]) -> tuple[float, T]:
    """Time one request's database work as ``get_db`` runs it: new session, work, commit, close."""
    started = time.perf_counter()
    session = factory()
    try:
        result = work(session)
        session.commit()
    finally:
        session.close()
    return time.perf_counter() - started, result


def has_route(app: Any, method: str, path: str) -> bool:
    """Whether ``app`` routes ``method path`` to an endpoint (asks the router itself, as a request would)."""
    from starlette.routing import Match

    scope = {
        "type": "http",
        "path": path,
        "method": method,
        "root_path": "",
        "path_params": {},
        "headers": [],
        "query_string": b"",
    }
    return any(route.matches(scope)[0] is Match.FULL for route in app.router.routes)
