"""A small HTTP/1.1 load generator: N keep-alive connections on asyncio streams, for a bounded time.

GET by default; with ``make_body`` every request is a POST (or ``method``) carrying that body.

Hand-rolled instead of an HTTP client library so that the generator, which shares the machine with
the server's workers, spends as little CPU per request as possible (a request line, a few headers,
Content-Length or chunked bodies; nothing else is needed against uvicorn).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float] = field(default_factory=list)  # successful requests only
    server_ms: list[float] = field(default_factory=list)  # the app's own time (Server-Timing: app;dur=)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    bytes: int = 0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool, float | None]:
    """(status, body length, keep-alive, app time in ms from Server-Timing) of one response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    size = 0
    if "content-length" in headers:
        size = int(headers["content-length"])
        await reader.readexactly(size)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            chunk = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(chunk + 2)
            size += chunk
            if chunk == 0:
                break
    app_ms = None
    for part in headers.get("server-timing", "").split(","):
        name, _, value = part.strip().partition(";dur=")
        if name == "app" and value:
            app_ms = float(value)
    return status, size, headers.get("connection", "").lower() != "close", app_ms


async def _worker(
    host: str,
    port: int,
    make_path: Callable[[], str],
    headers: str,
    deadline: float,
    measure_from: float,
    result: LoadResult,
    method: str,
    make_body: Callable[[], bytes] | None,
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < deadline:
        if writer is None:
            reader, writer = await asyncio.open_connection(host, port)
        assert reader is not None
        path = make_path()
        body = make_body() if make_body is not None else b""
        length = f"Content-Length: {len(body)}\r\n" if make_body is not None else ""
        started = time.perf_counter()
        try:
            writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}{length}\r\n".encode() + body
            )
            status, size, keep, app_ms = await _read_response(reader)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            if started >= measure_from:
                result.errors += 1
            writer.close()
            reader = writer = None
            continue
        if started >= measure_from:
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.bytes += size
            if 200 <= status < 300:
                result.latencies.append(time.perf_counter() - started)
                if app_ms is not None:
                    result.server_ms.append(app_ms)
        if not keep:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _run(
    host: str,
    port: int,
    make_path: Callable[[], str],
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
    warmup: float,
    method: str,
    make_body: Callable[[], bytes] | None,
) -> LoadResult:
    header_text = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    start = time.perf_counter()
    measure_from = start + warmup
    deadline = measure_from + seconds
    result = LoadResult(seconds=seconds)
    await asyncio.gather(
        *(
            _worker(host, port, make_path, header_text, deadline, measure_from, result, method, make_body)
            for _ in range(connections)
        )
    )
    # Requests still in flight at the deadline finish after it; count the time they took too.
    result.seconds = max(seconds, time.perf_counter() - measure_from)
    return result


def run_load(
    host: str,
    port: int,
    make_path: Callable[[], str],
    headers: dict[str, str],
    *,
    connections: int,
    seconds: float,
    warmup: float = 2.0,
    method: str | None = None,
    make_body: Callable[[], bytes] | None = None,
) -> LoadResult:
    """Keep ``connections`` requests in flight for ``warmup`` + ``seconds``; measure the last ``seconds``.

    ``make_body``: each request's body (sent with its Content-Length; the method defaults to POST).
    """
    verb = method or ("POST" if make_body is not None else "GET")
    return asyncio.run(
        _run(
            host,
            port,
            make_path,
            headers,
            connections=connections,
            seconds=seconds,
            warmup=warmup,
            method=verb,
            make_body=make_body,
        )
    )
