"""Queueing mail. Messages are rows written in the caller's transaction; a worker delivers them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from occupant.kit.bulkwrite import insert_rows, table_of
from occupant.kit.clock import utcnow
from occupant.kit.db import on_commit
from occupant.kit.idlists import one_of
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


_COLUMNS = (
    "operator_id",
    "occupier_user_id",
    "to_address",
    "template",
    "language",
    "context",
    "sealed_secrets",
    "status",
    "attempts",
    "next_attempt_at",
    "claimed_until",
    "last_error",
    "created_at",
    "sent_at",
)


def queue_mails(session: Session, mails: Sequence[Mail]) -> None:
    """Queue many emails with one bulk write (COPY on PostgreSQL): what :func:`queue_mail` does for each.

    Secrets are sealed as :func:`queue_mail` seals them, the batch at once (``SecretBox.seal_many``). Raises
    ValueError, before anything is written, when any message names an unknown template or lacks a key.
    """
    if not mails:
        return
    checked: set[tuple[str, tuple[str, ...], tuple[str, ...]]] = set()
    for mail in mails:
        shape = (mail.template, tuple(mail.context), tuple(mail.secrets or ()))
        if shape not in checked:  # a batch holds a few shapes of message: check each once
            _check_template(mail.template, mail.context, mail.secrets)
            checked.add(shape)
    with_secrets = [mail.secrets for mail in mails if mail.secrets]
    sealed = iter(secret_box().seal_many(with_secrets) if with_secrets else ())
    now = utcnow()
    queued = MessageStatus.QUEUED.value
    rows = (
        (
            mail.operator_id,
            mail.user_id,
            mail.to,
            mail.template,
            mail.language,
            mail.context,
            next(sealed) if mail.secrets else None,
            queued,
            0,
            now,
            None,
            None,
            now,
            None,
        )
        for mail in mails
    )
    insert_rows(session, table_of(OutboxMessage), _COLUMNS, rows)
    on_commit(session, _wake_delivery, key="notify.wake")


def cancel_for_user(session: Session, user_id: int) -> None:
    """Cancel a user's undelivered mail and wipe every message's personal data for that user.

    Mail already delivered to the mail folder (no SMTP configured) is removed from it once the
    transaction commits.
    """
    cancel_for_users(session, [user_id])


# Users per statement in :func:`cancel_for_users`: well under both databases' bound-parameter limits.
CANCEL_CHUNK = 5_000


def cancel_for_users(session: Session, user_ids: Sequence[int]) -> None:
    """:func:`cancel_for_user` for many users (deleted together), two statements per 5,000 users: their
    undelivered mail is cancelled, every message of theirs is wiped of personal data and of their id, and
    the files delivered to the mail folder are removed once the transaction commits."""
    ids = sorted(set(user_ids))
    files: list[tuple[int, datetime, int]] = []
    for start in range(0, len(ids), CANCEL_CHUNK):
        chunk = ids[start : start + CANCEL_CHUNK]
        delivered = session.execute(
            select(OutboxMessage.operator_id, OutboxMessage.sent_at, OutboxMessage.id).where(
                one_of(session, OutboxMessage.occupier_user_id, chunk),
                OutboxMessage.status == MessageStatus.SENT.value,
                OutboxMessage.sent_at.is_not(None),
            )
        ).all()
        files += [(operator, sent_at, outbox_id) for operator, sent_at, outbox_id in delivered if sent_at]
        session.execute(
            update(OutboxMessage)
            .where(one_of(session, OutboxMessage.occupier_user_id, chunk))
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
    if files:
        on_commit(session, lambda: delete_folder_messages(files))


def _cancel_unsent() -> Any:
    from sqlalchemy import case

    return case(
        (OutboxMessage.status == MessageStatus.QUEUED.value, MessageStatus.CANCELLED.value),
        else_=OutboxMessage.status,
    )


def _wake_delivery() -> None:
    from occupant.worker.tasks import enqueue_mail_delivery

    enqueue_mail_delivery()
