#!/usr/bin/env bash
# The main job (README): set up, build the web bundle, serve the web app and print its URL.
#   bash scripts/run.sh [CHECKPOINT.pt | WEIGHTS.safetensors] [--port N] [--host H] [...]
# Weights: the one given, else what `sandseg serve` picks without --weights (the weights
# converted last, unless they are the demo weights; else the official mobile_sam.pt,
# downloaded once with a progress line, verified and converted), else the demo weights: the
# conformance checkpoint beside the repository (seeded random, so masks look like noise; the
# terminal and the page say so). A .pt is converted once and cached (~/.cache/sandseg/weights).
# Other options go to `sandseg serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

weights=()
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  [ -f "$1" ] || { echo "run: no weights at $1" >&2; exit 1; }
  weights=(--weights "$1")
  shift
fi
demo="$(pwd)/../shared/conformance/mobile_sam_seed1234.pt"
if ((${#weights[@]} == 0)) && [ -f "$demo" ]; then
  weights=(--fallback-weights "$demo")
fi
.venv/bin/python build.py
exec .venv/bin/sandseg serve "${weights[@]}" "$@"
