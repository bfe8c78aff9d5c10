"""Convert an official MobileSAM `.pt` checkpoint into a verified safetensors file."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import LayoutError, WeightsError
from .files import atomic_writer, sha256_file
from .half import to_float32, to_half_storage
from .layout import Layout, mobile_sam_layout
from .pt_reader import read_pt
from .safetensors import load_safetensors, save_safetensors
from .tensor import FLOAT_DTYPES, HostTensor

MANIFEST_FORMAT_VERSION = 1
FORMAT_TAG = "sandseg-mobilesam"
# What `convert` can store: the checkpoint's float32, or float16 for the weight matrices and
# kernels (half.py: half the bytes; readers upcast to float32 on load).
DTYPES = FLOAT_DTYPES
_LISTED = 10


def manifest_path(weights_path: str | os.PathLike[str]) -> Path:
    """Where the manifest of `weights_path` lives: same folder, suffix `.manifest.json`."""
    return Path(weights_path).with_suffix(".manifest.json")


def _listing(kind: str, names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return f"{len(names)} {kind}: {shown}{more}"


def _matches(tensor: HostTensor, shape: tuple[int, ...], dtype: str) -> bool:
    # A float16 file stores float32 weights as F16 (half.py); readers upcast them.
    return tensor.shape == shape and (
        tensor.dtype == dtype or (tensor.dtype, dtype) == ("F16", "F32")
    )


def _mismatch(name: str, tensors: dict[str, HostTensor], layout: Layout) -> str:
    shape, dtype = layout[name]
    return f"{name} (expected {shape} {dtype}, got {tensors[name].shape} {tensors[name].dtype})"


def check_layout(tensors: dict[str, HostTensor], layout: Layout) -> None:
    """Raise one `LayoutError` naming every missing, unknown and misshapen tensor."""
    missing = [name for name in layout if name not in tensors]
    unknown = [name for name in tensors if name not in layout]
    mismatched = [
        name
        for name, tensor in tensors.items()
        if name in layout and not _matches(tensor, *layout[name])
    ]
    if not (missing or unknown or mismatched):
        return
    parts = [
        _listing(kind, names)
        for kind, names in (
            ("missing", missing),
            ("unknown", unknown),
            (
                "with the wrong shape or dtype",
                [_mismatch(name, tensors, layout) for name in mismatched],
            ),
        )
        if names
    ]
    raise LayoutError(
        "checkpoint does not match the MobileSAM vit_t layout: "
        + "; ".join(parts)
        + ". Convert the official vit_t checkpoint (mobile_sam.pt), not another model",
        missing=missing,
        unknown=unknown,
        mismatched=mismatched,
    )


def convert_checkpoint(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    *,
    dtype: str = "float32",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Convert MobileSAM `src_path` (.pt, or a .safetensors made here) to safetensors at
    `dst_path` plus a manifest.

    float32: tensor bytes are copied unchanged, in the official key order. float16: the
    weight matrices and kernels are rounded to float16 (half.py), the rest copied. Both
    outputs appear only if everything succeeds. Returns the manifest (also written to
    `manifest_path(dst)`).
    """
    if dtype not in DTYPES:
        raise WeightsError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    say = progress or (lambda _line: None)
    src, dst = Path(src_path), Path(dst_path)
    say(f"reading {src.name}")
    # Hash the very bytes that are converted, so the manifest cannot describe another file.
    raw = src.read_bytes()
    source_sha256 = hashlib.sha256(raw).hexdigest()
    if src.suffix == ".safetensors":
        tensors = {k: to_float32(t) for k, t in load_safetensors(raw)[0].items()}
    else:
        tensors = read_pt(io.BytesIO(raw))
    del raw
    layout = mobile_sam_layout()
    check_layout(tensors, layout)
    say(f"{len(tensors)} tensors match the MobileSAM vit_t layout")
    metadata = {"format": FORMAT_TAG, "source_sha256": source_sha256}
    ordered = {name: tensors[name] for name in layout}
    if dtype == "float16":
        # float32 files keep their bytes (and sha256) from before float16 existed.
        metadata["dtype"] = dtype
        ordered = {name: to_half_storage(name, t) for name, t in ordered.items()}
    save_safetensors(dst, ordered, metadata)
    say(f"wrote {dst.name}")
    try:
        manifest = {
            "format_version": MANIFEST_FORMAT_VERSION,
            "source_name": src.name,
            "source_sha256": source_sha256,
            "output_name": dst.name,
            "output_sha256": sha256_file(dst),
            "tensor_count": len(tensors),
            "total_bytes": sum(tensor.nbytes for tensor in ordered.values()),
            "metadata": metadata,
        }
        with atomic_writer(manifest_path(dst)) as f:
            f.write(json.dumps(manifest, indent=2).encode("utf-8") + b"\n")
    except BaseException:
        # Weights without their manifest would fail verification later: remove them now.
        dst.unlink(missing_ok=True)
        raise
    say(f"wrote {manifest_path(dst).name}")
    return manifest


def verify_weights(path: str | os.PathLike[str], expected_sha256: str | None = None) -> str:
    """Re-hash `path`; check it against `expected_sha256` and its manifest if one exists.

    Returns the sha256 hex digest; raises `WeightsError` on any mismatch.
    """
    actual = sha256_file(path)
    if expected_sha256 is not None and actual != expected_sha256.lower():
        raise WeightsError(
            f"{Path(path).name} has sha256 {actual}, expected {expected_sha256}: the file is "
            "corrupt or not the pinned version; re-download or re-convert it"
        )
    manifest_file = manifest_path(path)
    if manifest_file.exists():
        try:
            recorded = json.loads(manifest_file.read_text(encoding="utf-8"))["output_sha256"]
        except (ValueError, KeyError, TypeError) as exc:
            raise WeightsError(
                f"manifest {manifest_file.name} is unreadable ({exc!r}): re-convert the weights"
            ) from None
        if recorded != actual:
            raise WeightsError(
                f"{Path(path).name} has sha256 {actual} but its manifest records {recorded}: "
                "the file changed after conversion; re-download or re-convert it"
            )
    return actual


def load_mobile_sam(path: str | os.PathLike[str]) -> dict[str, HostTensor]:
    """Every tensor of a MobileSAM `vit_t` checkpoint (`.pt`) or converted `.safetensors`,
    its layout checked, float16-stored tensors upcast to float32; a `.safetensors` with a
    manifest beside it must match the sha256 the manifest records."""
    from .safetensors import SafetensorsReader

    path = Path(path)
    if path.suffix == ".pt":
        tensors = read_pt(path)
    else:
        if manifest_path(path).exists():
            verify_weights(path)
        with SafetensorsReader(path) as reader:
            tensors = reader.read_all()
    check_layout(tensors, mobile_sam_layout())
    return {name: to_float32(t) for name, t in tensors.items()}
