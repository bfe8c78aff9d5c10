"""Hooks for the browser tests: web/testing/worker.js calls them, and only test bundles
(`build.py --test-hooks`) have that file. They reach into the device on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Iterator
from typing import Any

from .. import ops
from ..gpu import GPUError, Tensor
from ..gpu.tuning import pinning
from ..ops import variants
from . import marshal
from .session import Session


def lose_device(session: Session) -> None:
    """GP-1: destroy the device as a driver reset would."""
    session.local.ready()[0].destroy()


def lose_device_midway(session: Session, waits: int) -> None:
    """GP-1 mid-inference: destroy the device while the `waits`-th GPU wait from now is
    pending (its work submitted, not done), as a driver reset in the middle of an encode or a
    decode would."""
    device = session.local.ready_device()
    await_gpu = device._await_gpu
    started = 0

    async def losing(promise: Any) -> Any:
        nonlocal started
        started += 1
        if started == waits:
            device.destroy()
        return await await_gpu(promise)

    setattr(device, "_await_gpu", losing)  # noqa: B010 (instance attribute over the method)


def stall_gpu(session: Session) -> None:
    """PY-3 as written: the next GPU wait never ends, as work the GPU never completes would
    leave it; the thread stays free (heartbeats go on), only their gpuWaitMs grows."""
    device = session.local.ready_device()

    async def never(promise: Any) -> Any:
        device._waiting_since = time.monotonic()
        await asyncio.get_running_loop().create_future()

    setattr(device, "_await_gpu", never)  # noqa: B010 (instance attribute over the method)


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


async def read_embeddings(session: Session) -> Any:
    """Issue 13: the current image's embeddings as the client runtime computed them,
    (64, 64, 256) channels-last float32 bytes (a Uint8Array), to compare with the official
    ones; an error when the image was encoded elsewhere (server mode)."""
    offload = session.offload
    if offload is None or offload.predictor is None or offload.image_mode in (None, "server"):
        raise RuntimeError("no image encoded in this browser: set one in client mode first")
    return marshal.js_object(await offload.predictor.get_image_embedding_async())


# Issue 14: the matmul variants on the browser's adapter. (m, k, n): the mask decoder's
# (7, 256, 256) product, and shapes that end inside every variant's tiles.
MATMUL_SHAPES = ((7, 256, 256), (33, 12, 20), (130, 20, 68))


async def check_matmul_variants(session: Session) -> Any:
    """Every matmul variant this adapter offers (SANDSEG_KERNELS pins each in turn), with
    bias, in guard mode: [{variant, shape, wrong, guard}], `wrong` the number of elements
    that differ from the exact product (inputs are multiples of 1/8 of size at most 1, so
    every partial sum is exact in f32) and `guard` whether the sentinels after the output
    are intact (GP-3)."""
    device = session.local.ready_device()
    results = []
    with _guarded(device):
        for m, k, n in MATMUL_SHAPES:
            a, b, bias = _eighths(m * k, 37), _eighths(k * n, 53), _eighths(n, 71)
            want = [
                sum(a[i * k + j] * b[j * n + c] for j in range(k)) + bias[c]
                for i in range(m)
                for c in range(n)
            ]
            for v in variants.candidates(device, "matmul"):
                with pinning(v.name, ("matmul",)):
                    out = ops.matmul(
                        _up(device, a, (m, k)), _up(device, b, (k, n)), bias=_up(device, bias, (n,))
                    )
                result = await _compare(device, out, want)
                results.append({"variant": v.name, "shape": f"{m}x{k} @ {k}x{n}", **result})
    return marshal.js_object(results)


@contextlib.contextmanager
def _guarded(device: Any) -> Iterator[None]:
    """Sentinels after every output (GP-3) while the checks run."""
    device.guard_bytes = 1024
    try:
        yield
    finally:
        device.guard_bytes = 0


async def _compare(device: Any, out: Tensor, want: list[float]) -> dict[str, Any]:
    """{wrong: elements of `out` that differ from `want`, guard: sentinels intact}."""
    whole = Tensor(device, out.buffer, (out.capacity // 4,), "u32", 0, out)
    data = await device.read(whole)
    n = len(want)
    got = struct.unpack(f"<{n}f", data[: 4 * n])
    tail = data[4 * n :]
    return {
        "wrong": sum(g != w for g, w in zip(got, want, strict=True)),
        "guard": tail == device.SENTINEL * (len(tail) // 4),
    }


def _eighths(count: int, mult: int) -> list[float]:
    return [((i * mult + 11) % 17 - 8) / 8 for i in range(count)]


def _up(device: Any, values: list[float], shape: tuple[int, ...]) -> Tensor:
    return device.upload(struct.pack(f"<{len(values)}f", *values), shape)


# (H, W, Cin, Cout, stride) of 3x3 convolutions with padding 1 whose output ends inside a
# workgroup's pixel blocks and whose 20 channels leave a last block of 4.
CONV2D_SHAPES = ((9, 7, 8, 20, 1), (10, 9, 4, 16, 2))


async def check_conv2d_variants(session: Session) -> Any:
    """check_matmul_variants for conv2d's blocked path: [{variant, shape, wrong, guard}]."""
    device = session.local.ready_device()
    results = []
    with _guarded(device):
        for h, w, cin, cout, stride in CONV2D_SHAPES:
            x, wt, bias = (
                _eighths(h * w * cin, 37),
                _eighths(9 * cin * cout, 53),
                _eighths(cout, 71),
            )
            ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
            want = [
                sum(
                    x[(iy * w + ix) * cin + ci] * wt[((ky * 3 + kx) * cin + ci) * cout + co]
                    for ky in range(3)
                    for kx in range(3)
                    for ci in range(cin)
                    if 0 <= (iy := oy * stride - 1 + ky) < h
                    and 0 <= (ix := ox * stride - 1 + kx) < w
                )
                + bias[co]
                for oy in range(ho)
                for ox in range(wo)
                for co in range(cout)
            ]
            shape = f"{h}x{w}x{cin} -> {ho}x{wo}x{cout} 3x3 s{stride}"
            for v in variants.candidates(device, "conv2d"):
                with pinning(v.name, ("conv2d",)):
                    out = ops.conv2d(
                        _up(device, x, (h, w, cin)),
                        _up(device, wt, (3, 3, cin, cout)),
                        _up(device, bias, (cout,)),
                        stride=stride,
                        padding=1,
                    )
                result = await _compare(device, out, want)
                results.append({"variant": v.name, "shape": shape, **result})
    return marshal.js_object(results)
