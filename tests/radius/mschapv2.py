"""MS-CHAPv2 as a NAS sends it over RADIUS (RFC 2759 for the computation, RFC 2548 for the attributes)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from Crypto.Cipher import DES
from Crypto.Hash import MD4

_MAGIC_1 = b"Magic server to client signing constant"
_MAGIC_2 = b"Pad to make it do more than one iteration"


def _md4(data: bytes) -> bytes:
    return MD4.new(data).digest()


def password_hash(password: str) -> bytes:
    return _md4(password.encode("utf-16-le"))


def _challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, username: str) -> bytes:
    return hashlib.sha1(peer_challenge + authenticator_challenge + username.encode()).digest()[:8]


def _des_key(seven: bytes) -> bytes:
    """56 key bits spread over 8 bytes, 7 bits each (the parity bit is ignored by DES)."""
    bits = int.from_bytes(seven, "big")
    return bytes(((bits >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))


def _challenge_response(challenge: bytes, hashed: bytes) -> bytes:
    padded = hashed + b"\0" * (21 - len(hashed))
    return b"".join(DES.new(_des_key(padded[i : i + 7]), DES.MODE_ECB).encrypt(challenge) for i in (0, 7, 14))


@dataclass(frozen=True)
class Exchange:
    """What the NAS puts in the Access-Request, and how to check the server's MS-CHAP2-Success."""

    challenge: bytes  # MS-CHAP-Challenge (the authenticator challenge)
    response: bytes  # MS-CHAP2-Response
    expected_success: bytes  # "S=<40 hex digits>": proves the server knows the password hash


def exchange(username: str, password: str, *, ident: int = 1) -> Exchange:
    authenticator_challenge = os.urandom(16)
    peer_challenge = os.urandom(16)
    challenge = _challenge_hash(peer_challenge, authenticator_challenge, username)
    hashed = password_hash(password)
    nt_response = _challenge_response(challenge, hashed)
    digest = hashlib.sha1(_md4(hashed) + nt_response + _MAGIC_1).digest()
    authenticator = hashlib.sha1(digest + challenge + _MAGIC_2).hexdigest().upper()
    response = bytes([ident, 0]) + peer_challenge + b"\0" * 8 + nt_response
    return Exchange(authenticator_challenge, response, f"S={authenticator}".encode())
