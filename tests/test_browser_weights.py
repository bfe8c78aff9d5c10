"""The page's weights reader (sandseg.browser.weights) natively, over a stand-in for the JS
Uint8Array the worker hands it: the float16 file the page downloads reads as float32, the
same tensors every native reader gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandseg.weights import load_mobile_sam
from tests.test_browser_package import worker_py

__all__ = ["worker_py"]  # the fixture: sandseg.browser imported over stand-in js/pyodide


class Uint8Array:
    """What JsSafetensors uses of a JS Uint8Array."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.length = len(data)

    def subarray(self, begin: int, end: int) -> Uint8Array:
        return Uint8Array(self._data[begin:end])

    def to_bytes(self) -> bytes:
        return self._data


def test_the_page_reads_float16_weights_as_float32(worker_py: Any, converted_weights_f16: Path):
    tensors = worker_py.weights.JsSafetensors(Uint8Array(converted_weights_f16.read_bytes()))
    assert {e.dtype for e in tensors.entries.values()} == {"F16", "F32", "I64"}
    want = load_mobile_sam(converted_weights_f16)
    for name, tensor in want.items():
        assert tensors(name) == tensor, name
