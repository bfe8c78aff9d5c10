#!/usr/bin/env bash
# The main job (README): set up, then run the kernel benchmark on this machine's adapter.
# Later issues replace this with the web app.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
mkdir -p out
exec .venv/bin/sandseg bench kernels --json out/bench-kernels.json "$@"
