"""Instance settings, read from ``OCCUPANT_*`` environment variables."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCCUPANT_", extra="ignore")

    data_dir: Path = Field(
        default=Path("./data"), description="Folder for the SQLite database, mail and keys."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; SQLite in data_dir when unset."
    )
    redis_url: str | None = Field(
        default=None, description="Redis for background work; SQLite huey when unset."
    )
    smtp_url: str | None = Field(
        default=None,
        description="smtp://user:pass@host:port (?starttls=1 for STARTTLS) or smtps://; else a mail folder.",
    )
    mail_from: str = "Occupant <no-reply@occupant.localhost>"
    secret_key: str | None = Field(
        default=None, description="Encrypts queued secrets; generated on first run."
    )
    base_url: str = "http://127.0.0.1:8000"
    session_hours: int = Field(default=12, ge=1, description="How long a portal sign-in lasts.")
    invitation_hours: int = Field(
        default=72, ge=1, description="How long invitation and password-reset links stay valid."
    )
    mobile_access_minutes: int = Field(default=60, ge=1)
    mobile_refresh_days: int = Field(default=30, ge=1)
    api_page_size: int = 50
    api_max_page_size: int = 500
    mail_max_attempts: int = 8
    mail_retry_base_seconds: float = 30.0
    mail_retry_max_seconds: float = 3600.0
    mail_batch_size: int = 200
    busy_ttl_seconds: int = 900
    csv_max_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1, description="Largest CSV file a bulk upload accepts, in bytes."
    )
    csv_max_rows: int = Field(default=100_000, ge=1, description="Most rows a bulk CSV upload accepts.")
    job_retention_days: int = Field(
        default=30, ge=1, description="Finished bulk jobs and their results are kept this many days."
    )
    worker_threads: int = 2
    cookie_secure: bool = False

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'occupant.db').resolve()}"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    def resolved_secret_key(self) -> str:
        """The instance's secret key: from the environment, else a file in the data folder made once."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
