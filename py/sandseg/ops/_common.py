"""Helpers every op uses: shape checks that name the op, parameter packing, grids."""

from __future__ import annotations

import math
import struct

from ..gpu import Device, Tensor

ACTIVATIONS = {None: 0, "none": 0, "gelu": 1, "relu": 2}
MAX_GROUPS = 65535


class OpError(ValueError):
    """Bad input to an op; the message names the op and the shapes involved."""


def check(ok: bool, op: str, message: str) -> None:
    if not ok:
        raise OpError(f"{op}: {message}")


def check_f32(op: str, **tensors: Tensor | None) -> None:
    for name, t in tensors.items():
        if t is not None and t.dtype != "f32":
            raise OpError(f"{op}: {name} must be f32, got {t.dtype} with shape {t.shape}")


def activation_code(op: str, act: str | None) -> int:
    check(act in ACTIVATIONS, op, f"unknown activation {act!r}; use one of gelu, relu, none")
    return ACTIVATIONS[act]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class Packed(bytes):
    """Packed uniform parameters that remember their format, so that tests can check it
    against the kernel's `struct Params` (the fields are packed by position)."""

    fmt: str


def pack(fmt: str, *values: float) -> Packed:
    """Uniform parameters: `I` u32, `i` i32, `f` f32, little-endian, padded to 16 bytes."""
    data = struct.pack("<" + fmt, *values)
    packed = Packed(data + bytes(-len(data) % 16))
    packed.fmt = fmt
    return packed


def grid_1d(count: int, workgroup: int) -> tuple[int, int, int]:
    """A grid covering `count` invocations of a 1-D kernel of `workgroup` threads.

    Kernels index it as `gid.x + gid.y * (num_workgroups.x * workgroup)`, so counts beyond
    the 65535-workgroup limit of one dimension spill into y.
    """
    groups = max(ceil_div(count, workgroup), 1)
    if groups <= MAX_GROUPS:
        return (groups, 1, 1)
    return (MAX_GROUPS, ceil_div(groups, MAX_GROUPS), 1)


def slices(device: Device, work: float, count: int) -> list[tuple[int, int]]:
    """Cut a dispatch of `count` equal units (rows of workgroups, say) carrying `work` in all
    into (first, size) ranges of at most the device's work budget each, in order.

    One long dispatch would be one long submission, which the browser's GPU watchdog may kill
    (RELIABILITY.md GP-5); each range becomes a dispatch of its own."""
    if count <= 0:
        return [(0, 0)]  # one empty dispatch, as an unsplit op records
    budget = device.work_budget()
    pieces = 1 if budget is None or work <= budget else min(count, math.ceil(work / budget))
    size = ceil_div(count, pieces)
    return [(first, min(size, count - first)) for first in range(0, count, size)]
