"""Multi-head attention on strided views: `attention` and the TinyViT wrapper `qkv_packed`."""

from __future__ import annotations

from ..gpu import Tensor
from ._common import MAX_GROUPS, ceil_div, check, check_f32, pack, slices

WG = 8
# Query rows per invocation: each K/V row is loaded once for all of them (8 is ~3x faster than
# 1 on lavapipe), unless that leaves too few invocations to spread over the cores.
ROWS = 8
MIN_INVOCATIONS = 256
MAX_HEAD_DIM = 32


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    heads: int,
    head_dim: int,
    v_dim: int | None = None,
    bias: Tensor | None = None,
    scale: float | None = None,
    offsets: tuple[int, int, int] = (0, 0, 0),
    head_strides: tuple[int, int, int] | None = None,
) -> Tensor:
    """softmax(scale * Q_h K_h^T + bias[h]) V_h for every batch b and head h.

    q: (B, Nq, Cq), k: (B, Nk, Ck), v: (B, Nk, Cv), f32 row-major; or all three 2-D (N, C) for a
    batch of one. A 2-D operand beside 3-D ones is shared by the whole batch (read in place, not
    copied B times: the image-side keys, values or queries that a batch of prompts shares in the
    mask decoder). Head h of q is the columns [offsets[0] + h * head_strides[0], + head_dim) of
    each row, likewise k (offsets[1], head_strides[1], head_dim) and v (offsets[2],
    head_strides[2], v_dim). The defaults (offsets 0, strides head_dim, head_dim, v_dim) are
    heads split along the channels, torch's x.reshape(B, N, heads, C // heads). q, k and v may
    be the same tensor. head_dim and v_dim (default head_dim): multiples of 4, at most 32;
    channels, offsets and strides: multiples of 4. bias: (heads, Nq, Nk), added to the scaled
    scores and shared by the batch. scale: default head_dim ** -0.5.

    Returns (B, Nq, heads * v_dim) (or (Nq, heads * v_dim) when all inputs are 2-D), head h in
    columns [h * v_dim, (h + 1) * v_dim): torch's out.transpose(1, 2).reshape(B, Nq, heads *
    v_dim).
    """
    op = "attention"
    v_dim = head_dim if v_dim is None else v_dim
    strides = (head_dim, head_dim, v_dim) if head_strides is None else head_strides
    dims = (head_dim, head_dim, v_dim)
    q3, k3, v3 = (t.reshape(1, *t.shape) if t.ndim == 2 else t for t in (q, k, v))
    _check_attention(q, k, v, (q3, k3, v3), heads, dims, offsets, strides, bias)
    batch, nq, nk = max(t.shape[0] for t in (q3, k3, v3)), q3.shape[1], k3.shape[1]
    out = q.device.empty((batch, nq, heads * v_dim))
    rows = ROWS if batch * heads * ceil_div(nq, ROWS) >= MIN_INVOCATIONS else 1
    scale = head_dim**-0.5 if scale is None else scale
    layout = []
    for t, off, stride in zip((q3, k3, v3), offsets, strides, strict=True):
        cols = t.shape[2]
        # A shared (2-D) operand has batch stride 0: every batch reads the same rows.
        batch_stride = t.shape[1] * cols // 4 if t.ndim == 3 and t.shape[0] == batch else 0
        layout += [batch_stride, cols // 4, off // 4, stride // 4]
    constants = {"WG": WG, "ROWS": rows, "KD": head_dim, "DV": v_dim, "HAS_BIAS": bias is not None}
    # Work (see Device.dispatch): its FLOPs, which run at about the matmul's rate. Many
    # windows go as several dispatches, each over a range of the batch (GP-5).
    flops = 2.0 * batch * heads * nq * nk * (head_dim + v_dim)
    for first, size in slices(q.device, flops, batch):
        params = pack("IIIf" + "I" * 13, nq, nk, heads, scale, *layout, first)
        grid = (ceil_div(nq, WG * rows), heads, size)
        q.device.dispatch(op, [q, k, v, bias], [out], params, grid, constants, flops * size / batch)
    all_2d = q.ndim == k.ndim == v.ndim == 2
    return out.reshape(nq, heads * v_dim) if all_2d else out


def _check_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    qkv3: tuple[Tensor, Tensor, Tensor],
    heads: int,
    dims: tuple[int, int, int],
    offsets: tuple[int, int, int],
    strides: tuple[int, int, int],
    bias: Tensor | None,
) -> None:
    """attention's argument checks; qkv3 are q, k, v as 3-D (B, N, C), dims the per-head
    widths of q, k and v."""
    op = "attention"
    check_f32(op, q=q, k=k, v=v, bias=bias)
    check(
        all(t.ndim in (2, 3) for t in (q, k, v)),
        op,
        f"q, k, v must be 2-D (N, C) or 3-D (B, N, C), got q {q.shape}, k {k.shape}, v {v.shape}",
    )
    q3, k3, v3 = qkv3
    batch, nq, nk = max(t.shape[0] for t in qkv3), q3.shape[1], k3.shape[1]
    check(
        k3.shape[1] == v3.shape[1] == nk
        and all(t.shape[0] == batch or t.ndim == 2 for t in (q, k, v)),
        op,
        f"batch and key counts differ: q {q.shape}, k {k.shape}, v {v.shape}",
    )
    check(nq >= 1 and nk >= 1 and batch >= 1, op, f"empty q {q.shape} or k {k.shape}")
    check(1 <= heads <= MAX_GROUPS, op, f"heads must be in [1, {MAX_GROUPS}], got {heads}")
    check(batch <= MAX_GROUPS, op, f"batch of q {q.shape} exceeds {MAX_GROUPS}")
    for name, dim in (("head_dim", dims[0]), ("v_dim", dims[2])):
        check(
            4 <= dim <= MAX_HEAD_DIM and dim % 4 == 0,
            op,
            f"{name} must be a multiple of 4 in [4, {MAX_HEAD_DIM}], got {dim}",
        )
    for name, t, off, stride, dim in zip("qkv", qkv3, offsets, strides, dims, strict=True):
        cols = t.shape[2]
        check(
            cols % 4 == 0 and off % 4 == 0 and stride % 4 == 0,
            op,
            f"{name} {t.shape}: channels, offset {off} and head stride {stride} must be "
            "multiples of 4",
        )
        check(
            off >= 0 and stride >= 0 and off + (heads - 1) * stride + dim <= cols,
            op,
            f"{name} {t.shape} has no room for {heads} heads of {dim} at offset {off}, "
            f"stride {stride}",
        )
    if bias is not None:
        check(
            bias.shape == (heads, nq, nk),
            op,
            f"bias must be {(heads, nq, nk)} for q {q.shape}, k {k.shape}, got {bias.shape}",
        )


def qkv_packed(
    qkv: Tensor,
    *,
    heads: int,
    key_dim: int,
    v_dim: int,
    bias: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    """TinyViT attention on the qkv Linear's output, with no split or transpose.

    qkv: (B, N, heads * (2 * key_dim + v_dim)), per token grouped by head as
    [q (key_dim) | k (key_dim) | v (v_dim)] (torch: qkv.view(B, N, heads, -1).split(...)).
    bias: (heads, N, N), the model's attention_biases[:, idxs]. scale: default key_dim ** -0.5.
    Returns (B, N, heads * v_dim).
    """
    per_head = 2 * key_dim + v_dim
    check(
        qkv.ndim == 3 and qkv.shape[2] == heads * per_head,
        "qkv_packed",
        f"qkv must be (B, N, {heads} * {per_head}) for {heads} heads, got {qkv.shape}",
    )
    return attention(
        qkv,
        qkv,
        qkv,
        heads=heads,
        head_dim=key_dim,
        v_dim=v_dim,
        bias=bias,
        scale=scale,
        offsets=(0, key_dim, 2 * key_dim),
        head_strides=(per_head, per_head, per_head),
    )
