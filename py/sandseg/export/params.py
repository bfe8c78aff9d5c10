"""Checkpoint tensors as graph initializers, transformed as `model/params.py` does at load.

The same load-time transforms with the same float32 roundings: BatchNorm folded into the
preceding convolution (scale and shift in double precision, the weight scaled in float32),
Linear weights transposed to (in, out). Convolutions keep PyTorch's (Cout, Cin/g, k, k),
which is ONNX's layout. Every tensor's shape is checked against the model's.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..weights import HostTensor, LayoutError
from .builder import GraphBuilder

BN_EPS = 1e-5


class Params:
    """Adds checkpoint tensors to a graph as initializers named after their checkpoint keys."""

    def __init__(self, builder: GraphBuilder, tensors: Mapping[str, HostTensor]) -> None:
        self.b = builder
        self.tensors = tensors

    def array(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        t = self.tensors.get(key)
        if t is None:
            raise LayoutError(
                f"checkpoint has no tensor {key!r}; is it a MobileSAM (vit_t) checkpoint?"
            )
        if t.dtype != "F32":
            raise LayoutError(f"{key}: expected float32, got {t.dtype}")
        if tuple(t.shape) != shape:
            raise LayoutError(f"{key}: expected shape {shape}, got {tuple(t.shape)}")
        return np.frombuffer(t.data, "<f4").reshape(shape).astype(np.float32)

    def tensor(self, key: str, shape: tuple[int, ...]) -> str:
        """The checkpoint tensor as it is, added once however often it is used."""
        array = self.array(key, shape)
        return key if key in self.b.initializers else self.b.weight(key, array)

    def linear(
        self, prefix: str, n_in: int, n_out: int, bias: bool = True
    ) -> tuple[str, str | None]:
        """(weight transposed to (in, out), bias (out,))."""
        w = self.array(f"{prefix}.weight", (n_out, n_in)).T
        b = self.tensor(f"{prefix}.bias", (n_out,)) if bias else None
        return self.b.weight(f"{prefix}.weight_t", w), b

    def layer_norm(self, prefix: str, dim: int) -> tuple[str, str]:
        return self.tensor(f"{prefix}.weight", (dim,)), self.tensor(f"{prefix}.bias", (dim,))

    def conv(
        self, prefix: str, c_in: int, c_out: int, k: int, groups: int = 1, bias: bool = True
    ) -> tuple[str, str | None]:
        """A plain convolution: (weight (Cout, Cin/g, k, k), bias (Cout,))."""
        w = self.tensor(f"{prefix}.weight", (c_out, c_in // groups, k, k))
        return w, self.tensor(f"{prefix}.bias", (c_out,)) if bias else None

    def conv_bn(
        self, prefix: str, c_in: int, c_out: int, k: int, groups: int = 1
    ) -> tuple[str, str]:
        """TinyViT's Conv2d_BN (`.c` without bias, then `.bn`), folded into one convolution."""
        w = self.array(f"{prefix}.c.weight", (c_out, c_in // groups, k, k))
        gamma, beta, mean, var = (
            self.array(f"{prefix}.bn.{name}", (c_out,)).astype(np.float64)
            for name in ("weight", "bias", "running_mean", "running_var")
        )
        scale = gamma / np.sqrt(var + BN_EPS)
        shift = beta - mean * scale
        folded = w * scale.astype(np.float32)[:, None, None, None]
        return (
            self.b.weight(f"{prefix}.weight_folded", folded),
            self.b.weight(f"{prefix}.bias_folded", shift.astype(np.float32)),
        )

    def conv_transpose(self, prefix: str, c_in: int, c_out: int) -> tuple[str, str]:
        """ConvTranspose2d(k=2, s=2): (weight (Cin, Cout, 2, 2), bias (Cout,)), ONNX's layout."""
        return (
            self.tensor(f"{prefix}.weight", (c_in, c_out, 2, 2)),
            self.tensor(f"{prefix}.bias", (c_out,)),
        )

    def attention_bias(self, key: str, heads: int, window: int) -> str:
        """TinyViT's `attention_biases[:, idxs]` as a (heads, N, N) value, N = window**2.

        The table stays compact in the file; a Gather expands it (onnxruntime folds it once,
        at session start)."""
        idxs, count = attention_bias_idxs(window)
        table = self.tensor(key, (heads, count))
        return self.b("Gather", table, self.b.const(idxs), axis=1)


def attention_bias_idxs(window: int) -> tuple[np.ndarray, int]:
    """(N, N) int64 indices of the offsets (|dr|, |dc|) between two window positions, numbered
    in first-seen order over all position pairs in row-major order (the official code's
    `attention_bias_idxs`), and the number of distinct offsets."""
    points = [(r, c) for r in range(window) for c in range(window)]
    offsets: dict[tuple[int, int], int] = {}
    idxs = [
        offsets.setdefault((abs(r1 - r2), abs(c1 - c2)), len(offsets))
        for r1, c1 in points
        for r2, c2 in points
    ]
    return np.asarray(idxs, np.int64).reshape(len(points), len(points)), len(offsets)
