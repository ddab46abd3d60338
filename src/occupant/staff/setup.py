"""First run: a one-time setup link, printed by ``occupant serve``, to create the first operator admin.

Only the token's hash is kept (a file in the data folder); it is deleted when used, and is useless once
any staff member exists.
"""

from __future__ import annotations

from pathlib import Path

from occupant.kit.security import new_token, token_hash, tokens_equal
from occupant.kit.settings import Settings, get_settings


def _path(settings: Settings) -> Path:
    return settings.data_dir / "setup-token.sha256"


def issue_setup_token(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    token = new_token(nbytes=24)
    path = _path(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(token_hash(token))
    path.chmod(0o600)
    return token


def check_setup_token(token: str | None, settings: Settings | None = None) -> bool:
    path = _path(settings or get_settings())
    if not token or not path.exists():
        return False
    return tokens_equal(path.read_text().strip(), token_hash(token))


def discard_setup_token(settings: Settings | None = None) -> None:
    _path(settings or get_settings()).unlink(missing_ok=True)
