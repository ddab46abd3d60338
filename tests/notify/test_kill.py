"""The SMTP server dies mid-run: nothing is lost, nothing is sent twice, when it comes back."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import select, update
from tests.notify.conftest import RecordingHandler, SMTPServer, Waiter, queue_many

from occupant.kit.clock import utcnow
from occupant.kit.db import transaction
from occupant.notify.delivery import DeliveryReport, deliver_due, message_id
from occupant.notify.models import MessageStatus, OutboxMessage


def test_killing_the_server_mid_run_loses_nothing_and_doubles_nothing(committed, world, make_settings):
    ids = queue_many(
        committed, world, 300, language="fr", secrets={"sign_in_link": "https://x.example/t/abc"}
    )
    waiter = Waiter(120)
    first = SMTPServer(RecordingHandler(on_received=waiter)).start()
    settings = make_settings(smtp_url=first.url(query="timeout=5"), mail_batch_size=100)

    reports: list[DeliveryReport] = []
    worker = threading.Thread(target=lambda: reports.append(deliver_due(committed, settings=settings)))
    worker.start()
    assert waiter.event.wait(60), "the first server never got 120 messages"
    first.kill()
    worker.join(60)
    assert not worker.is_alive()

    [interrupted] = reports
    before_restart = first.handler.ids()
    assert 120 <= len(before_restart) < 300  # it really died mid-run
    assert interrupted.sent == len(before_restart)  # what the worker counts as sent is what arrived
    assert interrupted.retried <= 1  # at most the message in flight counted an attempt
    assert interrupted.dead == 0 and interrupted.connection_error
    assert interrupted.sent + interrupted.retried + interrupted.deferred <= 300
    with transaction(committed) as session:
        waiting = session.scalars(
            select(OutboxMessage).where(OutboxMessage.status == MessageStatus.QUEUED)
        ).all()
    assert len(waiting) == 300 - interrupted.sent
    assert all(m.claimed_until is None and m.attempts <= 1 for m in waiting)  # nobody holds them
    assert all(m.to_address and m.sealed_secrets for m in waiting)  # still deliverable

    second = SMTPServer(RecordingHandler(), port=first.port).start()  # back, on the same port
    try:
        resumed = deliver_due(
            committed, settings=settings, now=utcnow() + timedelta(hours=2)
        )  # past any backoff
    finally:
        second.kill()

    assert resumed.sent == 300 - interrupted.sent and resumed.retried == resumed.dead == 0
    counts = Counter(before_restart + second.handler.ids())
    assert set(counts) == {message_id(i, settings) for i in ids}  # nothing lost
    assert max(counts.values()) == 1  # nothing twice
    assert all("Bonjour Person" in r.part("plain") for r in first.handler.received + second.handler.received)
    with transaction(committed) as session:
        statuses = Counter(session.scalars(select(OutboxMessage.status)).all())
    assert statuses == {MessageStatus.SENT: 300}


def test_a_crashed_workers_claim_expires_and_the_mail_then_goes(committed, world, smtp, make_settings):
    ids = queue_many(committed, world, 5)
    settings = make_settings(smtp_url=smtp.url())
    now = utcnow()
    with transaction(committed) as session:  # a worker claimed two messages, then died
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids[:2]))
            .values(claimed_until=now + timedelta(minutes=5))
        )

    assert deliver_due(committed, settings=settings, now=now).sent == 3  # the claimed ones wait
    assert deliver_due(committed, settings=settings, now=now + timedelta(minutes=6)).sent == 2  # then go
    assert sorted(smtp.handler.ids()) == sorted(message_id(i, settings) for i in ids)
