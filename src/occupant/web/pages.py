"""The operator console: server-rendered pages with htmx.

Plumbing lives here (rendering, forms, errors, the wizard); the pages themselves live with their domain
(``occupiers/pages.py``, ``users/pages.py``, ...). ``html_error_response`` is what the API's error
handlers call for a request outside ``/api``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from occupant.web import static_assets
from occupant.web.deps import StaffContext, console
from occupant.web.errors import html_error_response, install_error_handlers
from occupant.web.render import redirect

__all__ = ["html_error_response", "install"]

home = APIRouter(include_in_schema=False)


@home.get("/")
def start(request: Request, _ctx: StaffContext = Depends(console)) -> Response:
    return redirect(request, "/occupiers")


def install(app: FastAPI) -> None:
    """Mount the console's routers, static files and page error handlers on ``app``."""
    from occupant.accounts.pages import router as accounts
    from occupant.audit.pages import router as audit
    from occupant.bulk.pages import router as bulk
    from occupant.groups.pages import router as groups
    from occupant.notify.pages import router as mailbox
    from occupant.occupiers.pages import router as occupiers
    from occupant.sites.pages import router as sites
    from occupant.staff.pages import router as staff
    from occupant.users.pages import router as users
    from occupant.wifi.pages import router as wifi

    static_assets.check()
    app.mount("/static", StaticFiles(directory=static_assets.STATIC_DIR), name="static")
    for router in (home, staff, occupiers, users, bulk, wifi, accounts, groups, sites, audit, mailbox):
        app.include_router(router)
    install_error_handlers(app)
