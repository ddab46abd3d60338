"""The REST API ``/api/v1``: error handling and the routers of each domain."""

from __future__ import annotations

from fastapi import FastAPI

from occupant.accounts.mobile import router as mobile_router
from occupant.accounts.routes import router as accounts_router
from occupant.api.errors import install_error_handlers
from occupant.api.http import API_PREFIX
from occupant.audit.routes import router as audit_router
from occupant.bulk.routes import router as bulk_router
from occupant.groups.routes import router as groups_router
from occupant.occupiers.routes import router as occupiers_router
from occupant.sites.routes import router as sites_router
from occupant.users.routes import router as users_router
from occupant.wifi.routes import router as wifi_router

TAGS = [
    {"name": "sites", "description": "Buildings, their country and RADIUS NAS identifiers."},
    {"name": "occupiers", "description": "Tenant companies, their sites, switches and decommissioning."},
    {"name": "users", "description": "Occupier users: create, change, deactivate, reactivate, delete."},
    {"name": "wifi", "description": "Wi-Fi Secure accounts and connected devices (passwords go by email)."},
    {
        "name": "accounts",
        "description": "App accounts (portal and mobile app): role, invitations, deactivation, resets.",
    },
    {
        "name": "mobile app",
        "description": "For the mobile app itself: sign-in with email and password, token refresh, the "
        "user's own details. Authenticated by the app's access token, never by an API key.",
    },
    {"name": "groups", "description": "Access groups and their members."},
    {
        "name": "bulk jobs",
        "description": "Many users at once: a selection, a list of emails, rows or a CSV file become a job "
        "that is previewed, confirmed, run by a worker, followed, and downloaded as results.",
    },
    {"name": "audit", "description": "The append-only record of every change."},
]


def install(app: FastAPI) -> None:
    """Mount the API routers and JSON error handlers on ``app``."""
    install_error_handlers(app)
    routers = (
        sites_router,
        occupiers_router,
        users_router,
        wifi_router,
        accounts_router,
        mobile_router,
        groups_router,
        bulk_router,
        audit_router,
    )
    for router in routers:
        app.include_router(router, prefix=API_PREFIX)
    app.openapi_tags = [*(app.openapi_tags or []), *TAGS]
