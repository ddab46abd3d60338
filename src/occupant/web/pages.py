"""The operator console: server-rendered pages with htmx."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount the console's routers, static files and page error handlers on ``app``."""
