#!/usr/bin/env bash
# The test command (README, CI): set up what is missing, lint, then run every test tier.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

echo "== GPU tier adapter: $(.venv/bin/sandseg info --adapter)"
echo "== lint (ruff) and types (mypy)"
.venv/bin/ruff check py tests build.py
.venv/bin/ruff format --check py tests build.py
.venv/bin/mypy
echo "== tests"
# A whole run also checks that every requirement of RELIABILITY.md is shown by a passing test
# and writes the reliability report (the table is printed at the end). The report's directory
# goes after "=": given as a separate word, pytest takes it for a test path once it exists,
# and then does not load tests/conftest.py, which defines the option.
whole_run=()
if [ $# -eq 0 ]; then
  whole_run=(--require-every-requirement --reliability-report=out/reliability)
fi
.venv/bin/python -m pytest "${whole_run[@]}" "$@"
