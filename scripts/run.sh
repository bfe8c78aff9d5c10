#!/usr/bin/env bash
# The main job (README): set up, build the web bundle, serve the web app and print its URL.
#   bash scripts/run.sh [CHECKPOINT.pt | WEIGHTS.safetensors] [--port N] [--host H]
# Default weights: the conformance checkpoint beside the repository (seeded random weights,
# so masks look like noise); pass the official mobile_sam.pt for real masks. A .pt is
# converted once and cached (~/.cache/sandseg/weights).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

weights="${1:-../shared/conformance/mobile_sam_seed1234.pt}"
shift $(($# > 0 ? 1 : 0))
[ -f "$weights" ] || { echo "run: no weights at $weights" >&2; exit 1; }
.venv/bin/python build.py
exec .venv/bin/sandseg serve --weights "$weights" "$@"
