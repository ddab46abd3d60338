"""The huey instance. The database is the truth; a queue message only says "look at X"."""

from __future__ import annotations

import os

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey

from occupant.kit.settings import get_settings


def _make_huey() -> Huey:
    settings = get_settings()
    if os.environ.get("OCCUPANT_QUEUE") == "memory":
        return MemoryHuey("occupant")
    if settings.redis_url:
        return RedisHuey("occupant", url=settings.redis_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("occupant", filename=str((settings.data_dir / "queue.db").resolve()))


huey = _make_huey()
