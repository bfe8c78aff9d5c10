"""Moving numpy arrays to and from the device in tests, the guard (sentinel) check, and the
check of each dispatch's packed parameters against its kernel's `struct Params`."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import numpy as np

from sandseg.gpu import Device, Tensor
from sandseg.gpu.shaders import load_shader

_NP_DTYPES = {"f32": np.float32, "u32": np.uint32, "i32": np.int32}


def to_gpu(device: Device, array: np.ndarray, dtype: str = "f32") -> Tensor:
    data = np.ascontiguousarray(array, dtype=_NP_DTYPES[dtype])
    return device.upload(data.tobytes(), data.shape, dtype)


def from_gpu(tensor: Tensor) -> np.ndarray:
    """The tensor's values, after checking nothing was written past its end (GP-3)."""
    device = tensor.device
    data = device.read_sync(tensor)
    assert_guard_intact(tensor)
    return np.frombuffer(data, dtype=_NP_DTYPES[tensor.dtype]).reshape(tensor.shape)


def assert_guard_intact(tensor: Tensor) -> None:
    device = tensor.device
    start = tensor.offset + tensor.nbytes
    slack = tensor.capacity - start
    if slack <= 0 or tensor.offset != 0:
        return
    whole = device.read_sync(
        Tensor(device, tensor.buffer, (tensor.capacity // 4,), "u32", 0, tensor)
    )
    tail = whole[start:]
    pattern = (device.SENTINEL * (len(tail) // 4 + 1))[: len(tail)]
    if tail != pattern:
        first = next(i for i in range(len(tail)) if tail[i] != pattern[i])
        raise AssertionError(
            f"kernel wrote past the end of its output {tensor.shape}: byte {first} of the guard"
        )


def assert_close(
    actual: np.ndarray, expected: np.ndarray, *, atol: float, rtol: float = 0.0
) -> None:
    """Like numpy's, but the message names the worst element and the first values."""
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    bound = atol + rtol * np.abs(expected.astype(np.float64))
    if np.all(diff <= bound):
        return
    worst = np.unravel_index(np.argmax(diff - bound), diff.shape)
    raise AssertionError(
        f"max abs diff {diff.max():.3e} at {worst} "
        f"(got {actual[worst]!r}, want {expected[worst]!r}); "
        f"{int((diff > bound).sum())} of {diff.size} out of tolerance; "
        f"first values got {actual.ravel()[:4]}, want {expected.ravel()[:4]}"
    )


def split_and_whole(device: Device, monkeypatch, op: Callable[[], Tensor], pieces: int | None):
    """For GP-5's split dispatches: op() unsplit, then again with a work budget of 1/pieces of
    its work (None: a budget so small that every unit is its own dispatch). Returns both
    results and how many dispatches the split run took. A slice runs the same code on the
    same elements, so the two must be equal bit for bit."""
    whole = op()
    work = device._records[-1].work  # the op's one dispatch, not yet submitted
    expected = from_gpu(whole)
    budget = 1e-9 if pieces is None else work / pieces
    monkeypatch.setattr(device, "work_budget", lambda: budget)
    before = device.dispatch_count
    got = from_gpu(op())
    return expected, got, device.dispatch_count - before


def assert_split(expected, got, dispatches: int, at_least: int, at_most: int) -> None:
    assert at_least <= dispatches <= at_most, f"{dispatches} dispatches"
    np.testing.assert_array_equal(got, expected)


_WGSL_SCALARS = {"u32": "I", "i32": "i", "f32": "f"}
_PARAMS_STRUCT = re.compile(r"struct Params \{(.*?)\}", re.S)
_FIELD = re.compile(r"(\w+)\s*:\s*(\w+)")


@functools.cache
def params_fields(kernel: str) -> tuple[tuple[str, str], ...]:
    """(name, pack code) of each field of the kernel's `struct Params`, in order."""
    match = _PARAMS_STRUCT.search(load_shader(kernel))
    if match is None:
        return ()
    body = re.sub(r"//[^\n]*", "", match[1])
    fields = []
    for name, wgsl_type in _FIELD.findall(body):
        if wgsl_type not in _WGSL_SCALARS:
            raise AssertionError(f"{kernel}.wgsl: Params.{name} is {wgsl_type}, not a scalar")
        fields.append((name, _WGSL_SCALARS[wgsl_type]))
    return tuple(fields)


def check_params_packing(kernel: str, params: bytes) -> None:
    """The op packed its parameters as the kernel's `struct Params` declares them: the same
    scalar types in the same order, then only `_pad` fields, in the same number of bytes.
    (Two fields of one type swapped still pass: the names are not in the packed bytes.)"""
    fields = params_fields(kernel)
    packed = getattr(params, "fmt", None)
    assert packed is not None, f"{kernel}: parameters not made by ops._common.pack"
    # "17I" -> "IIII...": one code per field, as the struct lists them.
    fmt = "".join(code * int(count or 1) for count, code in re.findall(r"(\d*)([Iif])", packed))
    codes = "".join(code for _, code in fields)
    padding = [name for name, _ in fields[len(fmt) :]]
    assert codes.startswith(fmt) and all(n.startswith("_pad") for n in padding), (
        f"{kernel}: packed {fmt!r} but struct Params declares {codes!r} "
        f"({', '.join(n for n, _ in fields)})"
    )
    declared = -(-4 * len(fields) // 16) * 16
    assert len(params) == declared, f"{kernel}: {len(params)} bytes of params, Params is {declared}"
