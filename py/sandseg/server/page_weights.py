"""The weights the page downloads: a float16-stored copy of the server's weights (half the
bytes; weights/half.py), made once per weights file and pinned by sha256 like them.

The server keeps computing with the weights it was given; only the page's download is
halved. The copy is derived in this process from the verified .safetensors (no pickle is
involved) into a cache folder, keyed by the source's sha256, with a manifest that records
both hashes, and reused while the manifest matches.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..weights import SafetensorsReader, convert_checkpoint, manifest_path, verify_weights


def is_float16(weights: Path) -> bool:
    """Whether `weights` was written by `sandseg convert --dtype float16`."""
    with SafetensorsReader(weights) as reader:
        return reader.metadata.get("dtype") == "float16"


def page_weights(weights: Path, cache: Path) -> Path:
    """The float16 copy of `weights` (a verified .safetensors) in `cache`, made on first use;
    `weights` itself when it is float16 already."""
    if is_float16(weights):
        return weights
    sha = verify_weights(weights)
    half = cache / f"{sha[:16]}-f16.safetensors"
    if half.is_file() and manifest_path(half).is_file():
        manifest = json.loads(manifest_path(half).read_text(encoding="utf-8"))
        if manifest.get("source_sha256") == sha:
            verify_weights(half)
            return half
    cache.mkdir(parents=True, exist_ok=True)
    convert_checkpoint(weights, half, dtype="float16")
    return half
