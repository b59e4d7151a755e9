#!/usr/bin/env bash
# Make .venv and install into it: the pinned requirements (requirements.txt, or the file
# given), then the project itself, editable, so that .venv/bin/bridge exists. Idempotent:
# the project is installed again only when .venv's copy is missing or points elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r "${1:-requirements.txt}"
if ! [ -x .venv/bin/bridge ] || ! .venv/bin/python -I - "$PWD" <<'PY'
import json, sys
from importlib.metadata import PackageNotFoundError, distribution

try:
    text = distribution("entra-scim-bridge").read_text("direct_url.json") or "{}"
except PackageNotFoundError:
    sys.exit(1)
sys.exit(json.loads(text).get("url") != "file://" + sys.argv[1])
PY
then
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
fi
