"""The console's mailbox: mail delivered to the local folder when no SMTP server is configured."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from occupant.authz.scope import Perm, require
from occupant.kit.settings import get_settings
from occupant.notify import mailbox
from occupant.web.deps import StaffContext, console
from occupant.web.render import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


@router.get("/mailbox")
def mailbox_list(request: Request, page: int = 1, ctx: StaffContext = Depends(console)) -> Response:
    """The operator's delivered mail, newest first."""
    require(ctx.actor, Perm.VIEW_MAILBOX)
    page = max(page, 1)
    operator_id = ctx.actor.operator_id
    messages = mailbox.list_folder(PAGE_SIZE, (page - 1) * PAGE_SIZE, operator_id=operator_id)
    total = mailbox.count_folder(operator_id=operator_id)
    context = {
        "messages": messages,
        "total": total,
        "page": page,
        "has_next": page * PAGE_SIZE < total,
        "smtp_configured": bool(get_settings().smtp_url),
        "section": "mailbox",
    }
    return render(request, "notify/mailbox.html", context)


@router.get("/mailbox/{name}")
def mailbox_message(request: Request, name: str, ctx: StaffContext = Depends(console)) -> Response:
    """One message: headers, the text part, and the HTML part in a sandboxed frame (no scripts, no forms)."""
    require(ctx.actor, Perm.VIEW_MAILBOX)
    message = mailbox.read_folder_message(name, operator_id=ctx.actor.operator_id)
    return render(request, "notify/message.html", {"message": message, "name": name, "section": "mailbox"})
