"""Convolutions on channels-last feature maps (batch 1): `conv2d`, `conv2d_depthwise`,
`conv_transpose2x2`, each with a fused epilogue act(... + bias) (+ residual).

Weights come in the layouts the kernels read row by row; the model loader permutes PyTorch's
once (and folds BatchNorm into weight and bias): conv2d (Cout, Cin/g, kh, kw) -> (kh, kw,
Cin/g, Cout); depthwise (C, 1, kh, kw) -> (kh, kw, C); ConvTranspose2d (Cin, Cout, 2, 2) ->
(Cin, 2, 2, Cout).
"""

from __future__ import annotations

from ..gpu import Device, Tensor, tuning
from . import variants
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
    blocked = cout_g % 4 == 0
    geometry = (h, w, cin, cout, ho, wo, kh, kw, stride, padding, cin_g, cout_g)
    out = x.device.empty(out_shape)
    flops = 2.0 * m * cout * kh * kw * cin_g
    inputs = [x, weight, bias, residual]
    v = _conv2d_variant(x.device, geometry, groups) if blocked else None
    _record_conv2d(v, inputs, out, geometry, groups, constants, flops)
    return out


def _record_conv2d(
    v: variants.Variant | None,
    inputs: list[Tensor | None],
    out: Tensor,
    geometry: tuple[int, ...],
    groups: int,
    constants: dict[str, float],
    flops: float,
    limit: int | None = None,
) -> None:
    """The dispatches of conv2d's blocked variant `v` (None: the simple path); `limit`: only
    that many invocations (from the first), which tuning times."""
    device = out.device
    ho, wo, cout, cout_g = geometry[4], geometry[5], geometry[3], geometry[11]
    m = ho * wo
    bpg = ceil_div(cout_g, 16)
    if v is None:
        kernel, invocations = "conv2d", ceil_div(m * cout, 4)
        constants = constants | {"BLOCKED": False}
    elif v.kernel == "conv2d":
        kernel, invocations = "conv2d", ceil_div(m, 8) * groups * bpg
        constants = constants | {"BLOCKED": True}
    else:  # a workgroup per channel block and WG pixel blocks
        kernel, invocations = v.kernel, ceil_div(ceil_div(m, 8), WG) * WG * groups * bpg
    total = invocations
    if limit is not None:
        invocations = min(invocations, limit)
    for first, count in _invocation_slices(device, flops * CONV_WORK, invocations):
        params = pack("17I", *geometry, m, bpg, groups * bpg, m * cout, first)
        device.dispatch(
            kernel,
            inputs,
            [out],
            params,
            grid_1d(count, WG),
            constants,
            flops * CONV_WORK * count / total,
        )


def _conv2d_variant(device: Device, geometry: tuple[int, ...], groups: int) -> variants.Variant:
    """The blocked path's variant this adapter runs fastest on this convolution (measured
    once, see sandseg.gpu.tuning)."""
    names = [v.name for v in variants.candidates(device, "conv2d")]
    shape_class = conv2d_class(geometry, groups)
    measure = conv2d_measure(device, geometry, groups)
    return variants.variant("conv2d", tuning.choose(device, "conv2d", shape_class, names, measure))


def conv2d_class(geometry: tuple[int, ...], groups: int) -> str:
    h, w, cin, cout, _, _, kh, kw, stride, padding = geometry[:10]
    return f"h{h}_w{w}_c{cin}_o{cout}_k{kh}x{kw}_s{stride}_p{padding}_g{groups}"


def conv2d_measure(device: Device, geometry: tuple[int, ...], groups: int) -> tuning.Measure:
    """How tuning times a variant of conv2d's blocked path: on zeros, the first invocations
    (about MEASURE_FLOP, at least 2 workgroups; equal work in every variant), no epilogue."""
    h, w, cin, cout, ho, wo, kh, kw = geometry[:8]
    cin_g = cin // groups
    per_invocation = 8 * 16 * 2.0 * kh * kw * cin_g
    limit = max(2 * WG, ceil_div(int(MEASURE_FLOP / per_invocation), WG) * WG)

    async def measure(name: str, bound: float) -> float:
        v = variants.variant("conv2d", name)
        x = device.upload(bytes(4 * h * w * cin), (h, w, cin))
        weight = device.upload(bytes(4 * kh * kw * cin_g * cout), (kh, kw, cin_g, cout))
        out = device.empty((ho, wo, cout))

        def record() -> None:
            _record_conv2d(v, [x, weight, None, None], out, geometry, groups, _PLAIN, 1.0, limit)

        warm_up = tuning.table_for(device).first_run(f"conv2d/{name}")
        return await tuning.measure_seconds(device, record, bound, warm_up)

    return measure


# What tuning times: about this many FLOP (at least 2 workgroups), no epilogue.
MEASURE_FLOP = 20_000_000
_PLAIN: dict[str, float] = {"WG": WG, "ACT": 0, "HAS_BIAS": False, "HAS_RESIDUAL": False}


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

    x: (H, W, Cin); weight: (Cin, 2, 2, Cout) (PyTorch's (Cin, Cout, 2, 2) permuted); bias: (Cout,).
    out[2y + i, 2x + j, co] = act(bias[co] + sum_ci x[y, x, ci] * weight[ci, i, j, co]). Returns
    (2H, 2W, Cout). Input rows map to output rows independently, so a batch (B, H, W, Cin) runs
    as one (B * H, W, Cin) map.
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
    out = x.device.empty(out_shape)
    # Work (see Device.dispatch): its FLOPs. A large one (a batch of prompts stacked along H)
    # goes as several dispatches, each over a range of workgroups (GP-5).
    flops = 2.0 * m * cin * 4 * cout
    groups = ceil_div(invocations, WG)
    for first, size in slices(x.device, flops, groups):
        params = pack("8I", h, w, cin, cout, m, col_blocks, count, first * WG)
        x.device.dispatch(
            op,
            [x, weight, bias],
            [out],
            params,
            grid_1d(size * WG, WG),
            constants | {"BLOCKED": blocked},
            flops * size / max(groups, 1),
        )
    return out
