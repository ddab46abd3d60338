"""Delivering the outbox through a real SMTP server on 127.0.0.1."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from tests.notify.conftest import (
    BRAND_COLOR,
    OPERATOR_NAME,
    SUPPORT_EMAIL,
    RecordingHandler,
    SMTPServer,
    admin_of,
    fresh,
    queue_many,
)

from occupant.kit.clock import utcnow
from occupant.kit.db import transaction
from occupant.kit.settings import get_settings
from occupant.notify.delivery import deliver_due, message_id
from occupant.notify.models import MessageStatus, OutboxMessage
from occupant.notify.service import queue_mail
from occupant.notify.transport import SMTPConfig, SMTPTransport
from occupant.users import service as users


def rows(factory, ids=None):
    with transaction(factory) as session:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id)
        if ids is not None:
            stmt = stmt.where(OutboxMessage.id.in_(ids))
        return list(session.scalars(stmt))


def test_email_change_notifies_both_addresses_in_the_users_language(committed, world, smtp, make_settings):
    user = world.users["fr"]
    with transaction(committed) as session:
        users.change_email(
            session, fresh(session, user), "zoe.martin@nouveau.example", actor=admin_of(session, world)
        )

    settings = make_settings(smtp_url=smtp.url())
    report = deliver_due(committed, settings=settings)

    assert (report.sent, report.retried, report.dead) == (2, 0, 0)
    by_rcpt = {r.rcpt_tos[0]: r for r in smtp.handler.received}
    assert set(by_rcpt) == {"zoe@tenant.example", "zoe.martin@nouveau.example"}
    old, new = by_rcpt["zoe@tenant.example"], by_rcpt["zoe.martin@nouveau.example"]

    assert old.message["Subject"] == f"Votre adresse e-mail chez {OPERATOR_NAME} a été modifiée"
    assert "zoe.martin@nouveau.example" in old.part("plain")
    assert "Si vous n'avez pas demandé ce changement" in old.part("plain")
    assert new.message["Subject"] == f"Votre compte {OPERATOR_NAME} utilise désormais cette adresse e-mail"
    assert "reconnectez-vous avec cette adresse" in new.part("plain")
    assert "zoe@tenant.example" in new.part("plain")  # "it replaces <old address>"
    for received in (old, new):
        assert received.message["Content-Language"] == "fr"
        assert received.message["From"].addresses[0].display_name == OPERATOR_NAME
        assert received.message["From"].addresses[0].addr_spec == "no-reply@occupant.example"
        assert received.message["Reply-To"] == SUPPORT_EMAIL
        assert received.mail_from == "no-reply@occupant.example"
        html = received.part("html")
        assert OPERATOR_NAME in html and BRAND_COLOR in html and 'lang="fr"' in html
    assert sorted(smtp.handler.ids()) == sorted(message_id(row.id, settings) for row in rows(committed))


def test_each_language_reaches_its_reader(committed, world, smtp, make_settings):
    with transaction(committed) as session:
        for lang, user in world.users.items():
            queue_mail(
                session,
                operator_id=world.operator_id,
                to=user.email,
                template="email_changed_new",
                language=lang,
                user_id=user.id,
                context={"first_name": user.first_name, "old_email": "x@y.example"},
            )

    deliver_due(committed, settings=make_settings(smtp_url=smtp.url()))

    greetings = {
        "en": "Hello Alice,",
        "fr": "Bonjour Zoé,",
        "de": "Hallo Jürgen,",
        "es": "Hola, Lucía:",
        "nl": "Beste Daan,",
    }
    received = {r.message["Content-Language"]: r for r in smtp.handler.received}
    assert set(received) == set(greetings)
    for lang, greeting in greetings.items():
        assert received[lang].rcpt_tos == [world.users[lang].email]
        assert greeting in received[lang].part("plain")
        assert greeting in received[lang].part("html")


def test_sent_rows_keep_no_address_context_or_secret(committed, world, smtp, make_settings):
    ids = queue_many(committed, world, 3, secrets={"password": "Wifi-Cleartext-42"})
    with transaction(committed) as session:
        raw = session.execute(text("SELECT sealed_secrets, to_address FROM outbox_messages")).all()
    assert all(sealed and "Wifi-Cleartext-42" not in sealed for sealed, _ in raw)  # encrypted at rest

    deliver_due(committed, settings=make_settings(smtp_url=smtp.url()))

    assert len(smtp.handler.received) == 3
    for row in rows(committed, ids):
        assert row.status == MessageStatus.SENT
        assert row.sent_at is not None and row.attempts == 1
        assert (row.to_address, row.context, row.sealed_secrets, row.last_error) == ("", {}, None, None)
        assert row.template == "email_changed_old" and row.language == "en"
    with transaction(committed) as session:
        dump = " ".join(
            str(v) for r in session.execute(text("SELECT * FROM outbox_messages")).all() for v in r
        )
    assert "tenant.example" not in dump and "Person" not in dump


def test_a_refusing_server_means_a_retry_later_not_a_loss(committed, world, smtp, make_settings):
    settings = make_settings(smtp_url=smtp.url(), mail_retry_base_seconds=60)
    [message] = queue_many(committed, world, 1)
    smtp.handler.rcpt_reply = "451 4.3.0 <person0@tenant.example> mailbox busy, try later"
    before = utcnow()

    report = deliver_due(committed, settings=settings)

    assert (report.sent, report.retried, report.dead) == (0, 1, 0)
    [row] = rows(committed)
    assert row.status == MessageStatus.QUEUED and row.attempts == 1
    assert before + timedelta(seconds=44) < row.next_attempt_at <= utcnow() + timedelta(seconds=60)
    assert row.last_error is not None and row.last_error.startswith("451")
    assert "person0@tenant.example" not in row.last_error and "<address>" in row.last_error
    assert row.to_address == "person0@tenant.example"  # still needed for the retry

    # Not due yet: a run now sends nothing.
    assert deliver_due(committed, settings=settings).sent == 0

    smtp.handler.rcpt_reply = None
    report = deliver_due(committed, settings=settings, now=row.next_attempt_at + timedelta(seconds=1))
    assert report.sent == 1
    assert smtp.handler.ids() == [message_id(message, settings)]
    [row] = rows(committed)
    assert row.status == MessageStatus.SENT and row.attempts == 2 and row.last_error is None


def test_backoff_grows_exponentially_and_is_capped(committed, world, smtp, make_settings):
    settings = make_settings(
        smtp_url=smtp.url(), mail_retry_base_seconds=10, mail_retry_max_seconds=50, mail_max_attempts=20
    )
    queue_many(committed, world, 1)
    smtp.handler.data_reply = "452 4.3.1 insufficient storage"
    now = utcnow()
    delays = []
    for _ in range(5):
        deliver_due(committed, settings=settings, now=now)
        [row] = rows(committed)
        delays.append((row.next_attempt_at - now).total_seconds())
        now = row.next_attempt_at + timedelta(milliseconds=1)
    # base * 2^n, with up to 25 % jitter taken off, never above the cap
    for delay, full in zip(delays, [10, 20, 40, 50, 50], strict=True):
        assert full * 0.75 - 0.01 <= delay <= full + 0.5


def test_dead_after_max_attempts_and_wiped(committed, world, smtp, make_settings):
    settings = make_settings(smtp_url=smtp.url(), mail_max_attempts=3, mail_retry_base_seconds=1)
    queue_many(committed, world, 1, language="de")
    smtp.handler.data_reply = "451 4.7.1 greylisted, try again"
    now = utcnow()
    reports = []
    for _ in range(4):
        reports.append(deliver_due(committed, settings=settings, now=now))
        now += timedelta(hours=1)
    assert [(r.retried, r.dead) for r in reports] == [(1, 0), (1, 0), (0, 1), (0, 0)]
    [row] = rows(committed)
    assert row.status == MessageStatus.DEAD and row.attempts == 3
    assert (row.to_address, row.context, row.sealed_secrets) == ("", {}, None)
    assert row.template == "email_changed_old" and row.language == "de"
    assert row.last_error is not None and "greylisted" in row.last_error
    assert smtp.handler.received == []


def test_a_permanent_refusal_is_dead_at_once(committed, world, smtp, make_settings):
    queue_many(committed, world, 2)
    smtp.handler.rcpt_reply = "550 5.1.1 <person0@tenant.example>: no such user"
    report = deliver_due(committed, settings=make_settings(smtp_url=smtp.url()))
    assert (report.sent, report.retried, report.dead) == (0, 0, 2)
    assert all(
        r.status == MessageStatus.DEAD and r.attempts == 1 and r.to_address == "" for r in rows(committed)
    )
    assert all(
        "no such user" in (r.last_error or "") and "@" not in (r.last_error or "") for r in rows(committed)
    )


def test_messages_share_one_connection(committed, world, smtp, make_settings):
    queue_many(committed, world, 25)
    report = deliver_due(committed, settings=make_settings(smtp_url=smtp.url(), mail_batch_size=10))
    assert report.sent == 25
    controller = smtp.controller
    assert controller is not None
    # one connection from the controller's own start-up probe, one for the whole run
    assert len(controller.sessions) == 2


def test_limit_stops_early(committed, world, smtp, make_settings):
    queue_many(committed, world, 7)
    settings = make_settings(smtp_url=smtp.url(), mail_batch_size=3)
    assert deliver_due(committed, settings=settings, limit=5).sent == 5
    assert deliver_due(committed, settings=settings).sent == 2
    assert len(set(smtp.handler.ids())) == 7


def test_no_server_leaves_everything_queued_without_an_attempt(committed, world, make_settings):
    from tests.notify.conftest import free_port

    queue_many(committed, world, 4)
    report = deliver_due(
        committed, settings=make_settings(smtp_url=f"smtp://127.0.0.1:{free_port()}?timeout=2")
    )
    assert (report.sent, report.retried, report.dead, report.deferred) == (0, 0, 0, 4)
    assert report.connection_error and "cannot connect" in report.connection_error
    for row in rows(committed):
        assert row.status == MessageStatus.QUEUED and row.attempts == 0 and row.claimed_until is None
        assert row.to_address.endswith("@tenant.example")


def test_cancelled_mail_is_never_sent(committed, world, smtp, make_settings):
    user = world.users["en"]
    queue_many(committed, world, 2)
    with transaction(committed) as session:
        users.delete_user(session, fresh(session, user), actor=admin_of(session, world))
    report = deliver_due(committed, settings=make_settings(smtp_url=smtp.url()))
    assert report.sent == 0 and smtp.handler.received == []
    for row in rows(committed):
        assert row.status == MessageStatus.CANCELLED and row.to_address == "" and row.occupier_user_id is None


def test_a_rolled_back_change_sends_nothing(committed, world, smtp, make_settings):
    user = world.users["es"]
    with pytest.raises(RuntimeError), transaction(committed) as session:
        users.change_email(
            session, fresh(session, user), "otra@tenant.example", actor=admin_of(session, world)
        )
        assert session.scalar(select(OutboxMessage.id).limit(1)) is not None  # queued inside the transaction
        raise RuntimeError("the request failed after the change")
    report = deliver_due(committed, settings=make_settings(smtp_url=smtp.url()))
    assert report.sent == 0 and smtp.handler.received == [] and rows(committed) == []


def test_two_workers_share_the_queue_without_sending_twice(committed, world, smtp, make_settings):
    ids = queue_many(committed, world, 120)
    settings = make_settings(smtp_url=smtp.url(), mail_batch_size=10)
    reports = []
    threads = [
        threading.Thread(target=lambda: reports.append(deliver_due(committed, settings=settings)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(r.sent for r in reports) == 120
    assert sorted(smtp.handler.ids()) == sorted(message_id(i, settings) for i in ids)


def test_starttls_and_authentication(committed, world, tls_files, make_settings):
    handler = RecordingHandler()
    server = SMTPServer(
        handler,
        tls_context=tls_files.server_context(),
        require_starttls=True,
        authenticator=handler.authenticator,
        auth_required=True,
        auth_require_tls=True,
    ).start()
    try:
        queue_many(committed, world, 2, language="nl")
        url = server.url(
            query=f"starttls=1&cafile={tls_files.cert}",
            userinfo="mailer%40occupant.example:s3cret%3Apa%20ss@",
        )
        report = deliver_due(committed, settings=make_settings(smtp_url=url))
    finally:
        server.kill()
    assert report.sent == 2
    assert handler.logins == [("mailer@occupant.example", "s3cret:pa ss")]  # once: one connection
    assert all(r.message["Content-Language"] == "nl" for r in handler.received)


def test_wrong_password_sends_nothing_and_keeps_the_mail(committed, world, tls_files, make_settings):
    handler = RecordingHandler()
    server = SMTPServer(
        handler,
        tls_context=tls_files.server_context(),
        require_starttls=True,
        authenticator=handler.authenticator,
        auth_required=True,
    ).start()
    try:
        queue_many(committed, world, 2)
        url = server.url(
            query=f"starttls=1&cafile={tls_files.cert}", userinfo="mailer%40occupant.example:wrong@"
        )
        report = deliver_due(committed, settings=make_settings(smtp_url=url))
    finally:
        server.kill()
    assert report.sent == 0 and report.deferred == 2 and handler.received == []
    assert (
        report.connection_error
        and "535" in report.connection_error
        and "wrong" not in report.connection_error
    )
    assert all(r.status == MessageStatus.QUEUED and r.attempts == 0 for r in rows(committed))


def test_an_untrusted_certificate_is_refused(committed, world, tls_files, make_settings):
    handler = RecordingHandler()
    server = SMTPServer(handler, tls_context=tls_files.server_context(), require_starttls=True).start()
    try:
        queue_many(committed, world, 1)
        report = deliver_due(committed, settings=make_settings(smtp_url=server.url(query="starttls=1")))
    finally:
        server.kill()
    assert report.sent == 0 and handler.received == []
    assert report.connection_error and "CERTIFICATE_VERIFY_FAILED" in report.connection_error


def test_implicit_tls(committed, world, tls_files, make_settings):
    handler = RecordingHandler()
    server = SMTPServer(handler, ssl_context=tls_files.server_context()).start()
    try:
        queue_many(committed, world, 1, language="es")
        report = deliver_due(
            committed, settings=make_settings(smtp_url=server.url("smtps", f"cafile={tls_files.cert}"))
        )
    finally:
        server.kill()
    assert report.sent == 1
    assert handler.received[0].message["Subject"].startswith("Se ha cambiado su dirección")


def test_the_worker_task_uses_the_configured_smtp_url(committed, world, smtp, monkeypatch):
    from occupant.worker.tasks import deliver_mail

    queue_many(committed, world, 2)
    monkeypatch.setenv("OCCUPANT_SMTP_URL", smtp.url())
    get_settings.cache_clear()
    try:
        deliver_mail.call_local()
    finally:
        monkeypatch.delenv("OCCUPANT_SMTP_URL")
        get_settings.cache_clear()
    assert len(smtp.handler.received) == 2


def test_smtp_url_parsing():
    config = SMTPConfig.from_url("smtp://user%40x.example:p%40ss@mail.example?starttls=true&timeout=5")
    assert (config.host, config.port, config.security) == ("mail.example", 587, "starttls")
    assert (config.username, config.password, config.timeout) == ("user@x.example", "p@ss", 5.0)
    assert "p@ss" not in repr(config) and "p@ss" not in repr(SMTPTransport(config).config)
    assert SMTPConfig.from_url("smtp://relay").port == 25
    assert SMTPConfig.from_url("smtp://relay:2525?starttls=0").security == "none"
    assert (SMTPConfig.from_url("smtps://relay").port, SMTPConfig.from_url("smtps://relay").security) == (
        465,
        "tls",
    )
    for bad in [
        "http://relay",
        "smtp://",
        "smtp://relay?starttls=maybe",
        "smtp://relay?tls=1",
        "smtps://relay?starttls=1",
        "smtp://relay:notaport",
    ]:
        with pytest.raises(ValueError) as info:
            SMTPConfig.from_url(bad)
        assert "pass" not in str(info.value)


def test_operator_branding_follows_the_operator(committed, world, smtp, make_settings):
    with transaction(committed) as session:
        from occupant.operators.models import Operator

        other = Operator(name="Kantoor & Co", brand_color="#ffd700")
        session.add(other)
        session.flush()
        queue_mail(
            session,
            operator_id=other.id,
            to="a@b.example",
            template="email_changed_old",
            language="nl",
            context={"first_name": "Sem", "new_email": "c@d.example"},
        )
    queue_many(committed, world, 1)
    deliver_due(committed, settings=make_settings(smtp_url=smtp.url()))
    by_lang = {r.message["Content-Language"]: r for r in smtp.handler.received}
    kantoor = by_lang["nl"]
    assert kantoor.message["From"].addresses[0].display_name == "Kantoor & Co"
    assert kantoor.message["Reply-To"] is None
    html = kantoor.part("html")
    assert "Kantoor &amp; Co" in html and "#ffd700" in html and BRAND_COLOR not in html
    assert "color:#1d2330" in html  # dark text on a light brand colour
    assert OPERATOR_NAME in by_lang["en"].part("html")


def test_an_internationalised_address_goes_out_with_smtputf8(committed, world, make_settings):
    handler = RecordingHandler()
    server = SMTPServer(handler, enable_SMTPUTF8=True).start()
    try:
        with transaction(committed) as session:
            queue_mail(
                session,
                operator_id=world.operator_id,
                to="zoé@tenant.example",
                template="email_changed_old",
                language="fr",
                context={"first_name": "Zoé", "new_email": "zoe@tenant.example"},
            )
        report = deliver_due(committed, settings=make_settings(smtp_url=server.url()))
    finally:
        server.kill()
    assert report.sent == 1
    assert handler.received[0].rcpt_tos == ["zoé@tenant.example"]
    assert str(handler.received[0].message["To"]) == "zoé@tenant.example"


def test_an_internationalised_address_without_smtputf8_is_dead_not_stuck(committed, world, make_settings):
    server = SMTPServer(RecordingHandler(), enable_SMTPUTF8=False).start()
    with transaction(committed) as session:
        queue_mail(
            session,
            operator_id=world.operator_id,
            to="zoé@tenant.example",
            template="email_changed_old",
            language="fr",
            context={"first_name": "Zoé", "new_email": "zoe@tenant.example"},
        )
    queue_many(committed, world, 1)
    try:
        report = deliver_due(committed, settings=make_settings(smtp_url=server.url()))
    finally:
        server.kill()
    assert (report.sent, report.dead) == (1, 1)
    assert [r.rcpt_tos for r in server.handler.received] == [["person0@tenant.example"]]
