#!/usr/bin/env bash
# Install Occupant and run it: `./scripts/run.sh` (extra options go to `occupant serve`, e.g. --port 9000).
#
# Creates .venv with uv, installs the project and the console's front-end libraries, then runs the
# server on SQLite in ./data, with the background worker in the same process and mail written to
# ./data/mail. It prints the address to open and how to sign in.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
cd "$ROOT"

python_env
node_env

export OCCUPANT_DATA_DIR="${OCCUPANT_DATA_DIR:-./data}"
say "Starting Occupant (data in $OCCUPANT_DATA_DIR)"
exec "$VENV/bin/occupant" serve "$@"
