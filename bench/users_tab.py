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
import time
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.build import DatasetInfo, log
from bench.common import app_sessions, has_route, operator_admin, request
from bench.fixtures import console_cookie
from bench.report import Row, percentile
from occupant.kit import runtime
from occupant.users.models import OccupierUser
from occupant.users.queries import count_users, list_users

TARGET_MS = 30.0
PAGE_PATH = "/occupiers/{id}/users"


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
            request(factory, partial(tab, occupier_id=big[i % len(big)]))
        timings = []
        for i in range(iterations):
            seconds, (shown, total) = request(factory, partial(tab, occupier_id=big[i % len(big)]))
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
                factory, partial(list_users, actor=admin, q=q, occupier_id=occupier_id, limit=50)
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
                factory, partial(list_users, actor=admin, occupier_id=occupier_id, cursor=cursor, limit=50)
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

        rows += _console_pages(info, factory, big, fragments, iterations, warmup)
    return rows


def _server_ms(response: Any) -> float | None:
    """The app's own time for the request, from its Server-Timing header (``app;dur=12.3``)."""
    for part in response.headers.get("server-timing", "").split(","):
        name, _, value = part.strip().partition(";dur=")
        if name == "app" and value:
            return float(value)
    return None


def _console_pages(
    info: DatasetInfo,
    factory: Any,
    big: list[int],
    fragments: list[tuple[int, str]],
    iterations: int,
    warmup: int,
) -> list[Row]:
    """The console's Users tab through the whole app: the full page, and the live search's htmx partial."""
    from fastapi.testclient import TestClient

    from occupant.web.app import create_app

    names = (
        "users tab: console page GET /occupiers/{id}/users",
        "users tab: console live search (htmx partial, ?q=)",
    )
    app = create_app()
    if not has_route(app, "GET", PAGE_PATH.format(id=big[0])):
        return [
            Row(n, info.backend, target=f"p95 ≤ {TARGET_MS:g} ms", skipped="the console has no such page yet")
            for n in names
        ]
    requests: list[list[tuple[str, dict[str, str]]]] = [
        [(PAGE_PATH.format(id=big[i % len(big)]), {}) for i in range(warmup + iterations)],
        [(PAGE_PATH.format(id=o), {"q": q}) for o, q in fragments[: warmup + iterations]],
    ]
    htmx: list[dict[str, str]] = [{}, {"HX-Request": "true", "HX-Target": "user-results"}]
    rows = []
    runtime.use_session_factory(factory)
    try:
        cookie = console_cookie(factory, info)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            client.cookies.set("occupant_session", cookie)
            for name, calls, headers in zip(names, requests, htmx, strict=True):
                server, wall = [], []
                failed = None
                for i, (url, params) in enumerate(calls):
                    started = time.perf_counter()
                    response = client.get(url, params=params, headers=headers)
                    elapsed = time.perf_counter() - started
                    if response.status_code != 200:
                        failed = f"{url} answered {response.status_code}"
                        break
                    if i >= warmup:
                        wall.append(elapsed)
                        app_ms = _server_ms(response)
                        server.append(app_ms / 1000 if app_ms is not None else elapsed)
                if failed:
                    rows.append(Row(name, info.backend, target=f"p95 ≤ {TARGET_MS:g} ms", skipped=failed))
                    continue
                wall_ms = [w * 1000 for w in wall]
                rows.append(
                    Row.from_timings(
                        name,
                        info.backend,
                        server,
                        target_p95_ms=TARGET_MS,
                        notes=f"{len(server)} requests, app time (Server-Timing); through TestClient "
                        f"p50 {percentile(wall_ms, 50):.1f} / p95 {percentile(wall_ms, 95):.1f} ms",
                    )
                )
    finally:
        runtime.use_session_factory(None)
    return rows
