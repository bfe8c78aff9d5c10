"""Which weights these are, in words the page shows: name, sha256, and whether they are the
demo weights (seeded random: masks look like noise).

Demo weights are recognised by their tensors, not by a file name or metadata: the sha256 of a
safetensors file's data section (every tensor's bytes, in the converter's order) is compared
with the known demo checkpoints'. A converted copy is recognised wherever it lives and
whatever its header says; weights with one value changed are not demo weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TypedDict

from .convert import manifest_path
from .files import sha256_file
from .st_header import MAX_HEADER_BYTES, header_length

# Tensor-data sha256 -> the demo checkpoint it comes from: ../shared/conformance's
# mobile_sam_seed1234.pt (file sha256 d69a717e...fab) converted by `sandseg convert`, as
# float32 and as float16 (`--dtype float16`, and the page's copy, page_weights.py).
DEMO_TENSOR_SHA256 = {
    "ba9877b16166024831efc005dc37755d929e6280680b95b820aed7258f77b7e1": "mobile_sam_seed1234.pt",
    "d90ee02ae2b0214d4f125ca26a5e362226a2a8eb9a662221c3ca06a9153c965b": (
        "mobile_sam_seed1234.pt (float16)"
    ),
}
DEMO_NOTICE = (
    "demo weights: seeded random, masks look like noise; run with mobile_sam.pt for real masks"
)
_CHUNK = 1 << 20


class WeightsInfo(TypedDict):
    name: str
    sha256: str
    demo: bool


def tensor_data_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a safetensors file's data section (after its header)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        total = f.seek(0, os.SEEK_END)
        f.seek(0)
        f.seek(8 + header_length(f.read(8), total, MAX_HEADER_BYTES))
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_demo(path: str | os.PathLike[str]) -> bool:
    return tensor_data_sha256(path) in DEMO_TENSOR_SHA256


def weights_info(path: str | os.PathLike[str], sha256: str | None = None) -> WeightsInfo:
    """{name, sha256, demo} of a .safetensors file: its name is the checkpoint it was
    converted from (its manifest's source_name) or else its file name; sha256 is the file's
    (pass it when known)."""
    path = Path(path)
    name = path.name
    try:
        source = json.loads(manifest_path(path).read_text(encoding="utf-8")).get("source_name")
        name = source if isinstance(source, str) and source else name
    except (OSError, ValueError, AttributeError):
        pass
    return {"name": name, "sha256": sha256 or sha256_file(path), "demo": is_demo(path)}
