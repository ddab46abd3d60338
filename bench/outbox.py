"""Benchmark 4: outbox delivery rate to a local SMTP server, with 10,000 queued messages.

A fresh database per backend (SQLite file bench/out/outbox.sqlite, PostgreSQL database
occupant_bench_outbox) built by the migrations; 10,000 mails queued with
``notify.service.queue_mail`` (1,000 per transaction, languages mixed, a fifth with sealed
secrets); then one ``notify.delivery.deliver_due(factory)`` run sends them all over SMTP to an
aiosmtpd server on 127.0.0.1 (bench/smtp_sink.py, its own process) that only counts.

The rate is messages sent / wall time of the run. p50 / p95 are the time per message: the interval
between consecutive sends, which includes rendering, the SMTP exchange, committing the message's
outcome, and the claim of the next batch when one starts.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench import OUT, ROOT
from bench.backends import Backend, pg_server
from bench.build import log
from bench.report import Row, percentile
from occupant.kit import migrate
from occupant.kit.db import make_engine, make_session_factory, transaction
from occupant.kit.settings import Settings
from occupant.notify.service import queue_mail
from occupant.operators.models import Operator

PG_DATABASE = "occupant_bench_outbox"
LANGUAGES = ["en", "fr", "de", "es", "nl"]


class _TimedTransport:
    """Wraps the real transport and notes when each message has been handed over."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.stamps: list[float] = []

    def open(self) -> None:
        self.inner.open()

    def send(self, message: Any) -> None:
        self.inner.send(message)
        self.stamps.append(time.perf_counter())

    def close(self) -> None:
        self.inner.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fresh_database(backend: Backend) -> str:
    if backend == "sqlite":
        path = OUT / "outbox.sqlite"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        return f"sqlite:///{path}"
    server = pg_server()
    server.recreate(PG_DATABASE)
    return server.url(PG_DATABASE)


def _queue(factory: Any, operator_id: int, messages: int) -> float:
    rng = random.Random(3)
    started = time.perf_counter()
    for start in range(0, messages, 1000):
        with transaction(factory) as session:
            for n in range(start, min(messages, start + 1000)):
                first = rng.choice(["Amelia", "Lucas", "Sofía", "Jan", "Chloé", "Emma", "Noah", "Léa"])
                new_email = f"person{n}.new@example.test"
                secret = rng.random() < 0.2
                queue_mail(
                    session,
                    operator_id=operator_id,
                    to=f"person{n}@example.test",
                    template="email_changed_old",
                    language=rng.choice(LANGUAGES),
                    context={"first_name": first}
                    if secret
                    else {"first_name": first, "new_email": new_email},
                    secrets={"new_email": new_email} if secret else None,
                )
    return time.perf_counter() - started


@dataclass
class SinkDelivery:
    """One ``deliver_due`` run into the counting SMTP server."""

    report: Any  # notify.delivery.DeliveryReport
    seconds: float
    received: int
    received_bytes: int
    gaps_ms: list[float]  # the interval before each send
    batch_size: int

    @property
    def rate(self) -> float:
        return self.report.sent / self.seconds if self.seconds else 0.0


def deliver_to_sink(factory: Any, *, limit: int | None = None) -> SinkDelivery:
    """Start the SMTP sink (its own process), run ``deliver_due(factory, limit=…)`` into it, count."""
    from occupant.notify.delivery import deliver_due
    from occupant.notify.transport import transport_from_settings

    OUT.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "bench.smtp_sink", str(port)],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert sink.stdout is not None and sink.stdin is not None
        if sink.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP sink did not start")
        settings = Settings(smtp_url=f"smtp://127.0.0.1:{port}", data_dir=OUT / "data")
        transport = _TimedTransport(transport_from_settings(settings, helo="occupant.localhost"))
        started = time.perf_counter()
        report = deliver_due(factory, settings=settings, transport=transport, limit=limit)
        seconds = time.perf_counter() - started
        sink.stdin.write("count\n")
        sink.stdin.flush()
        received, size = (int(x) for x in sink.stdout.readline().split())
        sink.stdin.write("quit\n")
        sink.stdin.flush()
        sink.wait(timeout=10)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
    gaps = [b - a for a, b in zip([started, *transport.stamps], transport.stamps, strict=False)]
    return SinkDelivery(report, seconds, received, size, [g * 1000 for g in gaps], settings.mail_batch_size)


def run(backend: Backend, _spec: Any = None, *, messages: int = 10_000) -> list[Row]:
    OUT.mkdir(parents=True, exist_ok=True)
    url = _fresh_database(backend)
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        operator = Operator(name="Workspace Europe", support_email="support@workspace-europe.example")
        session.add(operator)
        session.flush()
        operator_id = operator.id
    queue_seconds = _queue(factory, operator_id, messages)
    log(f"outbox on {backend}: queued {messages:,} mails in {queue_seconds:.1f} s")
    try:
        done = deliver_to_sink(factory)
    finally:
        engine.dispose()
    report, seconds, received, ms = done.report, done.seconds, done.received, done.gaps_ms
    rate = done.rate
    notes = (
        f"{report.sent:,} sent, {received:,} received by the SMTP server in {seconds:.1f} s; "
        f"queueing took {queue_seconds:.1f} s ({messages / queue_seconds:,.0f}/s)"
    )
    if report.sent != messages or received != messages:
        notes += f"; NOT ALL DELIVERED: {report}"
    return [
        Row(
            benchmark=f"outbox delivery, {messages:,} queued mails → local SMTP",
            backend=backend,
            p50_ms=percentile(ms, 50),
            p95_ms=percentile(ms, 95),
            max_ms=max(ms) if ms else None,
            rate=f"{rate:,.0f} msg/s",
            notes=notes,
            samples=len(ms),
            detail={
                "sent": report.sent,
                "retried": report.retried,
                "dead": report.dead,
                "deferred": report.deferred,
                "received": received,
                "received_bytes": done.received_bytes,
                "delivery_seconds": round(seconds, 2),
                "queue_seconds": round(queue_seconds, 2),
                "rate": round(rate, 1),
                "batch_size": done.batch_size,
            },
        )
    ]
