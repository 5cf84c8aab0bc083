#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment from the pinned lock. Idempotent and quiet
# when nothing changed: the lock's hash is remembered inside the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
stamp=.venv/.installed-$(cat pyproject.toml client/pyproject.toml requirements.lock | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
if [ ! -f "$stamp" ]; then
  echo "bootstrap: installing pinned dependencies (requirements.lock)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[test]" -e ./client 2>&1 \
    | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import tracker, gateway, nameko, falcon, task_tracker_client" # fail loudly if the install did not work
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# The manager UI's browser tests (tests/browser) drive Debian's Chromium through Debian's chromedriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  packages="chromium chromium-driver"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing $packages (Debian packages, for the UI's browser tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq $packages >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq $packages >/dev/null; }
  else
    echo "bootstrap: the browser tests need Debian's $packages: sudo apt-get install $packages" >&2
  fi
fi
