"""The mail folder: where mail goes when no SMTP server is configured, and what the console's mailbox shows.

Each delivered message is one RFC 5322 file, ``<mail_dir>/<operator id>/<UTC timestamp>-<outbox id>.eml``
(for example ``data/mail/3/20261121T101500.123456Z-42.eml``). One folder per operator, so one operator's
console never lists another operator's mail.

For the console page::

    summaries = list_folder(50, 0, operator_id=actor.operator_id)   # newest first
    total = count_folder(operator_id=actor.operator_id)
    message = read_folder_message(name, operator_id=actor.operator_id)  # raises NotFound

``message.html`` is the HTML part exactly as sent: show it only in a sandboxed iframe
(``<iframe sandbox srcdoc="...">``), never inline in the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path
from typing import NamedTuple, cast

from occupant.kit.errors import NotFound
from occupant.kit.settings import get_settings

_TIMESTAMP = "%Y%m%dT%H%M%S.%fZ"
_FILE_NAME = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)-(\d{1,19})\.eml$")


@dataclass(frozen=True)
class MailSummary:
    """One line of the mailbox list."""

    name: str  # the file name: pass it to read_folder_message
    date: datetime  # when it was delivered to the folder (naive UTC)
    sender: str  # the From header, e.g. "Acme Workspace <no-reply@…>"
    to: str
    subject: str


class FolderMessage(NamedTuple):
    """One message: its headers (decoded), its plain-text part and its HTML part (None when absent)."""

    headers: dict[str, str]
    text: str | None
    html: str | None


def folder_file_name(sent_at: datetime, outbox_id: int) -> str:
    return f"{sent_at.strftime(_TIMESTAMP)}-{outbox_id}.eml"


def operator_folder(mail_dir: Path, operator_id: int) -> Path:
    return mail_dir / str(int(operator_id))


def _folder(operator_id: int, folder: Path | None) -> Path:
    return operator_folder(folder if folder is not None else get_settings().mail_dir, operator_id)


def _names_newest_first(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append((match.group(1), int(match.group(2)), entry.name))
    found.sort(reverse=True)
    return [name for _, _, name in found]


def list_folder(
    limit: int = 50, offset: int = 0, *, operator_id: int, folder: Path | None = None
) -> list[MailSummary]:
    """Summaries of the operator's delivered mail, newest first, ``limit`` from ``offset``.

    ``folder`` is the mail folder (``settings.mail_dir`` when omitted).
    """
    directory = _folder(operator_id, folder)
    summaries = []
    for name in _names_newest_first(directory)[offset : offset + limit]:
        try:
            with (directory / name).open("rb") as handle:
                headers = BytesHeaderParser(policy=policy.default).parse(handle)
        except FileNotFoundError:  # deleted (a user was deleted) while we listed
            continue
        summaries.append(
            MailSummary(
                name=name,
                date=_date_of(name),
                sender=str(headers.get("From", "")),
                to=str(headers.get("To", "")),
                subject=str(headers.get("Subject", "")),
            )
        )
    return summaries


def count_folder(*, operator_id: int, folder: Path | None = None) -> int:
    """How many messages the operator's mail folder holds."""
    return len(_names_newest_first(_folder(operator_id, folder)))


def read_folder_message(name: str, *, operator_id: int, folder: Path | None = None) -> FolderMessage:
    """One message of the operator's mail folder, by the ``name`` that list_folder gave.

    Raises NotFound for a name that is not a message of this operator's folder (including any attempt to
    reach outside it: only names of the form ``<timestamp>-<id>.eml`` are accepted).
    """
    directory = _folder(operator_id, folder)
    if not _FILE_NAME.match(name or ""):
        raise NotFound("No such message.")
    path = directory / name
    if path.resolve().parent != directory.resolve():
        raise NotFound("No such message.")
    try:
        with path.open("rb") as handle:
            message = cast(EmailMessage, BytesParser(policy=policy.default).parse(handle))
    except FileNotFoundError as exc:
        raise NotFound("No such message.") from exc
    headers = {key: str(value) for key, value in message.items()}
    return FolderMessage(headers, _part(message, "plain"), _part(message, "html"))


def delete_folder_messages(
    messages: Iterable[tuple[int, datetime, int]], *, folder: Path | None = None
) -> None:
    """Remove delivered messages (operator id, sent at, outbox id) from the folder; absent files are fine."""
    mail_dir = folder if folder is not None else get_settings().mail_dir
    for operator_id, sent_at, outbox_id in messages:
        (operator_folder(mail_dir, operator_id) / folder_file_name(sent_at, outbox_id)).unlink(
            missing_ok=True
        )


def _date_of(name: str) -> datetime:
    match = _FILE_NAME.match(name)
    assert match is not None
    return datetime.strptime(match.group(1), _TIMESTAMP)


def _part(message: EmailMessage, subtype: str) -> str | None:
    body = message.get_body(preferencelist=(subtype,))
    if body is None or body.get_content_subtype() != subtype:
        return None
    content = cast(EmailMessage, body).get_content()
    return content if isinstance(content, str) else None
