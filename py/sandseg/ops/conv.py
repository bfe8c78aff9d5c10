"""Convolutions on channels-last feature maps (batch 1): `conv2d`, `conv2d_depthwise`,
`conv_transpose2x2`, each with a fused epilogue act(... + bias) (+ residual).

Weights come in the layouts the kernels read row by row; the model loader permutes PyTorch's
once (and folds BatchNorm into weight and bias): conv2d (Cout, Cin/g, kh, kw) -> (kh, kw,
Cin/g, Cout); depthwise (C, 1, kh, kw) -> (kh, kw, C); ConvTranspose2d (Cin, Cout, 2, 2) ->
(Cin, 2, 2, Cout).
"""

from __future__ import annotations

from ..gpu import Device, Tensor
from ._common import activation_code, ceil_div, check, check_f32, grid_1d, pack, slices

WG = 64
# Work per FLOP (see Device.dispatch), measured against the matmul on lavapipe: the 3x3
# convolutions run at about half its FLOP rate, the depthwise one (a few FLOPs per load) at
# about a seventh.
CONV_WORK = 2.0
DEPTHWISE_WORK = 7.0


def _invocation_slices(device: Device, work: float, invocations: int) -> list[tuple[int, int]]:
    """(first invocation, count) of each dispatch of a 1-D kernel that may be split (GP-5);
    every range but the last is whole workgroups, so no invocation runs twice."""
    groups = ceil_div(invocations, WG)
    return [
        (first * WG, min(size * WG, invocations - first * WG))
        for first, size in slices(device, work, groups)
    ]


def _out_size(op: str, size: int, kernel: int, stride: int, padding: int, what: str) -> int:
    check(
        size + 2 * padding >= kernel,
        op,
        f"{what} {size} with padding {padding} is smaller than the kernel ({kernel})",
    )
    return (size + 2 * padding - kernel) // stride + 1


def _check_epilogue(
    op: str, bias: Tensor | None, residual: Tensor | None, channels: int, out_shape: tuple
) -> None:
    if bias is not None:
        check(bias.shape == (channels,), op, f"bias must be ({channels},), got {bias.shape}")
    if residual is not None:
        check(
            residual.shape == out_shape,
            op,
            f"residual must be {out_shape}, got {residual.shape}",
        )


def _epilogue_constants(op: str, act: str | None, bias: Tensor | None) -> dict[str, float]:
    return {"WG": WG, "ACT": activation_code(op, act), "HAS_BIAS": bias is not None}


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    stride: int = 1,
    padding: int = 0,
    groups: int = 1,
    act: str | None = None,
    residual: Tensor | None = None,
) -> Tensor:
    """act(conv2d(x, weight) + bias) + residual, with PyTorch's Conv2d semantics.

    x: (H, W, Cin); weight: (kh, kw, Cin // groups, Cout) (HWIO); bias: (Cout,); residual:
    (Ho, Wo, Cout). Zero padding on all four sides; Ho = (H + 2 * padding - kh) // stride + 1,
    likewise Wo. Output channel co reads the input channels of group co // (Cout // groups).
    Returns (Ho, Wo, Cout).
    """
    op = "conv2d"
    check_f32(op, x=x, weight=weight, bias=bias, residual=residual)
    check(
        x.ndim == 3 and weight.ndim == 4,
        op,
        f"x must be (H, W, Cin) and weight (kh, kw, Cin/groups, Cout), got x {x.shape}, "
        f"weight {weight.shape}",
    )
    check(
        stride >= 1 and padding >= 0, op, f"need stride >= 1, padding >= 0, got {stride}, {padding}"
    )
    h, w, cin = x.shape
    kh, kw, cin_g, cout = weight.shape
    check(
        groups >= 1 and cin % groups == 0 and cout % groups == 0,
        op,
        f"groups={groups} must divide Cin of x {x.shape} and Cout of weight {weight.shape}",
    )
    check(
        cin_g * groups == cin,
        op,
        f"weight {weight.shape} needs Cin/groups = {cin // groups} for x {x.shape} and "
        f"groups={groups}",
    )
    check(min(h, w, cin, kh, kw, cout) >= 1, op, f"empty x {x.shape} or weight {weight.shape}")
    ho = _out_size(op, h, kh, stride, padding, "height")
    wo = _out_size(op, w, kw, stride, padding, "width")
    out_shape = (ho, wo, cout)
    _check_epilogue(op, bias, residual, cout, out_shape)
    constants = _epilogue_constants(op, act, bias) | {"HAS_RESIDUAL": residual is not None}
    cout_g = cout // groups
    m = ho * wo
    bpg = ceil_div(cout_g, 16)
    blocked = cout_g % 4 == 0
    invocations = ceil_div(m, 8) * groups * bpg if blocked else ceil_div(m * cout, 4)
    geometry = (h, w, cin, cout, ho, wo, kh, kw, stride, padding, cin_g, cout_g)
    out = x.device.empty(out_shape)
    flops = 2.0 * m * cout * kh * kw * cin_g
    for first, count in _invocation_slices(x.device, flops * CONV_WORK, invocations):
        params = pack("17I", *geometry, m, bpg, groups * bpg, m * cout, first)
        x.device.dispatch(
            "conv2d",
            [x, weight, bias, residual],
            [out],
            params,
            grid_1d(count, WG),
            constants | {"BLOCKED": blocked},
            flops * CONV_WORK * count / invocations,
        )
    return out


def conv2d_depthwise(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    stride: int = 1,
    padding: int = 1,
    act: str | None = None,
    residual: Tensor | None = None,
) -> Tensor:
    """act(depthwise_conv(x, weight) + bias) + residual: Conv2d with groups = C = Cout.

    x: (H, W, C); weight: (kh, kw, C) (PyTorch's (C, 1, kh, kw) permuted); bias: (C,);
    residual: (Ho, Wo, C). Zero padding on all four sides; Ho = (H + 2 * padding - kh) //
    stride + 1, likewise Wo. Returns (Ho, Wo, C).
    """
    op = "conv2d_depthwise"
    check_f32(op, x=x, weight=weight, bias=bias, residual=residual)
    check(
        x.ndim == 3 and weight.ndim == 3,
        op,
        f"x must be (H, W, C) and weight (kh, kw, C), got x {x.shape}, weight {weight.shape}",
    )
    check(
        stride >= 1 and padding >= 0, op, f"need stride >= 1, padding >= 0, got {stride}, {padding}"
    )
    h, w, c = x.shape
    kh, kw, cw = weight.shape
    check(cw == c, op, f"weight {weight.shape} must have C = {c} channels like x {x.shape}")
    check(min(h, w, c, kh, kw) >= 1, op, f"empty x {x.shape} or weight {weight.shape}")
    ho = _out_size(op, h, kh, stride, padding, "height")
    wo = _out_size(op, w, kw, stride, padding, "width")
    out_shape = (ho, wo, c)
    _check_epilogue(op, bias, residual, c, out_shape)
    constants = _epilogue_constants(op, act, bias) | {"HAS_RESIDUAL": residual is not None}
    vec4 = c % 4 == 0
    pixel_groups = ceil_div(wo, 4)
    count = ho * wo * c
    invocations = ho * pixel_groups * (c // 4) if vec4 else ceil_div(count, 4)
    out = x.device.empty(out_shape)
    work = 2.0 * count * kh * kw * DEPTHWISE_WORK
    for first, size in _invocation_slices(x.device, work, invocations):
        params = pack("12I", h, w, c, ho, wo, kh, kw, stride, padding, pixel_groups, count, first)
        x.device.dispatch(
            op,
            [x, weight, bias, residual],
            [out],
            params,
            grid_1d(size, WG),
            constants | {"VEC4": vec4},
            work * size / invocations,
        )
    return out


def conv_transpose2x2(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, *, act: str | None = None
) -> Tensor:
    """act(conv_transpose(x, weight) + bias): ConvTranspose2d, kernel 2, stride 2, padding 0.

    x: (H, W, Cin); weight: (Cin, 2, 2, Cout) (PyTorch's (Cin, Cout, 2, 2) permuted); bias:
    (Cout,). out[2y + i, 2x + j, co] = act(bias[co] + sum_ci x[y, x, ci] * weight[ci, i, j,
    co]). Returns (2H, 2W, Cout).
    """
    op = "conv_transpose2x2"
    check_f32(op, x=x, weight=weight, bias=bias)
    check(
        x.ndim == 3 and weight.ndim == 4 and weight.shape[1:3] == (2, 2),
        op,
        f"x must be (H, W, Cin) and weight (Cin, 2, 2, Cout), got x {x.shape}, "
        f"weight {weight.shape}",
    )
    h, w, cin = x.shape
    cout = weight.shape[3]
    check(
        weight.shape[0] == cin, op, f"weight {weight.shape} must have Cin = {cin} like x {x.shape}"
    )
    check(min(h, w, cin, cout) >= 1, op, f"empty x {x.shape} or weight {weight.shape}")
    out_shape = (2 * h, 2 * w, cout)
    _check_epilogue(op, bias, None, cout, out_shape)
    constants = _epilogue_constants(op, act, bias)
    blocked = cout % 4 == 0
    m = h * w
    col_blocks = ceil_div(cout, 4)
    count = 4 * m * cout
    invocations = ceil_div(m, 8) * col_blocks if blocked else ceil_div(count, 4)
    params = pack("8I", h, w, cin, cout, m, col_blocks, count, 0)
    out = x.device.empty(out_shape)
    x.device.dispatch(
        op,
        [x, weight, bias],
        [out],
        params,
        grid_1d(invocations, WG),
        constants | {"BLOCKED": blocked},
    )
    return out
