#!/usr/bin/env bash
# Occupant's benchmarks: one command, one table (and JSON in bench/out/).
#   scripts/bench.sh                 # everything, on SQLite and PostgreSQL
#   scripts/bench.sh search --backend sqlite
#   scripts/bench.sh users-tab | api | outbox | build [--rebuild] | explain "smi" --backend postgresql
# The 1,000,000-user datasets are built on first use and cached (bench/out/*.sqlite, database
# occupant_bench on the local PostgreSQL, else a throwaway server); --rebuild rebuilds them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=".venv/bin/python"
[ -x "$PY" ] || PY="python3"
exec "$PY" -m bench "$@"
