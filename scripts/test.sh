#!/usr/bin/env bash
# Install everything into .venv and run the whole test suite (lint, types and coverage included).
set -euo pipefail
cd "$(dirname "$0")/.."
# .venv with the dev requirements (hadolint and docker-compose included) and the project
./scripts/install.sh requirements-dev.txt
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# the console's browser tests (tests/console/test_browser.py) drive Debian's chromium
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq && apt-get install -y -qq chromium
fi
# coverage of bridge/ and workers/ (floor in pyproject.toml: [tool.coverage.report])
exec .venv/bin/python -m pytest --cov --cov-report=term:skip-covered "$@"
