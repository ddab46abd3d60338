"""Occupant's benchmarks: ``scripts/bench.sh [search|users-tab|api|outbox|all|build]``.

Importing the package points Occupant's settings at ``bench/out`` before any ``occupant`` module
reads them: a fixed secret key, an in-memory huey queue (nothing is consumed behind our back), and
no database, SMTP or Redis from the caller's environment.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"

os.environ["OCCUPANT_DATA_DIR"] = str(OUT / "data")
os.environ["OCCUPANT_SECRET_KEY"] = "bench-secret-key-not-for-production"
os.environ["OCCUPANT_QUEUE"] = "memory"
for _name in ("OCCUPANT_DATABASE_URL", "OCCUPANT_SMTP_URL", "OCCUPANT_REDIS_URL"):
    os.environ.pop(_name, None)
