"""Fixtures for mail tests: a real SMTP server on 127.0.0.1, TLS certificates, a branded operator."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker
from tests.factories import admin_actor, make_occupier, make_operator, make_user

from occupant.authz.actor import Actor
from occupant.kit.db import transaction
from occupant.kit.settings import Settings
from occupant.notify.service import queue_mail
from occupant.operators.models import Operator
from occupant.users.models import OccupierUser

OPERATOR_NAME = "Atelier Lumière Workspaces"
BRAND_COLOR = "#c0392b"
SUPPORT_EMAIL = "help@atelier-lumiere.example"


# --- the SMTP server ----------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None and body.get_content_subtype() == subtype, f"no text/{subtype} part"
        return cast(str, cast(EmailMessage, body).get_content())


@dataclass
class RecordingHandler:
    """Accepts and records every message, or answers ``rcpt_reply`` / ``data_reply`` instead."""

    received: list[Received] = field(default_factory=list)
    rcpt_reply: str | None = None
    data_reply: str | None = None
    logins: list[tuple[str, str]] = field(default_factory=list)
    on_received: Callable[[int], None] | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_reply:
            return self.data_reply
        content = envelope.original_content or b""
        message = cast(EmailMessage, email.message_from_bytes(content, policy=policy.default))
        self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), message))
        if self.on_received is not None:
            self.on_received(len(self.received))
        return "250 Message accepted for delivery"

    def authenticator(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        ok = (login, password) == ("mailer@occupant.example", "s3cret:pa ss")
        return AuthResult(success=ok, handled=False)  # a refusal answers 535

    def ids(self) -> list[str]:
        return [r.message_id for r in self.received]


class _TrackingController(Controller):
    """A Controller that remembers its sessions, so that a kill can cut them off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[SMTP] = []

    def factory(self) -> SMTP:
        smtp = super().factory()
        self.sessions.append(smtp)
        return smtp


class SMTPServer:
    """aiosmtpd on 127.0.0.1; ``kill()`` drops the listener and every connection at once, like a crash."""

    def __init__(self, handler: RecordingHandler, port: int | None = None, **options: Any) -> None:
        self.handler = handler
        self.port = port or free_port()
        self.options = options
        self.controller: _TrackingController | None = None

    def start(self) -> SMTPServer:
        self.controller = _TrackingController(
            self.handler, hostname="127.0.0.1", port=self.port, **self.options
        )
        self.controller.start()
        return self

    def kill(self) -> None:
        controller = self.controller
        if controller is None:
            return
        self.controller = None

        def cut_off() -> None:
            if controller.server is not None:
                controller.server.close()
            for smtp in controller.sessions:
                if smtp.transport is not None:
                    smtp.transport.abort()

        controller.loop.call_soon_threadsafe(cut_off)
        controller.stop()

    def url(self, scheme: str = "smtp", query: str = "", userinfo: str = "") -> str:
        return f"{scheme}://{userinfo}127.0.0.1:{self.port}{'?' + query if query else ''}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer(RecordingHandler()).start()
    try:
        yield server
    finally:
        server.kill()


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost, made for this test run."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    files = TlsFiles(folder / "cert.pem", folder / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


# --- settings and data --------------------------------------------------------------------------


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for one test: its own data folder (mail folder), quick retries unless told otherwise."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "secret_key": "test-secret-key-not-for-production",
            "mail_from": "Occupant <no-reply@occupant.example>",
            "smtp_url": None,
            "mail_retry_base_seconds": 30.0,
            "mail_retry_max_seconds": 3600.0,
            "mail_max_attempts": 8,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@dataclass
class World:
    operator_id: int
    occupier_id: int
    users: dict[str, OccupierUser]  # by language


@pytest.fixture
def world(committed: sessionmaker[DbSession]) -> World:
    """A branded operator with one occupier and a user in each language, committed."""
    with transaction(committed) as session:
        operator = make_operator(session, name=OPERATOR_NAME)
        operator.brand_color = BRAND_COLOR
        operator.support_email = SUPPORT_EMAIL
        occupier = make_occupier(session, operator)
        people = [
            ("en", "Alice", "alice"),
            ("fr", "Zoé", "zoe"),
            ("de", "Jürgen", "juergen"),
            ("es", "Lucía", "lucia"),
            ("nl", "Daan", "daan"),
        ]
        users = {
            lang: make_user(
                session, occupier, language=lang, first_name=first, email=f"{local}@tenant.example"
            )
            for lang, first, local in people
        }
        session.flush()
        return World(operator.id, occupier.id, users)


def queue_many(
    factory: sessionmaker[DbSession],
    world: World,
    count: int,
    *,
    language: str = "en",
    secrets: dict[str, Any] | None = None,
) -> list[int]:
    """Queue ``count`` email-change notices in one committed transaction; returns their ids."""
    user = world.users[language]
    with transaction(factory) as session:
        messages = [
            queue_mail(
                session,
                operator_id=world.operator_id,
                to=f"person{i}@tenant.example",
                template="email_changed_old",
                language=language,
                user_id=user.id,
                context={"first_name": f"Person {i}", "new_email": f"new{i}@tenant.example"},
                secrets=secrets,
            )
            for i in range(count)
        ]
        session.flush()
        return [m.id for m in messages]


def fresh(session: DbSession, user: OccupierUser) -> OccupierUser:
    """The user as the database has it now, in ``session``."""
    found = session.get(OccupierUser, user.id)
    assert found is not None
    return found


def admin_of(session: DbSession, world: World) -> Actor:
    operator = session.get(Operator, world.operator_id)
    assert operator is not None
    return admin_actor(operator)


class Waiter:
    """Lets a test wait until an SMTP handler has received ``n`` messages."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.event = threading.Event()

    def __call__(self, count: int) -> None:
        if count >= self.n:
            self.event.set()
