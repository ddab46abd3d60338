"""Benchmark 1: operator-wide search by name or e-mail fragment, first page, over 1,000,000 users.

Each query is one request's database work as the console or API does it: a new Session,
``users.queries.list_users(session, actor, q=..., limit=50)`` (which also loads each user's
occupier and its sites), commit, close. Warm-up queries (a different seeded list) run first.
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from statistics import mean

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from bench.build import DatasetInfo, log
from bench.common import app_sessions, operator_admin, request, site_manager
from bench.dataset import Spec
from bench.queryset import Query, make_queries
from bench.report import Row, percentile
from occupant.authz.actor import Actor
from occupant.users.queries import list_users

TARGET_MS = 50.0


def _estimate_matches(factory: sessionmaker[Session], queries: list[Query]) -> dict[str, float]:
    """Matches per query over the whole table, estimated from every 10th user (not timed)."""
    with factory() as session:
        sample = [
            r[0] for r in session.execute(text("SELECT search_text FROM occupier_users WHERE id % 10 = 0"))
        ]
        session.rollback()
    estimates: dict[str, float] = {}
    for q in queries:
        needle = " ".join(q.text.lower().split())
        if needle not in estimates:
            estimates[needle] = 10.0 * sum(1 for s in sample if needle in s)
    return estimates


def _measure(
    factory: sessionmaker[Session], actor: Actor, queries: list[Query], occupier_id: int | None = None
) -> tuple[list[float], list[int], list[bool]]:
    timings: list[float] = []
    counts: list[int] = []
    more: list[bool] = []
    for q in queries:
        seconds, page = request(
            factory, partial(list_users, actor=actor, q=q.text, occupier_id=occupier_id, limit=50)
        )
        timings.append(seconds)
        counts.append(len(page.items))
        more.append(page.next_cursor is not None)
    return timings, counts, more


def _row(
    name: str,
    info: DatasetInfo,
    queries: list[Query],
    timings: list[float],
    counts: list[int],
    more: list[bool],
    estimates: dict[str, float] | None,
    target: float | None,
) -> Row:
    by_kind: dict[str, list[float]] = defaultdict(list)
    for q, t in zip(queries, timings, strict=True):
        by_kind[q.kind].append(t * 1000)
    by_length: dict[str, list[float]] = defaultdict(list)
    for q, t in zip(queries, timings, strict=True):
        n = len(" ".join(q.text.split()))
        by_length["1-2 chars" if n < 3 else "3-5 chars" if n <= 5 else "6+ chars"].append(t * 1000)
    slowest = sorted(zip(timings, queries, counts, strict=True), key=lambda x: -x[0])[:10]
    detail = {
        "queries": len(queries),
        "mean_results_first_page": round(mean(counts), 2),
        "share_with_next_page": round(sum(more) / len(more), 3),
        "by_kind_ms": {
            k: {
                "n": len(v),
                "p50": round(percentile(v, 50), 2),
                "p95": round(percentile(v, 95), 2),
                "max": round(max(v), 2),
            }
            for k, v in sorted(by_kind.items())
        },
        "by_length_ms": {
            k: {
                "n": len(v),
                "p50": round(percentile(v, 50), 2),
                "p95": round(percentile(v, 95), 2),
                "max": round(max(v), 2),
            }
            for k, v in sorted(by_length.items())
        },
        "slowest": [
            {"q": q.text, "kind": q.kind, "ms": round(t * 1000, 2), "results": c} for t, q, c in slowest
        ],
    }
    notes = f"{len(queries)} queries; {mean(counts):.1f} results/page"
    if estimates is not None:
        est = [estimates[" ".join(q.text.lower().split())] for q in queries]
        detail["mean_estimated_total_matches"] = round(mean(est))
        detail["median_estimated_total_matches"] = round(percentile(est, 50))
        notes += f", ~{percentile(est, 50):,.0f} median total matches"
    return Row.from_timings(name, info.backend, timings, target_p95_ms=target, notes=notes, detail=detail)


def run(
    info: DatasetInfo, spec: Spec, *, queries: int = 220, warmup: int = 30, site_manager_row: bool = True
) -> list[Row]:
    measured = make_queries(spec, queries, seed=2)
    warm = make_queries(spec, warmup, seed=1)
    rows = []
    with app_sessions(info) as (_engine, factory):
        admin = operator_admin(info)
        log(f"search on {info.backend}: {len(warm)} warm-up + {len(measured)} queries")
        _measure(factory, admin, warm)
        timings, counts, more = _measure(factory, admin, measured)
        estimates = _estimate_matches(factory, measured)
        rows.append(
            _row(
                f"search, operator-wide, first page ({info.users:,} users)",
                info,
                measured,
                timings,
                counts,
                more,
                estimates,
                TARGET_MS,
            )
        )
        if site_manager_row:
            manager = site_manager(info, factory)
            _measure(factory, manager, warm)
            timings, counts, more = _measure(factory, manager, measured)
            rows.append(
                _row(
                    "search as a site manager (1 site), first page",
                    info,
                    measured,
                    timings,
                    counts,
                    more,
                    None,
                    None,
                )
            )
    return rows
