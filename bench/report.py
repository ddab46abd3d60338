"""Result rows, percentiles, the printed table and the JSON file in bench/out/."""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import OUT


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 200 samples is the 190th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Row:
    benchmark: str
    backend: str
    p50_ms: float | None = None
    p95_ms: float | None = None
    max_ms: float | None = None
    target: str = "—"
    target_p95_ms: float | None = None
    rate: str = ""
    notes: str = ""
    samples: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def ok(self) -> bool | None:
        if self.skipped or self.target_p95_ms is None or self.p95_ms is None:
            return None
        return self.p95_ms <= self.target_p95_ms

    @classmethod
    def from_timings(
        cls,
        benchmark: str,
        backend: str,
        seconds: list[float],
        *,
        target_p95_ms: float | None = None,
        **kwargs: Any,
    ) -> Row:
        ms = [s * 1000 for s in seconds]
        target = f"p95 ≤ {target_p95_ms:g} ms" if target_p95_ms is not None else "—"
        return cls(
            benchmark=benchmark,
            backend=backend,
            p50_ms=percentile(ms, 50),
            p95_ms=percentile(ms, 95),
            max_ms=max(ms) if ms else None,
            target=target,
            target_p95_ms=target_p95_ms,
            samples=len(ms),
            **kwargs,
        )

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _ms(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def print_table(rows: list[Row], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("benchmark", "left"),
        ("backend", "left"),
        ("p50", "right"),
        ("p95", "right"),
        ("target", "left"),
        ("ok", "center"),
        ("max", "right"),
        ("rate", "right"),
        ("notes", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        if row.skipped:
            table.add_row(
                row.benchmark, row.backend, "—", "—", row.target, "skip", "—", "", f"not run: {row.skipped}"
            )
            continue
        ok = {True: "[green]yes[/]", False: "[red]NO[/]", None: "—"}[row.ok]
        table.add_row(
            row.benchmark,
            row.backend,
            _ms(row.p50_ms),
            _ms(row.p95_ms),
            row.target,
            ok,
            _ms(row.max_ms),
            row.rate,
            row.notes,
        )
    Console(width=200).print(table)


def save_json(rows: list[Row], name: str, context: dict[str, Any]) -> str:
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": _cpus()},
        "context": context,
        "results": [row.as_json() for row in rows],
    }
    text = json.dumps(payload, indent=1, default=str)
    path = OUT / f"results-{name}-{stamp}.json"
    path.write_text(text)
    (OUT / f"results-{name}-latest.json").write_text(text)
    return str(path)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)
