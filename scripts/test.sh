#!/usr/bin/env bash
# Install everything the tests need, then run the linters, the type checker and the whole test suite.
#
#   scripts/test.sh               # set up, then ruff, ruff format --check, mypy, pytest -n 2
#   scripts/test.sh --setup-only  # set up only
#   scripts/test.sh -- -k users   # extra arguments after -- go to pytest
#
# Installs (when missing): PostgreSQL server and contrib (the tests use the server on 127.0.0.1:5432
# when it answers, else start a throwaway one), Chromium (browser tests), FreeRADIUS with its
# PostgreSQL module and eapol_test, redis-server (the two-worker bulk test starts a throwaway one),
# the Python environment with the dev tools, and the npm packages.
# Exits non-zero if any step fails; every check runs even after an earlier one failed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
cd "$ROOT"

setup_only=0
pytest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --setup-only) setup_only=1 ;;
        --) shift; pytest_args=("$@"); break ;;
        *) die "unknown option $1 (see the top of scripts/test.sh)" ;;
    esac
    shift
done

apt_install postgresql postgresql-contrib chromium fonts-liberation \
    freeradius freeradius-utils freeradius-postgresql eapoltest redis-server
python_env dev
node_env
[ "$setup_only" = 1 ] && { say "Set-up done"; exit 0; }

failed=()
step() {
    local name="$1"
    shift
    say "$name"
    local rc=0
    "$@" || rc=$?
    if [ "$rc" != 0 ]; then
        printf 'FAILED: %s (exit %s)\n' "$name" "$rc"
        failed+=("$name")
    fi
}

# pytest's exit code 5 (no tests collected) is a failure like any other non-zero code.
step "ruff check" "$VENV/bin/ruff" check src tests
step "ruff format --check" "$VENV/bin/ruff" format --check src tests
step "mypy" "$VENV/bin/mypy"
step "pytest" "$VENV/bin/pytest" -n 2 "${pytest_args[@]}"

if [ "${#failed[@]}" -gt 0 ]; then
    printf '\nscripts/test.sh: FAILED: %s\n' "${failed[*]}"
    exit 1
fi
printf '\nscripts/test.sh: all checks passed\n'
