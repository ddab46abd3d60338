"""The wire form of a message (RFC 5322 + MIME), built directly.

The standard library's ``EmailMessage`` re-parses every header it is given and costs milliseconds per
message; a delivery run sends thousands. The shape here is fixed — a ``multipart/alternative`` of a
plain-text and an HTML part, both UTF-8 quoted-printable — so it is written out directly, with the
standard library's encoders for the parts that need care (encoded words, quoted-printable).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets

CRLF = "\r\n"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _clean(value: str, what: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"{what} contains a control character")
    return value


def address(display_name: str, addr_spec: str) -> str:
    """``Display Name <addr>``, the name quoted or encoded as needed. A non-ASCII address stays as it is
    (it travels with SMTPUTF8)."""
    addr_spec = _clean(addr_spec, "address")
    name = " ".join(display_name.split())
    if not name:
        return addr_spec
    shown = f'"{_quote(name)}"' if name.isascii() else encoded_words(name)
    return f"{shown} <{addr_spec}>"


def unstructured(value: str) -> str:
    """A header's value: as it is when ASCII, else RFC 2047 encoded words, one per folded line."""
    value = " ".join(_CONTROL.sub(" ", value).split())
    return value if value.isascii() else encoded_words(value)


def encoded_words(value: str, chunk: int = 45) -> str:
    """``=?utf-8?b?...?=`` words of at most 72 characters, cut between characters, folded."""
    words, current = [], b""
    for char in value:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > chunk:
            words.append(current)
            current = b""
        current += encoded
    if current:
        words.append(current)
    return (CRLF + " ").join(f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words)


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def _quoted_printable(text: str) -> str:
    data = text.replace("\r\n", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).decode("ascii")
    return encoded.replace("\n", CRLF)


def alternative(headers: list[tuple[str, str]], text: str, html: str) -> bytes:
    """A complete message: ``headers`` (already encoded values) and a text + HTML ``multipart/alternative``.

    The boundary starts with ``=_``, which quoted-printable content can never contain.
    """
    boundary = "=_" + secrets.token_hex(16)
    lines = [f"{name}: {value}" for name, value in headers]
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
    ]
    for subtype, body in (("plain", text), ("html", html)):
        lines += [
            f"--{boundary}",
            f'Content-Type: text/{subtype}; charset="utf-8"',
            "Content-Transfer-Encoding: quoted-printable",
            "",
            _quoted_printable(body),
        ]
    lines += [f"--{boundary}--", ""]
    return CRLF.join(lines).encode("utf-8")
