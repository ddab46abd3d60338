"""Password hashing, random tokens stored as hashes, and encryption of queued secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import struct
import threading
import time
from collections.abc import Sequence
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters (64 MiB, 3 passes, 4 lanes)
_DUMMY_HASH = _hasher.hash("occupant-timing-equaliser")
# Each argon2 computation holds 64 MiB and already keeps more than one core busy (its lanes run in threads):
# more of them at once than the process has cores only adds memory (a web worker's thread pool would run
# 40) and latency, not throughput. Sign-in requests beyond this wait their turn.
_argon2_slots = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def hash_password(password: str) -> str:
    with _argon2_slots:
        return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant-effort check: an unknown account costs the same as a wrong password."""
    try:
        with _argon2_slots:
            return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def new_token(prefix: str = "", nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """Tokens (sessions, API keys, links) are stored as SHA-256: high-entropy, so no slow hash is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def generate_password(length: int = 16) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


_FERNET_VERSION = b"\x80"
_BLOCK = 16


class SecretBox:
    """Symmetric encryption for secrets at rest (queued mail), keyed from the instance secret.

    Sealed values are Fernet tokens (AES-128-CBC and HMAC-SHA256 under keys derived from the instance
    secret); :meth:`seal_many` writes the same tokens for a batch at a fraction of the cost.
    """

    def __init__(self, secret_key: str) -> None:
        key = hashlib.sha256(b"occupant-secretbox:" + secret_key.encode()).digest()
        # Fernet's own split of its 32-byte key: the first half signs, the second half encrypts.
        self._signing_key, self._encryption_key = key[:16], key[16:]
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data).encode()).decode()

    def seal_many(self, items: Sequence[dict[str, Any]]) -> list[str]:
        """:meth:`seal` for each item: Fernet tokens that :meth:`open` (and ``Fernet.decrypt``) read.

        ``Fernet.encrypt`` costs ~15 µs a token, mostly in setting up a cipher per token (a bulk create
        seals 200,000). Here one CBC pass encrypts the whole batch: before each item's padded plaintext
        goes a fresh random block, whose ciphertext block becomes that token's IV. So each IV is the
        block cipher applied to a random block — unpredictable and unrelated to every other token, the
        way NIST SP 800-38A (appendix C) recommends generating CBC IVs — and each token's ciphertext is
        exactly CBC under that IV. Each token gets its own HMAC, as Fernet signs it.
        """
        if not items:
            return []
        plaintexts = [json.dumps(item).encode() for item in items]
        randomness = os.urandom(_BLOCK * (len(plaintexts) + 1))
        parts: list[bytes] = []
        for index, plaintext in enumerate(plaintexts):
            pad = _BLOCK - len(plaintext) % _BLOCK  # PKCS7, as Fernet pads
            parts.append(randomness[_BLOCK * index : _BLOCK * (index + 1)])
            parts.append(plaintext + bytes((pad,)) * pad)
        encryptor = Cipher(algorithms.AES(self._encryption_key), modes.CBC(randomness[-_BLOCK:])).encryptor()
        stream = encryptor.update(b"".join(parts)) + encryptor.finalize()
        header = _FERNET_VERSION + struct.pack(">Q", int(time.time()))
        signer = hmac.new(self._signing_key, digestmod=hashlib.sha256)
        tokens: list[str] = []
        position = 0
        for plaintext in plaintexts:
            size = _BLOCK + (len(plaintext) // _BLOCK + 1) * _BLOCK  # the IV block and the ciphertext
            body = header + stream[position : position + size]
            position += size
            mac = signer.copy()
            mac.update(body)
            tokens.append(base64.urlsafe_b64encode(body + mac.digest()).decode())
        return tokens

    def open(self, token: str) -> dict[str, Any]:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with this instance's key") from exc
