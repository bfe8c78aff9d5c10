"""Normalisations over the last dimension: `layer_norm` and `softmax`."""

from __future__ import annotations

import math

from ..gpu import Tensor
from ._common import activation_code, check, check_f32, grid_1d, pack

WG = 64


def layer_norm(
    x: Tensor,
    weight: Tensor,
    bias: Tensor,
    *,
    eps: float = 1e-5,
    act: str | None = None,
    residual: Tensor | None = None,
) -> Tensor:
    """act(LayerNorm(x) * weight + bias) + residual over the last dimension of x.

    x: (..., C); weight, bias: (C,); residual: same shape as x. The variance is the biased
    one, as torch.nn.LayerNorm. SAM's LayerNorm2d (eps 1e-6, over the channels of a map) is
    `layer_norm(x, weight, bias, eps=1e-6)` on a channels-last (H, W, C) map. act: None,
    "gelu" or "relu". Returns a new tensor of x's shape.
    """
    op = "layer_norm"
    check_f32(op, x=x, weight=weight, bias=bias, residual=residual)
    check(x.ndim >= 1 and x.shape[-1] >= 1, op, f"x must be (..., C) with C >= 1, got {x.shape}")
    c = x.shape[-1]
    for name, t in (("weight", weight), ("bias", bias)):
        check(t.shape == (c,), op, f"{name} must be ({c},), got {t.shape} for x {x.shape}")
    if residual is not None:
        check(residual.shape == x.shape, op, f"residual {residual.shape} must match x {x.shape}")
    check(eps > 0.0, op, f"eps must be > 0, got {eps}")
    code = activation_code(op, act)
    rows = math.prod(x.shape[:-1])
    out = x.device.empty(x.shape)
    constants: dict[str, float] = {
        "WG": WG,
        "VEC4": c % 4 == 0,
        "ACT": code,
        "HAS_RESIDUAL": residual is not None,
    }
    params = pack("IIfI", rows, c, eps, 0)
    x.device.dispatch(
        "layer_norm", [x, weight, bias, residual], [out], params, grid_1d(rows, WG), constants
    )
    return out


def softmax(x: Tensor) -> Tensor:
    """softmax over the last dimension of x (..., N), safe for any finite values (the row
    maximum is subtracted first). Returns a new tensor of x's shape."""
    op = "softmax"
    check_f32(op, x=x)
    check(x.ndim >= 1 and x.shape[-1] >= 1, op, f"x must be (..., N) with N >= 1, got {x.shape}")
    n = x.shape[-1]
    rows = math.prod(x.shape[:-1])
    out = x.device.empty(x.shape)
    constants: dict[str, float] = {"WG": WG, "VEC4": n % 4 == 0}
    x.device.dispatch(
        "softmax", [x], [out], pack("IIII", rows, n, 0, 0), grid_1d(rows, WG), constants
    )
    return out
