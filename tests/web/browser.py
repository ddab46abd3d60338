"""The real-browser harness: the app under uvicorn on a free loopback port, and Debian's chromium.

Browser tests use the ``committed`` database (the server's own sessions commit for real) and are marked
``browser``. Screenshots go to ``artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import atexit
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

CHROMIUM = os.environ.get("OCCUPANT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving ``create_app()`` in a background thread."""

    def __init__(self) -> None:
        from occupant.web.app import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


_browser: object | None = None


def _launch() -> object:
    """One Playwright and one chromium per test process, started on first use and stopped at exit.

    A second ``sync_playwright()`` in the same thread fails ("Sync API inside the asyncio loop"), and
    pytest may tear a session fixture down and set it up again when it switches parameters of another
    session fixture (the database backend): so the browser outlives the fixture.
    """
    global _browser
    if _browser is None:
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

        def stop() -> None:
            browser.close()
            playwright.stop()

        atexit.register(stop)
        _browser = browser
    return _browser


@pytest.fixture(scope="session")
def chromium() -> object:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium is not installed at {CHROMIUM}: apt-get install -y chromium")
    return _launch()


def screenshot(page: object, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path
