"""``occupant serve`` and ``occupant worker`` as real processes: they start, answer, and stop on SIGTERM."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import Cli

START_TIMEOUT = 90.0  # a cold start on a busy 2-core CI machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Running:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for_line(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        for line in self.lines:
            if match := regex.search(line):
                return match
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if match := regex.search(line):
                return match
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.lines)}")

    @property
    def output(self) -> str:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return "".join(self.lines)
            if line is None:
                return "".join(self.lines)
            self.lines.append(line)


@contextmanager
def occupant(data_dir: Path, *args: str) -> Iterator[Running]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OCCUPANT_QUEUE", "OCCUPANT_DATABASE_URL", "OCCUPANT_BASE_URL")
    }
    env.update(OCCUPANT_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", NO_COLOR="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "occupant.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    running = Running(proc)
    try:
        yield running
    finally:
        if proc.poll() is None:
            proc.terminate()  # this process only, by its PID
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_healthy(base: str, running: Running) -> httpx.Response:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if running.proc.poll() is not None:
            pytest.fail(f"occupant serve exited with {running.proc.returncode}:\n{running.output}")
        try:
            response = httpx.get(f"{base}/healthz", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"/healthz did not answer within {START_TIMEOUT}s:\n{running.output}")


def test_serve_prints_a_setup_link_that_opens_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with occupant(tmp_path / "data", "serve", "--port", str(port)) as running:
        match = running.wait_for_line(
            rf"Open ({re.escape(base)}/setup\?token=\S+) to create the first operator admin"
        )
        health = _wait_healthy(base, running)
        assert health.json()["database"] == "ok"
        setup = httpx.get(match.group(1), timeout=10)
        if setup.status_code != 404:  # the setup page may not be built yet
            assert setup.status_code == 200
            assert httpx.get(f"{base}/setup?token=wrong", timeout=10).status_code != 200

        running.proc.terminate()
        running.proc.wait(timeout=30)
        assert "Application shutdown complete" in running.output
    assert (tmp_path / "data" / "occupant.db").exists()


def test_serve_with_staff_says_to_sign_in(sqlite_cli: Cli) -> None:
    assert sqlite_cli("admin", "create", "--email", "ada@example.com").exit_code == 0
    port = _free_port()
    with occupant(sqlite_cli.data_dir, "serve", "--port", str(port)) as running:
        running.wait_for_line(rf"Open http://127\.0\.0\.1:{port}/")
        running.wait_for_line("Sign in with your operator admin account")
        assert "setup?token" not in running.output
        _wait_healthy(f"http://127.0.0.1:{port}", running)


def test_worker_runs_in_the_foreground_and_stops_on_sigterm(sqlite_cli: Cli) -> None:
    assert sqlite_cli("db", "upgrade").exit_code == 0
    with occupant(sqlite_cli.data_dir, "worker", "--workers", "1") as running:
        running.wait_for_line(r"Worker: 1 thread\(s\) on the SQLite queue")
        running.wait_for_line("Huey consumer started")
        running.wait_for_line(r"occupant\.worker\.tasks\.sweep: \S+ executed in")  # the periodic sweep ran
        running.proc.terminate()
        assert running.proc.wait(timeout=30) == 0


def test_worker_refuses_a_database_without_schema(sqlite_cli: Cli) -> None:
    result = sqlite_cli("worker")
    assert result.exit_code == 1
    assert "has no schema yet: run `occupant db upgrade` first" in result.stderr
