"""Weights I/O in pure Python: strict safetensors, a torch-free `.pt` reader, the converter."""

from .convert import (
    check_layout,
    convert_checkpoint,
    load_mobile_sam,
    manifest_path,
    verify_weights,
)
from .errors import CheckpointError, LayoutError, SafetensorsError, WeightsError
from .layout import mobile_sam_layout
from .pt_reader import read_pt
from .safetensors import (
    MAX_HEADER_BYTES,
    SafetensorsReader,
    dump_safetensors,
    load_safetensors,
    save_safetensors,
)
from .tensor import DTYPE_CODES, DTYPE_SIZES, FLOAT_DTYPES, HostTensor, dtype_name

__all__ = [
    "DTYPE_CODES",
    "DTYPE_SIZES",
    "FLOAT_DTYPES",
    "MAX_HEADER_BYTES",
    "CheckpointError",
    "HostTensor",
    "LayoutError",
    "SafetensorsError",
    "SafetensorsReader",
    "WeightsError",
    "check_layout",
    "convert_checkpoint",
    "dtype_name",
    "dump_safetensors",
    "load_mobile_sam",
    "load_safetensors",
    "manifest_path",
    "mobile_sam_layout",
    "read_pt",
    "save_safetensors",
    "verify_weights",
]
