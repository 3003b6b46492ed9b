#!/usr/bin/env bash
# Installs the Node.js checkers the tests verify signatures with (@sigstore/verify, pinned by
# package-lock.json) into .cache/node of the repository: once, then a few file compares.
#   bash tests/node/install.sh     # prints the node_modules directory
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dest="$here/../../.cache/node"
mkdir -p "$dest"
if ! cmp -s "$here/package-lock.json" "$dest/package-lock.json" \
        || [ ! -f "$dest/node_modules/@sigstore/verify/package.json" ]; then
    cp "$here/package.json" "$here/package-lock.json" "$dest/"
    npm ci --prefix "$dest" --ignore-scripts --no-audit --no-fund --loglevel=error >&2
fi
cd "$dest/node_modules" && pwd
