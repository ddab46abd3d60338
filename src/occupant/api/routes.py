"""The REST API ``/api/v1``: error handling and the routers of each domain."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount the API routers and JSON error handlers on ``app``."""
