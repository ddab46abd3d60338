"""Fixtures the app-account API, console and command-line tests borrow from ``tests/api``, ``tests/web``
and ``tests/cli`` (each is used only by the tests that name it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from occupant.cli.common import release_engine
from occupant.kit.settings import get_settings
from tests.api.conftest import api, app, other  # noqa: F401
from tests.cli.conftest import cli  # noqa: F401
from tests.web.browser import chromium  # noqa: F401
from tests.web.conftest import console  # noqa: F401


@pytest.fixture
def fresh_cli_settings() -> Iterator[None]:
    """Commands re-read the settings; afterwards the other tests read their own again."""
    yield
    release_engine()
    get_settings.cache_clear()
