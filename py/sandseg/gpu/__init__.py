"""The device layer: one interface over WebGPU, two backends.

`get_device()` picks the backend in exactly one place: wgpu-py natively, the browser's
`navigator.gpu` through Pyodide when running under Emscripten.
"""

from __future__ import annotations

import sys

from .device import Device, GPUError
from .tensor import Tensor

IN_PYODIDE = sys.platform == "emscripten"

_device: Device | None = None


def get_device() -> Device:
    """The process-wide device, created on first use."""
    global _device
    if _device is None:
        if IN_PYODIDE:
            raise GPUError(
                "in the browser, create the device with `await request_browser_device()`"
            )
        from .native import request_native_device

        _device = request_native_device()
    return _device


def set_device(device: Device) -> None:
    """Install a device created elsewhere (the browser backend's async factory)."""
    global _device
    _device = device


__all__ = ["IN_PYODIDE", "Device", "GPUError", "Tensor", "get_device", "set_device"]
