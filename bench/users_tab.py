"""Benchmark 2: one occupier's Users tab, for the occupiers with 5,000 users.

* first page + count: ``list_users(occupier_id=..., limit=50)`` and ``count_users(occupier_id=...)`` in
  one request's session (what the tab needs to paint);
* search within the occupier: ``list_users(q=..., occupier_id=..., limit=50)`` with fragments of that
  occupier's own people's names and e-mails;
* a later page: ``list_users(occupier_id=..., cursor=...)`` from cursors 2 to 100 pages deep;
* the console page ``GET /occupiers/{id}/users`` through the whole app (FastAPI TestClient, a
  signed-in operator admin's cookie), when the console has that page.
"""

from __future__ import annotations

import random
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.build import DatasetInfo, log
from bench.common import app_sessions, operator_admin, request
from bench.fixtures import console_cookie
from bench.report import Row
from occupant.kit import runtime
from occupant.users.models import OccupierUser
from occupant.users.queries import count_users, list_users

TARGET_MS = 30.0
PAGE_PATH = re.compile(r"^/occupiers/\{[^}]+\}/users/?$")


def _fragments(
    session: Session, occupier_ids: list[int], count: int, rng: random.Random
) -> list[tuple[int, str]]:
    people = list(
        session.execute(
            select(
                OccupierUser.occupier_id,
                OccupierUser.first_name,
                OccupierUser.last_name,
                OccupierUser.email_key,
            )
            .where(OccupierUser.occupier_id.in_(occupier_ids))
            .order_by(OccupierUser.id)
        )
    )
    out = []
    for _ in range(count):
        occupier_id, first, last, email = rng.choice(people)
        roll = rng.random()
        if roll < 0.45:
            text = last[: rng.randint(2, 7)]
        elif roll < 0.75:
            text = first[: rng.randint(2, 6)]
        elif roll < 0.9:
            text = f"{first} {last[:2]}"
        else:
            text = email.split("@")[0][: rng.randint(3, 9)]
        if rng.random() < 0.2:
            text = text.title()
        out.append((occupier_id, text.strip() or first))
    return out


def _console_route(app: Any) -> str | None:
    for route in app.routes:
        if PAGE_PATH.match(getattr(route, "path", "")) and "GET" in (getattr(route, "methods", None) or ()):
            return str(route.path)
    return None


def run(info: DatasetInfo, *, iterations: int = 220, warmup: int = 30) -> list[Row]:
    big = info.big_occupier_ids
    rng = random.Random(11)
    rows: list[Row] = []
    size = info.occupier_sizes[str(big[0])]
    with app_sessions(info) as (_engine, factory):
        admin = operator_admin(info)
        log(f"users tab on {info.backend}: occupiers {big}")

        def tab(session: Session, occupier_id: int) -> tuple[int, int]:
            page = list_users(session, admin, occupier_id=occupier_id, limit=50)
            return len(page.items), count_users(session, admin, occupier_id=occupier_id)

        for i in range(warmup):
            request(factory, lambda s, i=i: tab(s, big[i % len(big)]))
        timings = []
        for i in range(iterations):
            seconds, (shown, total) = request(factory, lambda s, i=i: tab(s, big[i % len(big)]))
            assert shown == 50 and total == info.occupier_sizes[str(big[i % len(big)])], (shown, total)
            timings.append(seconds)
        rows.append(
            Row.from_timings(
                f"users tab: first page + count ({size:,} users)",
                info.backend,
                timings,
                target_p95_ms=TARGET_MS,
                notes=f"{len(big)} occupiers, {iterations} requests",
            )
        )

        with factory() as session:
            fragments = _fragments(session, big, warmup + iterations, rng)
            session.rollback()
        timings, counts = [], []
        for i, (occupier_id, q) in enumerate(fragments):
            seconds, page = request(
                factory, lambda s, o=occupier_id, q=q: list_users(s, admin, q=q, occupier_id=o, limit=50)
            )
            if i >= warmup:
                timings.append(seconds)
                counts.append(len(page.items))
        rows.append(
            Row.from_timings(
                "users tab: search within the occupier",
                info.backend,
                timings,
                target_p95_ms=TARGET_MS,
                notes=f"{len(timings)} queries; {sum(counts) / len(counts):.1f} results/page",
                detail={
                    "slowest": sorted(
                        (
                            [round(t * 1000, 2), q]
                            for t, (_o, q) in zip(timings, fragments[warmup:], strict=True)
                        ),
                        reverse=True,
                    )[:10]
                },
            )
        )

        cursors: list[tuple[int, str]] = []
        with factory() as session:
            for occupier_id in big:
                cursor = None
                for _depth in range(100):
                    page = list_users(session, admin, occupier_id=occupier_id, cursor=cursor, limit=50)
                    session.expunge_all()
                    if page.next_cursor is None:
                        break
                    cursor = page.next_cursor
                    cursors.append((occupier_id, cursor))
            session.rollback()
        picks = [rng.choice(cursors) for _ in range(warmup + iterations)]
        timings = []
        for i, (occupier_id, cursor) in enumerate(picks):
            seconds, _page = request(
                factory,
                lambda s, o=occupier_id, c=cursor: list_users(s, admin, occupier_id=o, cursor=c, limit=50),
            )
            if i >= warmup:
                timings.append(seconds)
        rows.append(
            Row.from_timings(
                "users tab: a later page (keyset cursor, pages 2-100)",
                info.backend,
                timings,
                target_p95_ms=TARGET_MS,
                notes=f"{iterations} requests",
            )
        )

        rows.append(_console_page(info, factory, big, iterations, warmup))
    return rows


def _console_page(info: DatasetInfo, factory: Any, big: list[int], iterations: int, warmup: int) -> Row:
    name = "users tab: console page GET /occupiers/{id}/users (TestClient)"
    from fastapi.testclient import TestClient

    from occupant.web.app import create_app

    app = create_app()
    path = _console_route(app)
    if path is None:
        return Row(
            name, info.backend, target=f"p95 ≤ {TARGET_MS:g} ms", skipped="the console has no such page yet"
        )
    import time

    runtime.use_session_factory(factory)
    try:
        cookie = console_cookie(factory, info)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            client.cookies.set("occupant_session", cookie)
            timings = []
            for i in range(warmup + iterations):
                url = re.sub(r"\{[^}]+\}", str(big[i % len(big)]), path)
                started = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    return Row(name, info.backend, skipped=f"{url} answered {response.status_code}")
                if i >= warmup:
                    timings.append(elapsed)
    finally:
        runtime.use_session_factory(None)
    return Row.from_timings(
        name, info.backend, timings, target_p95_ms=TARGET_MS, notes=f"{iterations} requests, full HTML page"
    )
