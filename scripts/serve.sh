#!/usr/bin/env bash
# Install into .venv and start the whole bridge: web (granian), two workers, and an
# embedded Redis when REDIS_URL is unset. Prints the SCIM URL, token and CLI. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh requirements.txt
exec .venv/bin/python -m bridge.runtime.serve "$@"
