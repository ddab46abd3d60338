#!/bin/sh
# Copy the console's front-end libraries from node_modules into the (git-ignored) static vendor folder.
# Run by `npm install` (postinstall); safe to run again.
set -eu
cd "$(dirname "$0")/.."
dest=src/occupant/web/static/vendor
mkdir -p "$dest"
cp node_modules/htmx.org/dist/htmx.min.js "$dest/htmx.min.js"
echo "vendored htmx $(node -p "require('./node_modules/htmx.org/package.json').version") into $dest"
