#!/usr/bin/env bash
# The main job (README): set up, convert a MobileSAM checkpoint, segment a photo natively on
# WebGPU, and write the result (out/segment.npz) and an overlay picture (out/segment.png).
#   bash scripts/run.sh [CHECKPOINT.pt] [IMAGE] [--point X,Y,LABEL ...]
# Defaults: the conformance checkpoint and a photo from ../shared (seeded random weights: the
# mask is noise-like; pass the official mobile_sam.pt for real masks). The web app replaces
# this job in a later issue.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

checkpoint="${1:-../shared/conformance/mobile_sam_seed1234.pt}"
image="${2:-../shared/images/picture1.jpg}"
shift $(($# < 2 ? $# : 2))
[ -f "$checkpoint" ] || { echo "run: no checkpoint at $checkpoint" >&2; exit 1; }
[ -f "$image" ] || { echo "run: no image at $image" >&2; exit 1; }
points=("$@")
[ ${#points[@]} -gt 0 ] || points=(--point 384,385,1)

mkdir -p out
weights="out/$(basename "${checkpoint%.*}").safetensors"
[ -f "$weights" ] && [ "$weights" -nt "$checkpoint" ] || .venv/bin/sandseg convert "$checkpoint" "$weights"
.venv/bin/sandseg segment --weights "$weights" --image "$image" "${points[@]}" --multimask \
  --out out/segment.npz --overlay out/segment.png
