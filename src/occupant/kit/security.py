"""Password hashing, random tokens stored as hashes, and encryption of queued secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

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


class SecretBox:
    """Symmetric encryption for secrets at rest (queued mail), keyed from the instance secret."""

    def __init__(self, secret_key: str) -> None:
        key = hashlib.sha256(b"occupant-secretbox:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(data).encode()).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with this instance's key") from exc
