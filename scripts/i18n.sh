#!/usr/bin/env bash
# The occupier portal's gettext catalogs (src/occupant/portal/locale/<lang>/LC_MESSAGES/messages.po).
#
#   scripts/i18n.sh extract   # collect the portal's messages (babel.cfg) into locale/messages.pot
#   scripts/i18n.sh update    # extract, then add new messages to the five catalogs (and drop old ones)
#   scripts/i18n.sh check     # exit 1 when `update` would change a catalog
#
# messages.pot is derived and git-ignored; the .po files are committed. New messages arrive with an empty
# translation (or a fuzzy guess from a similar message): translate them, remove the "fuzzy" flags, and run
# tests/portal/test_i18n.py, which fails while any portal message lacks a translation. The app reads the
# .po files directly (occupant.kit.i18n): nothing to compile.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYBABEL="$ROOT/.venv/bin/pybabel"
[ -x "$PYBABEL" ] || PYBABEL=pybabel
SOURCES=src/occupant/portal
LOCALE="$SOURCES/locale"
POT="$LOCALE/messages.pot"
LANGS=(en fr de es nl)

extract() {
    "$PYBABEL" -q extract --mapping-file=babel.cfg --output-file="$POT" --add-comments=TRANSLATORS: \
        --strip-comment-tags --add-location=file --sort-by-file --project=Occupant --copyright-holder=Occupant \
        --version="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)" --width=110 "$SOURCES"
}

update() {
    local lang
    for lang in "${LANGS[@]}"; do
        "$PYBABEL" -q update --input-file="$POT" --output-dir="$LOCALE" --domain=messages --locale="$lang" \
            --init-missing --ignore-obsolete --ignore-pot-creation-date --width=110 "$@"
    done
}

case "${1:-}" in
    extract) extract ;;
    update) extract; update ;;
    check) extract; update --check ;;
    *) echo "usage: scripts/i18n.sh extract|update|check" >&2; exit 2 ;;
esac
