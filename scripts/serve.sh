#!/usr/bin/env bash
# Install into .venv and start the whole bridge: web (granian), two workers, and an
# embedded Redis when REDIS_URL is unset. Prints the SCIM URL and token. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
exec .venv/bin/python -m bridge.runtime.serve "$@"
