"""The console's static files: our own CSS and JS, and third-party libraries installed from npm.

Third-party files are never kept in the repository: ``npm install`` (see package.json) copies them into
``static/vendor/`` (git-ignored). Without them the console still works, with full-page forms and links.
"""

from __future__ import annotations

import logging
import shutil
import sys
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
HTMX = VENDOR_DIR / "htmx.min.js"
# (file inside node_modules, name in static/vendor)
VENDORED = [("htmx.org/dist/htmx.min.js", "htmx.min.js")]


def vendor_from(node_modules: Path) -> list[Path]:
    """Copy the vendored libraries from ``node_modules``; returns the files written."""
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for source, name in VENDORED:
        origin = node_modules / source
        if origin.exists():
            target = VENDOR_DIR / name
            shutil.copyfile(origin, target)
            written.append(target)
    return written


@lru_cache
def htmx_available() -> bool:
    return HTMX.exists()


def check() -> None:
    """At start-up: vendor from a checkout's node_modules if needed, and warn when htmx is missing."""
    if not HTMX.exists():
        repo_modules = Path(__file__).resolve().parents[3] / "node_modules"
        if repo_modules.is_dir():
            vendor_from(repo_modules)
    htmx_available.cache_clear()
    if not htmx_available():
        log.warning(
            "web.htmx_missing: %s not found; run `npm install` at the repository root. "
            "Pages fall back to full-page forms and links.",
            HTMX,
        )


if __name__ == "__main__":  # python -m occupant.web.static_assets [node_modules]
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("node_modules")
    for path in vendor_from(folder):
        print(f"vendored {path}")
