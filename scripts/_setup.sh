# Set-up steps shared by scripts/run.sh and scripts/test.sh (sourced, not run).
# Each step does nothing when what it installs is already there, so the scripts are quick to run again.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
export DEBIAN_FRONTEND=noninteractive
export UV_PYTHON_DOWNLOADS=never  # use the machine's Python; never fetch one
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ -t 1 ]; then
    say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
else
    say() { printf '==> %s\n' "$*"; }
fi
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -E "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

_apt_updated=0
# apt_install PKG...: install the Debian packages that are missing (apt-get update once, only if needed).
apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]}, and there is no apt-get to install them"
    say "Installing Debian packages: ${missing[*]}"
    if [ "$_apt_updated" = 0 ]; then
        as_root apt-get update -q
        _apt_updated=1
    fi
    # Services that the packages bring (PostgreSQL, FreeRADIUS) are not started: the tests start their own.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        added_policy=1
    fi
    local rc=0
    as_root apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" || rc=$?
    [ "$added_policy" = 1 ] && as_root rm -f "$policy"
    [ "$rc" = 0 ] || die "apt-get install failed (exit $rc)"
}

# find_python: a Python 3.11 or newer, in $PYTHON.
find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            PYTHON="$(command -v "$candidate")"
            return 0
        fi
    done
    die "Occupant needs Python 3.11 or newer (apt-get install python3)"
}

# find_uv: uv, installed with pip when missing; sets the array UV.
find_uv() {
    if command -v uv >/dev/null 2>&1; then UV=(uv); return 0; fi
    if "$PYTHON" -m uv --version >/dev/null 2>&1; then UV=("$PYTHON" -m uv); return 0; fi
    say "Installing uv with pip"
    if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
        apt_install python3-pip
    fi
    "$PYTHON" -m pip install --quiet uv 2>/dev/null \
        || "$PYTHON" -m pip install --quiet --break-system-packages uv \
        || die "could not install uv with pip"
    UV=("$PYTHON" -m uv)
}

# python_env [dev]: the project's virtual environment in .venv, with the project (and its dev tools).
python_env() {
    find_python
    find_uv
    if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
        say "Creating $VENV"
        rm -rf "$VENV"
        "${UV[@]}" venv --quiet --python "$PYTHON" "$VENV"
    fi
    local target="$ROOT"
    [ "${1:-}" = dev ] && target="$ROOT[dev]"
    say "Installing Occupant${1:+ and its $1 tools} into .venv"
    "${UV[@]}" pip install --quiet --python "$VENV/bin/python" -e "$target"
}

# node_env: the console's front-end libraries (npm), copied into src/occupant/web/static/vendor/.
node_env() {
    [ -f "$ROOT/package.json" ] || return 0
    if ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
    fi
    say "Installing front-end libraries with npm"
    (
        cd "$ROOT"
        if [ -f package-lock.json ]; then
            npm ci --no-audit --no-fund --loglevel=error
        else
            npm install --no-audit --no-fund --loglevel=error
        fi
        # package.json's postinstall vendors them; make sure, in case scripts were disabled.
        if [ ! -f src/occupant/web/static/vendor/htmx.min.js ]; then
            if [ -f scripts/vendor_static.sh ]; then
                sh scripts/vendor_static.sh
            else
                mkdir -p src/occupant/web/static/vendor
                cp node_modules/htmx.org/dist/htmx.min.js src/occupant/web/static/vendor/htmx.min.js
            fi
        fi
    )
}
