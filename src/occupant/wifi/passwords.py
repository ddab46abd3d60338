"""Wi-Fi passwords: random, readable, and hashed only the way RADIUS needs (NT hash)."""

from __future__ import annotations

import secrets

from Crypto.Hash import MD4

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"  # no look-alikes: 0 O 1 l I
LENGTH = 12
_UNBIASED = 256 - 256 % len(ALPHABET)  # random bytes at or above this would favour the first characters


def new_wifi_password() -> str:
    """Twelve characters without look-alikes, in groups of four for typing on a phone."""
    return new_wifi_passwords(1)[0]


def new_wifi_passwords(count: int) -> list[str]:
    """``count`` passwords like :func:`new_wifi_password`, from few reads of the system's random source
    (a bulk create needs thousands): every character uniform over the alphabet."""
    chars: list[str] = []
    needed = count * LENGTH
    while len(chars) < needed:
        missing = needed - len(chars)
        # ~11% of bytes are dropped (the rejection that keeps the choice uniform): ask for a little more
        chars += [
            ALPHABET[b % len(ALPHABET)]
            for b in secrets.token_bytes(missing + missing // 7 + 8)
            if b < _UNBIASED
        ]
    return [
        "-".join("".join(chars[start + i : start + i + 4]) for i in range(0, LENGTH, 4))
        for start in range(0, needed, LENGTH)
    ]


def nt_hash(password: str) -> str:
    """MD4 of the UTF-16LE password, hex: what MS-CHAPv2, PEAP and PAP check against (RFC 2759)."""
    return MD4.new(password.encode("utf-16-le")).hexdigest()
