"""Hooks for the browser tests: web/testing/worker.js calls them, and only test bundles
(`build.py --test-hooks`) have that file. They reach into the device on purpose."""

from __future__ import annotations

from typing import Any

from ..gpu import GPUError
from . import marshal
from .session import Session


def lose_device(session: Session) -> None:
    """GP-1: destroy the device as a driver reset would."""
    session.local.ready()[0].destroy()


async def provoke_gpu_errors(session: Session) -> Any:
    """GP-6: a buffer no GPU can hold and a shader that does not compile, each in its error
    scopes; returns the GPUError messages they raised (both must name what failed) and
    leaves the device working."""
    device = session.local.ready_device()
    messages = []
    try:
        async with device.error_scope("a 1 TiB buffer"):
            device._create_buffer(1 << 40)
    except GPUError as exc:
        messages.append(str(exc))
    try:
        device._create_pipeline("not_wgsl", "this is not WGSL", {}, 1, 1)
        await device.check_errors()
    except GPUError as exc:
        messages.append(str(exc))
    return marshal.js_object(messages)
