"""Element-wise ops on f32 tensors, all dispatching shaders/elementwise.wgsl with OP set.

Binary ops take operands of the same shape; `add_bias` and `scale_shift` broadcast (C,)
vectors over the last dimension of x (..., C), e.g. over the channels of an (H, W, C) map;
`add_tiled` repeats a whole tensor over the leading dimensions of a larger one.
Every op returns a new contiguous tensor.
"""

from __future__ import annotations

import math

from ..gpu import Device, Tensor
from ._common import check, check_f32, grid_1d, pack

WG = 64
# OP codes of shaders/elementwise.wgsl.
ADD, MUL, ADD_BIAS, SCALE_SHIFT, GELU, RELU, SCALE, FILL, ADD_TILED = range(9)


def add(a: Tensor, b: Tensor) -> Tensor:
    """a + b for two tensors of the same shape."""
    _check_same("add", a, b)
    return _dispatch(ADD, a.device, a.shape, a, b)


def add_tiled(a: Tensor, b: Tensor) -> Tensor:
    """a + b with b's shape the trailing dimensions of a's, b repeated over a's leading
    ones: a batch of image-sized maps (B, 4096, 256) plus one shared (4096, 256) map, with
    no copy of b per batch."""
    op = "add_tiled"
    check_f32(op, a=a, b=b)
    check(
        b.numel >= 1 and a.shape[a.ndim - b.ndim :] == b.shape and a.ndim >= b.ndim,
        op,
        f"b's shape must be the trailing dimensions of a's, got a {a.shape}, b {b.shape}",
    )
    return _dispatch(ADD_TILED, a.device, a.shape, a, b, channels=b.numel)


def mul(a: Tensor, b: Tensor) -> Tensor:
    """a * b for two tensors of the same shape."""
    _check_same("mul", a, b)
    return _dispatch(MUL, a.device, a.shape, a, b)


def add_bias(x: Tensor, bias: Tensor) -> Tensor:
    """x + bias with x (..., C) and bias (C,) broadcast over the leading dimensions."""
    _check_channels("add_bias", x, bias=bias)
    return _dispatch(ADD_BIAS, x.device, x.shape, x, bias, channels=x.shape[-1])


def scale_shift(x: Tensor, scale: Tensor, shift: Tensor | None = None) -> Tensor:
    """x * scale + shift with x (..., C) and scale, shift (C,): a folded per-channel affine
    (shift None: x * scale only, e.g. folding BatchNorm's scale into a weight)."""
    _check_channels("scale_shift", x, scale=scale, shift=shift)
    return _dispatch(SCALE_SHIFT, x.device, x.shape, x, scale, shift, channels=x.shape[-1])


def gelu(x: Tensor) -> Tensor:
    """The exact (erf) GELU of every element, as torch.nn.GELU()."""
    check_f32("gelu", x=x)
    return _dispatch(GELU, x.device, x.shape, x)


def relu(x: Tensor) -> Tensor:
    """max(x, 0) for every element."""
    check_f32("relu", x=x)
    return _dispatch(RELU, x.device, x.shape, x)


def scale(x: Tensor, s: float) -> Tensor:
    """x * s for a Python float s."""
    check_f32("scale", x=x)
    return _dispatch(SCALE, x.device, x.shape, x, value=s)


def fill(device: Device, shape: tuple[int, ...], value: float) -> Tensor:
    """A new f32 tensor of `shape` with every element equal to `value`."""
    check(all(d >= 0 for d in shape), "fill", f"dimensions must be >= 0, got {shape}")
    return _dispatch(FILL, device, tuple(shape), value=value)


def _check_same(op: str, a: Tensor, b: Tensor) -> None:
    check_f32(op, a=a, b=b)
    check(
        a.shape == b.shape, op, f"operands must have the same shape, got a {a.shape}, b {b.shape}"
    )


def _check_channels(op: str, x: Tensor, **vectors: Tensor | None) -> None:
    check_f32(op, x=x, **vectors)
    check(x.ndim >= 1, op, f"x must have a channel dimension, got {x.shape}")
    for name, v in vectors.items():
        if v is not None:
            message = f"{name} must be ({x.shape[-1]},), got {v.shape} for x {x.shape}"
            check(v.shape == x.shape[-1:], op, message)


def _dispatch(
    code: int,
    device: Device,
    shape: tuple[int, ...],
    a: Tensor | None = None,
    b: Tensor | None = None,
    c: Tensor | None = None,
    *,
    channels: int = 1,
    value: float = 0.0,
) -> Tensor:
    out = device.empty(shape)
    count = math.prod(shape)
    broadcast = code in (ADD_BIAS, SCALE_SHIFT)
    repeats_b = broadcast or code == ADD_TILED
    vec4 = count % 4 == 0 and (not repeats_b or channels % 4 == 0)
    width = 4 if vec4 else 1
    # Units per row of C channels (broadcast ops) or of b (add_tiled).
    row = channels // width if repeats_b else 1
    # Broadcast ops run one invocation per row of C channels, the others one per unit.
    invocations = (count // width // row if row else 0) if broadcast else count // width
    params = pack("IIfI", invocations, row, value, 0)
    constants: dict[str, float] = {"OP": code, "VEC4": vec4, "HAS_SHIFT": c is not None, "WG": WG}
    device.dispatch("elementwise", [a, b, c], [out], params, grid_1d(invocations, WG), constants)
    return out
