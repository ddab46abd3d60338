"""Delivering the outbox: claim due messages, send them over one connection, record each outcome at once.

A run claims a batch of due ``QUEUED`` messages in a short transaction (a lease in ``claimed_until``;
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so that any number of workers share the queue), then sends them
one after the other on a single SMTP connection, committing each message's outcome right after its send:

- sent: ``SENT`` with ``sent_at``; recipient, context and secrets are wiped;
- refused for now (4xx), or not renderable: one more attempt, retried after an exponential, jittered
  backoff; after ``mail_max_attempts`` it is ``DEAD``, wiped the same way;
- refused for good (5xx): ``DEAD`` at once;
- connection lost: the in-flight message counts one attempt (whether it arrived is unknown; its stable
  Message-ID lets receivers drop the copy); one reconnection is tried, and if it fails the rest of the
  batch is released, unattempted, for the next run.

A worker that dies mid-batch leaves its claims to expire; the periodic sweep then delivers them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parseaddr
from typing import Any, NamedTuple

from sqlalchemy import Engine, Executable, bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from occupant.kit.clock import utcnow
from occupant.kit.db import transaction
from occupant.kit.security import SecretBox
from occupant.kit.settings import Settings, get_settings
from occupant.notify import mime
from occupant.notify.models import MessageStatus, OutboxMessage
from occupant.notify.render import render
from occupant.notify.transport import (
    ConnectionFailed,
    MessageRejected,
    Outgoing,
    Transport,
    transport_from_settings,
)
from occupant.operators.models import Operator

log = logging.getLogger(__name__)

LEASE_SECONDS = 300.0  # a claim's lifetime; renewed while a slow batch is still being sent
MAX_RECONNECTS = 3  # per run: a connection that keeps breaking ends the run instead
JITTER = 0.25  # a retry waits between 75 % and 100 % of its backoff
_EMAIL = re.compile(r"[^\s<>()\[\]@,;:\"']+@[^\s<>()\[\]@,;:\"']+")

_QUEUED = MessageStatus.QUEUED.value

# The outcomes, built once (a delivery run writes thousands). Only a still-queued row is changed: a message
# cancelled meanwhile (its user deleted) stays cancelled and wiped.
_WIPED: dict[str, Any] = {"to_address": "", "context": {}, "sealed_secrets": None, "claimed_until": None}
_THIS_QUEUED = update(OutboxMessage).where(
    OutboxMessage.id == bindparam("p_id"), OutboxMessage.status == _QUEUED
)
_SENT = _THIS_QUEUED.values(
    status=MessageStatus.SENT.value,
    sent_at=bindparam("p_sent_at"),
    attempts=bindparam("p_attempts"),
    last_error=None,
    **_WIPED,
)
_DEAD = _THIS_QUEUED.values(
    status=MessageStatus.DEAD.value,
    attempts=bindparam("p_attempts"),
    last_error=bindparam("p_error"),
    **_WIPED,
)
_RETRY = _THIS_QUEUED.values(
    attempts=bindparam("p_attempts"),
    next_attempt_at=bindparam("p_retry_at"),
    last_error=bindparam("p_error"),
    claimed_until=None,
)


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0  # failed this time, queued again with a backoff
    dead: int = 0
    deferred: int = 0  # claimed but not attempted because the connection failed; still queued, unchanged
    connection_error: str | None = None


class _Claimed(NamedTuple):
    id: int
    operator_id: int
    to_address: str
    template: str
    language: str
    context: dict[str, Any]
    sealed_secrets: str | None
    attempts: int


class _Brand(NamedTuple):
    name: str
    brand_color: str | None
    support_email: str | None


class _Clock:
    """Wall time, or time running on from the ``now`` a caller asked for."""

    def __init__(self, start: datetime | None) -> None:
        self._start = start
        self._monotonic = time.monotonic()

    def now(self) -> datetime:
        if self._start is None:
            return utcnow()
        return self._start + timedelta(seconds=time.monotonic() - self._monotonic)


def message_id(outbox_id: int, settings: Settings | None = None) -> str:
    """The Message-ID header of an outbox message: the same on every attempt, unguessable elsewhere."""
    settings = settings or get_settings()
    return _message_id(settings.resolved_secret_key().encode(), _sender_domain(settings), outbox_id)


def _message_id(key: bytes, domain: str, outbox_id: int) -> str:
    digest = hmac.new(key, f"outbox-message:{outbox_id}".encode(), hashlib.sha256).hexdigest()[:16]
    return f"<outbox-{outbox_id}.{digest}@{domain}>"


def redact(text: str) -> str:
    """An error text with every email address replaced, fit for ``last_error``."""
    return _EMAIL.sub("<address>", text)[:500]


def backoff_seconds(previous_attempts: int, settings: Settings) -> float:
    delay = min(
        settings.mail_retry_base_seconds * 2 ** min(previous_attempts, 32), settings.mail_retry_max_seconds
    )
    return delay * (1 - JITTER * random.random())


def deliver_due(
    factory: sessionmaker[Session],
    *,
    now: datetime | None = None,
    limit: int | None = None,
    transport: Transport | None = None,
    settings: Settings | None = None,
) -> DeliveryReport:
    """Deliver every due message (at most ``limit``), batch after batch, until none is due.

    ``now`` (naive UTC) pretends the run starts at that moment: due messages and backoffs are reckoned
    from it. ``transport`` defaults to the one the settings configure (SMTP, else the mail folder).
    """
    settings = settings or get_settings()
    run = _Run(
        factory,
        settings,
        transport or transport_from_settings(settings, helo=_sender_domain(settings)),
        _Clock(now),
    )
    try:
        run.deliver(limit)
    finally:
        run.close()
    report = run.report
    if report.sent or report.retried or report.dead or report.deferred:
        log.info(
            "mail.delivery_run",
            extra={
                "sent": report.sent,
                "retried": report.retried,
                "dead": report.dead,
                "deferred": report.deferred,
            },
        )
    return report


class _Run:
    def __init__(
        self, factory: sessionmaker[Session], settings: Settings, transport: Transport, clock: _Clock
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.transport = transport
        self.clock = clock
        self.report = DeliveryReport()
        self.box = SecretBox(settings.resolved_secret_key())
        self.brands: dict[int, _Brand] = {}
        # Outcomes are written on one connection held for the run: no pool checkout (and no pre-ping)
        # per message. A factory bound to a connection (the tests' rolled-back session) uses a session.
        bind = factory.kw.get("bind")
        self.connection = bind.connect() if isinstance(bind, Engine) else None
        if self.connection is not None and self.connection.dialect.name == "postgresql":
            # Each outcome is one autocommitted statement (one round trip), committed without waiting for
            # the WAL to reach the disk: a worker that dies loses nothing (the server has the commit); only
            # a crash of PostgreSQL itself could forget the last fraction of a second of outcomes, and those
            # messages would go again, under the same Message-ID. A durable flush per message would cap
            # delivery at the disk's fsync rate.
            self.connection.execution_options(isolation_level="AUTOCOMMIT")
            self.connection.exec_driver_sql("SET synchronous_commit TO OFF")
        self.session = None if self.connection is not None else factory()
        self.connected = False
        self.reconnects = 0
        self.sender_name, self.sender = parseaddr(settings.mail_from)
        self._id_key, self._id_domain = settings.resolved_secret_key().encode(), _sender_domain(settings)

    # --- the loop ---------------------------------------------------------------------------------

    def deliver(self, limit: int | None) -> None:
        done = 0
        while limit is None or done < limit:
            size = (
                self.settings.mail_batch_size
                if limit is None
                else min(self.settings.mail_batch_size, limit - done)
            )
            batch = self._claim(max(size, 1))
            if not batch:
                return
            done += len(batch)
            if not self._send_batch(batch):
                return

    def close(self) -> None:
        try:
            self.transport.close()
        finally:
            if self.connection is not None:
                try:
                    if self.connection.dialect.name == "postgresql":
                        self.connection.exec_driver_sql("RESET synchronous_commit")
                except Exception:  # never hand a connection with our setting back to the pool
                    self.connection.invalidate()
                self.connection.close()
            if self.session is not None:
                self.session.close()

    def _write(self, statement: Executable, params: dict[str, Any] | None = None) -> None:
        """Execute and commit at once: each outcome is recorded before the next message goes."""
        if self.connection is not None:
            self.connection.execute(statement, params)
            self.connection.commit()
        else:
            assert self.session is not None
            self.session.execute(statement, params)
            self.session.commit()

    def _claim(self, size: int) -> list[_Claimed]:
        now = self.clock.now()
        with transaction(self.factory) as session:
            stmt = (
                select(*(getattr(OutboxMessage, name) for name in _Claimed._fields))
                .where(
                    OutboxMessage.status == _QUEUED,
                    OutboxMessage.next_attempt_at <= now,
                    or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
                )
                .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                .limit(size)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            batch = [_Claimed(*row) for row in session.execute(stmt)]
            if batch:
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_([m.id for m in batch]))
                    .values(claimed_until=now + timedelta(seconds=LEASE_SECONDS))
                )
                missing = {m.operator_id for m in batch} - self.brands.keys()
                if missing:
                    rows = session.execute(
                        select(
                            Operator.id, Operator.name, Operator.brand_color, Operator.support_email
                        ).where(Operator.id.in_(missing))
                    )
                    for operator_id, name, brand_color, support_email in rows:
                        self.brands[operator_id] = _Brand(name, brand_color, support_email)
        return batch

    def _send_batch(self, batch: list[_Claimed]) -> bool:
        """Send a claimed batch; False when the connection failed and the run must stop."""
        renew_at = time.monotonic() + LEASE_SECONDS / 2
        for index, message in enumerate(batch):
            if time.monotonic() >= renew_at:
                self._renew(batch[index:])
                renew_at = time.monotonic() + LEASE_SECONDS / 2
            try:
                outgoing = self._compose(message)
            except Exception as exc:  # a template or key problem: retried, and dead if it persists
                log.warning("mail.render_failed", extra={"outbox_id": message.id}, exc_info=True)
                self._failed(
                    message, f"cannot render the message: {type(exc).__name__}: {exc}", permanent=False
                )
                continue
            if not self.connected and not self._connect(batch[index:]):
                return False
            try:
                self.transport.send(outgoing)
            except MessageRejected as exc:
                self._failed(message, exc.text, permanent=exc.permanent)
            except Exception as exc:
                text = exc.text if isinstance(exc, ConnectionFailed) else f"{type(exc).__name__}: {exc}"
                log.warning("mail.connection_lost", extra={"outbox_id": message.id})
                self._failed(message, text, permanent=False)
                self.connected = False
                self.transport.close()
                self.reconnects += 1
                if self.reconnects > MAX_RECONNECTS:
                    self._release(batch[index + 1 :], text)
                    return False
                if not self._connect(batch[index + 1 :]):
                    return False
            else:
                self._sent(message, outgoing.sent_at)
        return True

    def _connect(self, unsent: list[_Claimed]) -> bool:
        try:
            self.transport.open()
        except ConnectionFailed as exc:
            log.warning("mail.connect_failed", extra={"error": redact(exc.text)})
            self._release(unsent, exc.text)
            return False
        self.connected = True
        return True

    def _message_id(self, outbox_id: int) -> str:
        return _message_id(self._id_key, self._id_domain, outbox_id)

    # --- one message ------------------------------------------------------------------------------

    def _compose(self, message: _Claimed) -> Outgoing:
        brand = self.brands.get(message.operator_id) or _Brand("", None, None)
        secrets = self.box.open(message.sealed_secrets) if message.sealed_secrets else None
        subject, text, html = render(message, brand, secrets)
        headers = [
            ("From", mime.address(brand.name or self.sender_name, self.sender)),
            ("To", mime.address("", message.to_address)),
        ]
        if brand.support_email:
            headers.append(("Reply-To", mime.address("", brand.support_email)))
        headers += [
            ("Subject", mime.unstructured(subject)),
            ("Date", format_datetime(datetime.now(UTC))),
            ("Message-ID", self._message_id(message.id)),
            ("Content-Language", message.language),
            ("Auto-Submitted", "auto-generated"),
            ("X-Auto-Response-Suppress", "All"),
        ]
        international = not message.to_address.isascii()
        return Outgoing(
            outbox_id=message.id,
            operator_id=message.operator_id,
            sender=self.sender,
            recipient=message.to_address,
            data=mime.alternative(headers, text, html),
            international=international,
            sent_at=self.clock.now(),
        )

    def _sent(self, message: _Claimed, sent_at: datetime) -> None:
        self._write(_SENT, {"p_id": message.id, "p_attempts": message.attempts + 1, "p_sent_at": sent_at})
        self.report.sent += 1

    def _failed(self, message: _Claimed, error: str, *, permanent: bool) -> None:
        attempts = message.attempts + 1
        params = {"p_id": message.id, "p_attempts": attempts, "p_error": redact(error)}
        if permanent or attempts >= self.settings.mail_max_attempts:
            self._write(_DEAD, params)
            self.report.dead += 1
            log.warning("mail.dead", extra={"outbox_id": message.id, "attempts": attempts})
            return
        delay = backoff_seconds(message.attempts, self.settings)
        self._write(_RETRY, {**params, "p_retry_at": self.clock.now() + timedelta(seconds=delay)})
        self.report.retried += 1

    def _release(self, unsent: list[_Claimed], error: str) -> None:
        self.report.connection_error = redact(error)
        if not unsent:
            return
        self._write(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([m.id for m in unsent]), OutboxMessage.status == _QUEUED)
            .values(claimed_until=None, last_error=redact(error))
        )
        self.report.deferred += len(unsent)

    def _renew(self, unsent: list[_Claimed]) -> None:
        self._write(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([m.id for m in unsent]), OutboxMessage.status == _QUEUED)
            .values(claimed_until=self.clock.now() + timedelta(seconds=LEASE_SECONDS))
        )


def _sender_domain(settings: Settings) -> str:
    address = parseaddr(settings.mail_from)[1]
    return address.rpartition("@")[2] or "occupant"
