"""Queueing mail. Messages are rows written in the caller's transaction; a worker delivers them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from occupant.kit.db import on_commit
from occupant.kit.security import SecretBox
from occupant.kit.settings import get_settings
from occupant.notify.mailbox import delete_folder_messages
from occupant.notify.models import MessageStatus, OutboxMessage
from occupant.notify.templates import TEMPLATES


def secret_box() -> SecretBox:
    return SecretBox(get_settings().resolved_secret_key())


def queue_mail(
    session: Session,
    *,
    operator_id: int,
    to: str,
    template: str,
    language: str,
    context: dict[str, Any],
    secrets: dict[str, Any] | None = None,
    user_id: int | None = None,
) -> OutboxMessage:
    """Queue one email; it is delivered after the transaction commits, or never if it rolls back.

    ``secrets`` (passwords, sign-in links) are encrypted at rest with the instance key. Raises ValueError
    for an unknown template or when a key the template needs is in neither ``context`` nor ``secrets``.
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown mail template {template!r}")
    missing = set(TEMPLATES[template]) - context.keys() - (secrets or {}).keys()
    if missing:
        raise ValueError(f"mail template {template!r} needs {', '.join(sorted(missing))}")
    message = OutboxMessage(
        operator_id=operator_id,
        occupier_user_id=user_id,
        to_address=to,
        template=template,
        language=language,
        context=context,
        sealed_secrets=secret_box().seal(secrets) if secrets else None,
    )
    session.add(message)
    on_commit(session, _wake_delivery, key="notify.wake")
    return message


def cancel_for_user(session: Session, user_id: int) -> None:
    """Cancel a user's undelivered mail and wipe every message's personal data for that user.

    Mail already delivered to the mail folder (no SMTP configured) is removed from it once the
    transaction commits.
    """
    delivered = session.execute(
        select(OutboxMessage.operator_id, OutboxMessage.sent_at, OutboxMessage.id).where(
            OutboxMessage.occupier_user_id == user_id,
            OutboxMessage.status == MessageStatus.SENT.value,
            OutboxMessage.sent_at.is_not(None),
        )
    ).all()
    if delivered:
        files = [(operator, sent_at, outbox_id) for operator, sent_at, outbox_id in delivered if sent_at]
        on_commit(session, lambda: delete_folder_messages(files))
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.occupier_user_id == user_id)
        .values(
            status=_cancel_unsent(),
            to_address="",
            context={},
            sealed_secrets=None,
            last_error=None,
            occupier_user_id=None,
        )
        .execution_options(synchronize_session=False)
    )


def _cancel_unsent() -> Any:
    from sqlalchemy import case

    return case(
        (OutboxMessage.status == MessageStatus.QUEUED.value, MessageStatus.CANCELLED.value),
        else_=OutboxMessage.status,
    )


def _wake_delivery() -> None:
    from occupant.worker.tasks import enqueue_mail_delivery

    enqueue_mail_delivery()
