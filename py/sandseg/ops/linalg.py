"""Matrix products: `matmul` (batched, transposable, fused epilogue) and `linear`."""

from __future__ import annotations

from ..gpu import Tensor
from ._common import activation_code, ceil_div, check, check_f32, pack, slices

WG_X, WG_Y = 16, 4
# Work per FLOP (see Device.dispatch): the strided kernel does one element per invocation,
# about 4x slower per FLOP than the register-tiled one on CPU adapters.
STRIDED_WORK = 4.0


def matmul(
    a: Tensor,
    b: Tensor,
    *,
    bias: Tensor | None = None,
    residual: Tensor | None = None,
    act: str | None = None,
    alpha: float = 1.0,
    trans_a: bool = False,
    trans_b: bool = False,
) -> Tensor:
    """act(alpha * A @ B + bias) + residual.

    a: (M, K) or (batch, M, K), (K, M) when trans_a; b: (K, N) or (batch, K, N), (N, K) when
    trans_b; a 2-D operand is shared across the batch. bias: (N,). residual: same shape as the
    result, (M, N) or (batch, M, N). Returns a new tensor.
    """
    op = "matmul"
    check_f32(op, a=a, b=b, bias=bias, residual=residual)
    check(
        a.ndim in (2, 3) and b.ndim in (2, 3),
        op,
        f"operands must be 2-D or 3-D, got a {a.shape}, b {b.shape}",
    )
    batch = max(a.shape[0] if a.ndim == 3 else 1, b.shape[0] if b.ndim == 3 else 1)
    for name, t in (("a", a), ("b", b)):
        check(
            t.ndim == 2 or t.shape[0] == batch,
            op,
            f"batch of {name} {t.shape} does not match {batch}",
        )
    m, k = a.shape[-2:][::-1] if trans_a else a.shape[-2:]
    kb, n = b.shape[-2:][::-1] if trans_b else b.shape[-2:]
    check(
        k == kb,
        op,
        f"inner dimensions differ: a {a.shape}{' (transposed)' * trans_a}, "
        f"b {b.shape}{' (transposed)' * trans_b}",
    )
    out_shape = (batch, m, n) if a.ndim == 3 or b.ndim == 3 else (m, n)
    if bias is not None:
        check(bias.shape == (n,), op, f"bias must be ({n},), got {bias.shape}")
    if residual is not None:
        check(
            residual.shape == out_shape, op, f"residual must be {out_shape}, got {residual.shape}"
        )
    code = activation_code(op, act)
    out = a.device.empty(out_shape)
    constants = {"ACT": code, "HAS_BIAS": bias is not None, "HAS_RESIDUAL": residual is not None}
    batch_a = m * k if a.ndim == 3 else 0
    batch_b = k * n if b.ndim == 3 else 0
    inputs = [a, b, bias, residual]
    sizes, strides = (batch, m, n, k), (batch_a, batch_b)
    if not trans_a and not trans_b and k % 4 == 0 and n % 4 == 0:
        _dispatch_tiled(inputs, out, sizes, alpha, strides, constants)
    else:
        _dispatch_strided(inputs, out, sizes, alpha, strides, constants, trans_a, trans_b)
    return out


def _dispatch_tiled(
    inputs: list[Tensor | None],
    out: Tensor,
    sizes: tuple[int, int, int, int],
    alpha: float,
    batch_strides: tuple[int, int],
    constants: dict[str, int | bool],
) -> None:
    """The register-tiled kernel: each invocation does 8 rows; a large product goes as several
    dispatches, each over a range of workgroup rows (`y0`, in invocation rows), for GP-5."""
    batch, m, n, k = sizes
    device = out.device
    flops = 2.0 * batch * m * n * k
    grid_x, grid_y = ceil_div(n, 16 * WG_X), ceil_div(m, 8 * WG_Y)
    constants = constants | {"WG_X": WG_X, "WG_Y": WG_Y}
    for first, size in slices(device, flops, grid_y):
        params = pack("IIIfIIII", m, n, k, alpha, *batch_strides, m * n, first * WG_Y)
        work = flops * size / max(grid_y, 1)  # no rows: one empty dispatch
        device.dispatch("matmul", inputs, [out], params, (grid_x, size, batch), constants, work)


def _dispatch_strided(
    inputs: list[Tensor | None],
    out: Tensor,
    sizes: tuple[int, int, int, int],
    alpha: float,
    batch_strides: tuple[int, int],
    constants: dict[str, int | bool],
    trans_a: bool,
    trans_b: bool,
) -> None:
    """The strided kernel (transposed operands, or sizes the tiled one cannot take)."""
    batch, m, n, k = sizes
    device = out.device
    sam, sak = (1, m) if trans_a else (k, 1)
    sbk, sbn = (1, k) if trans_b else (n, 1)
    grid_x, grid_y = ceil_div(n, 8), ceil_div(m, 8)
    work = 2.0 * batch * m * n * k * STRIDED_WORK
    batch_a, batch_b = batch_strides
    for first, size in slices(device, work, grid_y):
        params = pack(
            "IIIfIIIIIIII", m, n, k, alpha, batch_a, sam, sak, batch_b, sbk, sbn, first * 8, 0
        )
        grid = (grid_x, size, batch)
        device.dispatch(
            "matmul_strided", inputs, [out], params, grid, constants, work * size / max(grid_y, 1)
        )


def linear(
    x: Tensor,
    weight_t: Tensor,
    bias: Tensor | None = None,
    *,
    act: str | None = None,
    residual: Tensor | None = None,
) -> Tensor:
    """A fully connected layer over the last dimension: act(x @ weight_t + bias) + residual.

    x: (..., in); weight_t: (in, out), the PyTorch weight transposed once at load time so the
    fast kernel reads it row-major. Returns (..., out).
    """
    check(
        x.ndim >= 1 and weight_t.ndim == 2,
        "linear",
        f"x {x.shape} and weight {weight_t.shape} do not fit",
    )
    lead = x.shape[:-1]
    rows = 1
    for d in lead:
        rows *= d
    out_features = weight_t.shape[1]
    res2d = residual.reshape(rows, out_features) if residual is not None else None
    if residual is not None:
        check(
            residual.shape == (*lead, out_features),
            "linear",
            f"residual must be {(*lead, out_features)}, got {residual.shape}",
        )
    y = matmul(x.reshape(rows, x.shape[-1]), weight_t, bias=bias, act=act, residual=res2d)
    return y.reshape(*lead, out_features)
