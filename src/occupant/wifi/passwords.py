"""Wi-Fi passwords: random, readable, and hashed only the way RADIUS needs (NT hash)."""

from __future__ import annotations

from Crypto.Hash import MD4

from occupant.kit.security import generate_password


def new_wifi_password() -> str:
    """Twelve characters without look-alikes, in groups of four for typing on a phone."""
    raw = generate_password(12)
    return "-".join(raw[i : i + 4] for i in range(0, 12, 4))


def nt_hash(password: str) -> str:
    """MD4 of the UTF-16LE password, hex: what MS-CHAPv2, PEAP and PAP check against (RFC 2759)."""
    return MD4.new(password.encode("utf-16-le")).hexdigest()
