"""Queueing mail. Messages are rows written in the caller's transaction; a worker delivers them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from occupant.kit.clock import utcnow
from occupant.kit.db import on_commit
from occupant.kit.security import SecretBox
from occupant.kit.settings import get_settings
from occupant.notify.mailbox import delete_folder_messages
from occupant.notify.models import MessageStatus, OutboxMessage
from occupant.notify.templates import TEMPLATES


def secret_box() -> SecretBox:
    return SecretBox(get_settings().resolved_secret_key())


@dataclass(frozen=True, slots=True)
class Mail:
    """One email for :func:`queue_mails`: the arguments :func:`queue_mail` takes."""

    operator_id: int
    to: str
    template: str
    language: str
    context: dict[str, Any]
    secrets: dict[str, Any] | None = None
    user_id: int | None = None


def _check_template(template: str, context: dict[str, Any], secrets: dict[str, Any] | None) -> None:
    if template not in TEMPLATES:
        raise ValueError(f"unknown mail template {template!r}")
    missing = set(TEMPLATES[template]) - context.keys() - (secrets or {}).keys()
    if missing:
        raise ValueError(f"mail template {template!r} needs {', '.join(sorted(missing))}")


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
    _check_template(template, context, secrets)
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


def queue_mails(session: Session, mails: Sequence[Mail]) -> None:
    """Queue many emails with one multi-row INSERT: what :func:`queue_mail` does for each, set-based.

    Secrets are sealed exactly as :func:`queue_mail` seals them (one instance key read for all). Raises
    ValueError, before anything is written, when any message names an unknown template or lacks a key.
    """
    if not mails:
        return
    for mail in mails:
        _check_template(mail.template, mail.context, mail.secrets)
    box = secret_box() if any(mail.secrets for mail in mails) else None
    now = utcnow()
    rows = [
        {
            "operator_id": mail.operator_id,
            "occupier_user_id": mail.user_id,
            "to_address": mail.to,
            "template": mail.template,
            "language": mail.language,
            "context": mail.context,
            "sealed_secrets": box.seal(mail.secrets) if box is not None and mail.secrets else None,
            "created_at": now,
            "next_attempt_at": now,
        }
        for mail in mails
    ]
    session.execute(insert(cast(Table, OutboxMessage.__table__)), rows)  # Core: no per-row ORM bookkeeping
    on_commit(session, _wake_delivery, key="notify.wake")


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
