#!/usr/bin/env bash
# The test command: installs what the suite needs on a fresh Debian machine, then runs it.
#   bash tests/run.sh            # whole suite
#   bash tests/run.sh tests/api  # any pytest arguments
set -euo pipefail
cd "$(dirname "$0")/.."

# Real clients and reference servers the tests drive (Debian packages).
APT_PACKAGES=(skopeo podman buildah docker-registry nginx-light wrk curl openssl gnupg nodejs npm
              chromium chromium-driver)
COMMANDS=(skopeo podman buildah docker-registry nginx wrk curl openssl gpg gpgconf node npm chromium chromedriver)
missing=0
for cmd in "${COMMANDS[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 1 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${APT_PACKAGES[@]}" >/dev/null
fi

# Independent verifiers of the registry's signatures on Node.js (@sigstore/verify, pinned
# by tests/node/package-lock.json) into .cache/node: once, then a file compare.
bash tests/node/install.sh >/dev/null

PY="${PYTHON:-python3}"
"$PY" -m pip install -q --disable-pip-version-check -e '.[test]'
# The layering (import contracts in pyproject.toml), the linter and the type checker
# ([tool.mypy] in pyproject.toml) hold before any test runs.
"$PY" -c 'from importlinter.cli import lint_imports_command; lint_imports_command()' --no-cache
"$PY" -m ruff check registry tests loadtest
"$PY" -m mypy
exec "$PY" -m pytest "$@"
