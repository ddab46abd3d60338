"""The ASGI application: the operator console (pages), the REST API, and health."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from occupant import __version__
from occupant.kit.context import new_request_id, request_id_var
from occupant.kit.runtime import get_session_factory
from occupant.kit.settings import get_settings

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
}


def create_app(*, run_worker: bool = False) -> FastAPI:
    """Build the app. With ``run_worker`` the background worker runs inside this process

    (``occupant serve``).
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        consumer = None
        if run_worker:
            from occupant.worker.inprocess import start_consumer

            consumer = start_consumer()
        try:
            yield
        finally:
            if consumer is not None:
                consumer.stop(graceful=True)

    app = FastAPI(
        title="Occupant API",
        version=__version__,
        description="Occupier users and their services, for operators of flexible workspace.",
        docs_url="/api/docs",
        openapi_url="/api/v1/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id") or new_request_id()
        if len(rid) > 64 or not rid.replace("-", "").isalnum():
            rid = new_request_id()
        token = request_id_var.set(rid)
        started = time.perf_counter()
        try:
            response: Response = await call_next(request)
        finally:
            request_id_var.reset(token)
        response.headers["X-Request-ID"] = rid
        # Time spent in the app (the browser's dev tools show it; benchmarks read it).
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if get_settings().cookie_secure:  # served over HTTPS: browsers keep to it from now on
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        try:
            with get_session_factory()() as session:
                session.execute(text("SELECT 1"))
        except Exception:
            log.exception("healthz.database_unreachable")
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok", "version": __version__})

    from occupant.api.routes import install as install_api
    from occupant.portal import install as install_portal
    from occupant.web.pages import install as install_pages

    install_api(app)
    install_pages(app)
    install_portal(app)
    return app
