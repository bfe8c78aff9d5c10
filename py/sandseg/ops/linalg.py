"""Matrix products: `matmul` (batched, transposable, fused epilogue) and `linear`."""

from __future__ import annotations

from ..gpu import Device, Tensor, tuning
from . import variants
from ._common import activation_code, ceil_div, check, check_f32, pack, slices

# Work per FLOP (see Device.dispatch): the strided kernel does one element per invocation,
# about 4x slower per FLOP than the register-blocked one on CPU adapters.
STRIDED_WORK = 4.0
# What tuning times per candidate: about this many FLOP (milliseconds on a CPU adapter),
# more where that takes under GROW_BELOW_S seconds.
MEASURE_FLOP = 5_000_000
GROW_BELOW_S = 0.0002


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
        _dispatch_fast(inputs, out, sizes, alpha, strides, constants)
    else:
        _dispatch_strided(inputs, out, sizes, alpha, strides, constants, trans_a, trans_b)
    return out


def _dispatch_fast(
    inputs: list[Tensor | None],
    out: Tensor,
    sizes: tuple[int, int, int, int],
    alpha: float,
    batch_strides: tuple[int, int],
    constants: dict[str, int | bool],
) -> None:
    """The fast kernels (K and N multiples of 4, no transposes): the variant this adapter
    runs fastest on this shape class (measured once, see sandseg.gpu.tuning)."""
    _, m, n, k = sizes
    device = out.device
    names = [v.name for v in variants.candidates(device, "matmul")]
    shape_class = variants.matmul_class(m, k, n)
    name = tuning.choose(device, "matmul", shape_class, names, matmul_measure(device, m, k, n))
    v = variants.variant("matmul", name)
    _record_fast(v, inputs, out, sizes, alpha, batch_strides, constants)


def matmul_measure(device: Device, m: int, k: int, n: int) -> tuning.Measure:
    """How tuning times a variant of the fast matmul on an (m, k) @ (k, n) product: zeros,
    no epilogue (so every class shares one pipeline per variant), and a slice of rows of
    about MEASURE_FLOP (at most m): the variants scale alike with M, so a slice ranks them.
    Where the first candidate does that slice in under GROW_BELOW_S (a real GPU, where it
    would time launch overhead and an idle GPU), the slice grows 8x at a time up to m. Each
    variant runs whole workgroups of rows and its time is scaled to the slice."""
    target = min(m, max(MEASURE_FLOP // (2 * n * k), 1))

    async def once(name: str, bound: float) -> float:
        v = variants.variant("matmul", name)
        rows = min(m, ceil_div(target, v.rows) * v.rows)
        a = device.upload(bytes(4 * rows * k), (rows, k))
        b = device.upload(bytes(4 * k * n), (k, n))
        c = device.empty((rows, n))
        inputs: list[Tensor | None] = [a, b, None, None]

        def record() -> None:
            _record_fast(v, inputs, c, (1, rows, n, k), 1.0, (0, 0), _NO_EPILOGUE)

        warm_up = tuning.table_for(device).first_run(f"matmul/{name}")
        scale = target / rows
        return await tuning.measure_seconds(device, record, bound / scale, warm_up) * scale

    async def measure(name: str, bound: float) -> float:
        nonlocal target
        seconds = await once(name, bound)
        while bound == float("inf") and seconds < GROW_BELOW_S and target < m:
            target = min(m, target * 8)  # the first candidate sets the slice for the rest
            seconds = await once(name, bound)
        return seconds

    return measure


_NO_EPILOGUE: dict[str, int | bool] = {"ACT": 0, "HAS_BIAS": False, "HAS_RESIDUAL": False}


def _record_fast(
    v: variants.Variant,
    inputs: list[Tensor | None],
    out: Tensor,
    sizes: tuple[int, int, int, int],
    alpha: float,
    batch_strides: tuple[int, int],
    constants: dict[str, int | bool],
) -> None:
    """One variant's dispatches; a large product goes as several, each over a range of
    workgroup rows starting at matrix row `row0`, for GP-5."""
    batch, m, n, k = sizes
    device = out.device
    flops = 2.0 * batch * m * n * k
    grid_x, grid_y = ceil_div(n, v.cols), ceil_div(m, v.rows)
    constants = constants | dict(v.constants)
    for first, size in slices(device, flops, grid_y):
        params = pack("IIIfIIII", m, n, k, alpha, *batch_strides, m * n, first * v.rows)
        work = flops * size / max(grid_y, 1)  # no rows: one empty dispatch
        device.dispatch(v.kernel, inputs, [out], params, (grid_x, size, batch), constants, work)


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
