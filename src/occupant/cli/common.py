"""Plumbing shared by the commands: settings, sessions, output, and turning errors into messages."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from occupant.kit.errors import OccupantError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Heavy modules (SQLAlchemy, FastAPI, the models) are imported inside the commands, so --help is quick.

console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


def configure(data_dir: Path | None) -> None:
    """Apply --data-dir, and make the settings, engine and session factory be read afresh."""
    from occupant.kit.settings import get_settings

    if data_dir is not None:
        os.environ["OCCUPANT_DATA_DIR"] = str(data_dir)
    release_engine()
    get_settings.cache_clear()


def release_engine() -> None:
    """Close the process's database connections and forget the engine (the next use makes a new one)."""
    from occupant.kit import runtime

    if runtime.get_engine.cache_info().currsize:
        runtime.get_engine().dispose()
    runtime.get_engine.cache_clear()
    runtime._default_factory.cache_clear()
    runtime._read_factory.cache_clear()


def upgrade_database() -> str | None:
    """Bring the schema to the newest migration (a no-op when it is); returns the revision."""
    from occupant.kit import migrate, runtime

    engine = runtime.get_engine()
    migrate.upgrade(engine)
    return current_revision()


def current_revision() -> str | None:
    from alembic.runtime.migration import MigrationContext

    from occupant.kit import runtime

    with runtime.get_engine().connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    from occupant.kit.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def database_label() -> str:
    """The database URL with any password hidden, fit to print."""
    from occupant.kit.settings import get_settings

    return redact_url(get_settings().resolved_database_url)


def redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: committed at the end of the block, rolled back on an error."""
    from occupant.kit.db import transaction
    from occupant.kit.runtime import get_session_factory

    with transaction(get_session_factory()) as session:
        yield session


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=_json_default, ensure_ascii=False))


def fail(message: str, details: list[str] | None = None, code: int = 1) -> typer.Exit:
    err_console.print(f"error: {message}", markup=False)
    for line in details or []:
        err_console.print(f"  {line}", markup=False)
    return typer.Exit(code)


def _field_lines(exc: OccupantError) -> list[str]:
    if not isinstance(exc.details, list):
        return []
    lines = []
    for item in exc.details:
        if isinstance(item, dict) and "message" in item:
            field = item.get("field")
            lines.append(f"{field}: {item['message']}" if field else str(item["message"]))
    return lines


class OccupantGroup(TyperGroup):
    """Runs a command; a domain or database error becomes a message and exit code 1, not a traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except OccupantError as exc:
            lines = _field_lines(exc)
            message = exc.message
            if len(lines) == 1 and message == type(exc).default_message:
                message, lines = lines[0], []
            raise fail(message, lines) from None
        except Exception as exc:
            from pydantic import ValidationError
            from sqlalchemy.exc import DBAPIError

            if isinstance(exc, ValidationError) and exc.title == "Settings":  # a bad OCCUPANT_* variable
                lines = [f"OCCUPANT_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()]
                raise fail("the configuration is not valid", lines) from None
            if not isinstance(exc, DBAPIError):
                raise
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
            raise fail(f"database error on {database_label()}: {reason}") from None
        finally:
            release_engine()


def stdin_has_data(timeout: float = 0.2) -> bool:
    """True when standard input is a pipe or file (not a terminal) that has something to read."""
    stream = sys.stdin
    if stream is None or stream.isatty():
        return False
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return True  # an in-memory stream (tests): reading it cannot block
    import select

    try:
        readable, _, _ = select.select([fd], [], [], timeout)
    except (OSError, ValueError):
        return False
    return bool(readable)


def read_secret_line() -> str:
    """The first line of standard input, without its line ending (spaces inside a password are kept)."""
    line = sys.stdin.readline()
    return line.rstrip("\r\n")
