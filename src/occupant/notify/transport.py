"""Where delivered mail goes: an SMTP server (``OCCUPANT_SMTP_URL``) or, without one, the mail folder.

``smtp://[user:pass@]host[:port][?starttls=1]`` speaks plain SMTP, upgraded with STARTTLS when asked
(port 587 by default then, else 25); ``smtps://`` uses implicit TLS (port 465). With a user the transport
authenticates. Other query options: ``timeout`` (seconds, default 30), ``cafile`` (a CA bundle to trust,
for a relay with a private certificate) and ``helo`` (the name to greet with; the sender's domain by
default). Certificates are always verified.

A transport raises :class:`MessageRejected` when the server refuses one message and the connection
stays usable, and :class:`ConnectionFailed` when the connection cannot be opened or is lost — then
whether an in-flight message arrived is unknown, which the stable Message-ID header lets receivers
de-duplicate.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NoReturn, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from occupant.kit.settings import Settings
from occupant.notify.mailbox import folder_file_name, operator_folder

DEFAULT_TIMEOUT = 30.0
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Outgoing:
    """One rendered message, ready for the wire."""

    outbox_id: int
    operator_id: int
    sender: str  # the envelope sender (MAIL FROM)
    recipient: str
    data: bytes  # the RFC 5322 message, CRLF line endings
    international: bool  # the recipient's address needs SMTPUTF8
    sent_at: datetime  # naive UTC; also names the file in the mail folder


class DeliveryError(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class ConnectionFailed(DeliveryError):
    """The connection could not be opened, or broke; nothing more can be sent on it."""


class MessageRejected(DeliveryError):
    """The server refused this message; the connection can carry the next one."""

    def __init__(self, text: str, *, permanent: bool) -> None:
        super().__init__(text)
        self.permanent = permanent


class Transport(Protocol):
    def open(self) -> None: ...

    def send(self, message: Outgoing) -> None: ...

    def close(self) -> None: ...


# --- SMTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SMTPConfig:
    host: str
    port: int
    security: str = "none"  # "none", "starttls" or "tls" (implicit, smtps://)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    cafile: str | None = None
    helo: str | None = None

    @classmethod
    def from_url(cls, url: str) -> SMTPConfig:
        """Parse an ``smtp://`` or ``smtps://`` URL. Raises ValueError (never echoing the password)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("OCCUPANT_SMTP_URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("OCCUPANT_SMTP_URL has no host")
        query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - {"starttls", "timeout", "cafile", "helo"}
        if unknown:
            raise ValueError(f"OCCUPANT_SMTP_URL has unknown options: {', '.join(sorted(unknown))}")
        starttls = query.get("starttls", "").lower()
        if starttls not in _TRUE | _FALSE:
            raise ValueError("OCCUPANT_SMTP_URL: starttls must be 1/true or 0/false")
        if parts.scheme == "smtps":
            if starttls in _TRUE:
                raise ValueError("OCCUPANT_SMTP_URL: smtps:// is already TLS; drop starttls")
            security, default_port = "tls", 465
        elif starttls in _TRUE:
            security, default_port = "starttls", 587
        else:
            security, default_port = "none", 25
        try:
            port = parts.port or default_port
            timeout = float(query.get("timeout") or DEFAULT_TIMEOUT)
        except ValueError as exc:
            raise ValueError("OCCUPANT_SMTP_URL has an invalid port or timeout") from exc
        return cls(
            host=parts.hostname,
            port=port,
            security=security,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            timeout=timeout,
            cafile=query.get("cafile") or None,
            helo=query.get("helo") or None,
        )


class SMTPTransport:
    """One SMTP connection, reused for every message of a delivery run."""

    def __init__(self, config: SMTPConfig, *, helo: str | None = None) -> None:
        self.config = config
        self._helo = config.helo or helo
        self._smtp: smtplib.SMTP | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.cafile)

    def open(self) -> None:
        config = self.config
        try:
            if config.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    config.host,
                    config.port,
                    local_hostname=self._helo,
                    timeout=config.timeout,
                    context=self._ssl_context(),
                )
            else:
                smtp = smtplib.SMTP(
                    config.host, config.port, local_hostname=self._helo, timeout=config.timeout
                )
            self._smtp = smtp
            smtp.ehlo()
            if config.security == "starttls":
                smtp.starttls(context=self._ssl_context())
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, config.password or "")
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            self.close()
            raise ConnectionFailed(
                f"cannot connect to {config.host}:{config.port}: {_describe(exc)}"
            ) from exc

    def send(self, message: Outgoing) -> None:
        smtp = self._smtp
        if smtp is None or smtp.sock is None:
            raise ConnectionFailed("not connected")
        if message.international and not smtp.has_extn("smtputf8"):
            raise MessageRejected(
                "the server does not accept internationalised addresses (SMTPUTF8)", permanent=True
            )
        options = ["SMTPUTF8", "BODY=8BITMIME"] if message.international else []
        try:
            smtp.sendmail(message.sender, [message.recipient], message.data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (0, b""))
            self._rejected(code, reply, exc)
        except smtplib.SMTPResponseException as exc:
            if isinstance(exc, smtplib.SMTPSenderRefused):  # the sender is the same for every message:
                self._lost(exc)  # a configuration or rate problem, not this message's
            self._rejected(exc.smtp_code, exc.smtp_error, exc)
        except (smtplib.SMTPException, OSError) as exc:
            self._lost(exc)

    def _rejected(self, code: int, reply: bytes | str, exc: Exception) -> NoReturn:
        if self._smtp is None or self._smtp.sock is None or code == 421:  # smtplib closed it
            self._lost(exc)
        text = f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
        raise MessageRejected(text, permanent=500 <= code < 600) from exc

    def _lost(self, exc: Exception) -> NoReturn:
        self.close()
        raise ConnectionFailed(_describe(exc)) from exc

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if smtp.sock is not None:
                smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = (
            exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        )
        return f"{exc.smtp_code} {reply}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --- the mail folder ----------------------------------------------------------------------------


class FolderTransport:
    """Writes each message to ``<mail_dir>/<operator id>/<UTC timestamp>-<outbox id>.eml``, atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def open(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConnectionFailed(f"cannot create the mail folder: {_describe(exc)}") from exc

    def send(self, message: Outgoing) -> None:
        folder = operator_folder(self.directory, message.operator_id)
        final = folder / folder_file_name(message.sent_at, message.outbox_id)
        temporary = folder / f".{final.name}.tmp"
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        except OSError as exc:  # a full or read-only disk: the whole folder is unusable, not this message
            temporary.unlink(missing_ok=True)
            raise ConnectionFailed(f"cannot write to the mail folder: {_describe(exc)}") from exc

    def close(self) -> None:
        return None


def transport_from_settings(settings: Settings, *, helo: str | None = None) -> Transport:
    """SMTP when ``OCCUPANT_SMTP_URL`` is set, else the mail folder. Raises ValueError for a bad URL."""
    if settings.smtp_url:
        return SMTPTransport(SMTPConfig.from_url(settings.smtp_url), helo=helo)
    return FolderTransport(settings.mail_dir)
