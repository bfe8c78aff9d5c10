"""Uploading checkpoint tensors to the GPU in the layouts the kernels read.

Load-time transforms happen here, once: PyTorch weights are permuted on the GPU into
channels-last layouts (Linear (out, in) -> (in, out); Conv (Cout, Cin/g, kh, kw) -> HWIO),
BatchNorm is folded into the preceding convolution, and TinyViT's attention-bias tables are
expanded from `attention_biases`. Every tensor's shape is checked against the model's.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Mapping

from .. import ops
from ..gpu import Device, Tensor
from ..weights import HostTensor, LayoutError

BN_EPS = 1e-5


class WeightStore:
    """Hands out GPU tensors for checkpoint keys, checking each key's shape as it goes."""

    def __init__(
        self,
        device: Device,
        tensors: Mapping[str, HostTensor] | Callable[[str], HostTensor],
    ) -> None:
        self.device = device
        self._get = tensors.__getitem__ if isinstance(tensors, Mapping) else tensors
        self.used: set[str] = set()

    def host(self, key: str, shape: tuple[int, ...] | None = None) -> HostTensor:
        try:
            t = self._get(key)
        except KeyError:
            raise LayoutError(
                f"checkpoint has no tensor {key!r}; is it a MobileSAM (vit_t) checkpoint?"
            ) from None
        if t.dtype != "F32":
            raise LayoutError(f"{key}: expected float32, got {t.dtype}")
        if shape is not None and tuple(t.shape) != tuple(shape):
            raise LayoutError(f"{key}: expected shape {tuple(shape)}, got {tuple(t.shape)}")
        self.used.add(key)
        return t

    def floats(self, key: str, shape: tuple[int, ...] | None = None) -> list[float]:
        return _floats(self.host(key, shape).data)

    def tensor(self, key: str, shape: tuple[int, ...] | None = None) -> Tensor:
        t = self.host(key, shape)
        return self.device.upload(t.data, tuple(t.shape))

    def linear(
        self, prefix: str, n_in: int, n_out: int, bias: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """(weight transposed to (in, out), bias (out,))."""
        w = ops.permute(self.tensor(f"{prefix}.weight", (n_out, n_in)), (1, 0))
        b = self.tensor(f"{prefix}.bias", (n_out,)) if bias else None
        return w, b

    def layer_norm(self, prefix: str, dim: int) -> tuple[Tensor, Tensor]:
        return self.tensor(f"{prefix}.weight", (dim,)), self.tensor(f"{prefix}.bias", (dim,))

    def conv(
        self, prefix: str, c_in: int, c_out: int, k: int, groups: int = 1, bias: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """A plain convolution: (weight as HWIO (k, k, Cin/g, Cout), bias (Cout,))."""
        w = self.tensor(f"{prefix}.weight", (c_out, c_in // groups, k, k))
        b = self.tensor(f"{prefix}.bias", (c_out,)) if bias else None
        return ops.permute(w, (2, 3, 1, 0)), b

    def conv_bn(
        self, prefix: str, c_in: int, c_out: int, k: int, groups: int = 1
    ) -> tuple[Tensor, Tensor]:
        """TinyViT's Conv2d_BN (`.c` without bias, then `.bn`), folded into one convolution.

        Returns (weight HWIO (k, k, Cin/g, Cout) scaled per output channel, bias (Cout,)).
        """
        w, _ = self.conv(f"{prefix}.c", c_in, c_out, k, groups, bias=False)
        gamma = self.floats(f"{prefix}.bn.weight", (c_out,))
        beta = self.floats(f"{prefix}.bn.bias", (c_out,))
        mean = self.floats(f"{prefix}.bn.running_mean", (c_out,))
        var = self.floats(f"{prefix}.bn.running_var", (c_out,))
        self.used.add(f"{prefix}.bn.num_batches_tracked")
        scale = [g / math.sqrt(v + BN_EPS) for g, v in zip(gamma, var, strict=True)]
        shift = [b - m * s for b, m, s in zip(beta, mean, scale, strict=True)]
        scale_t = self.device.upload(array("f", scale).tobytes(), (c_out,))
        folded = ops.scale_shift(w, scale_t, None)
        return folded, self.device.upload(array("f", shift).tobytes(), (c_out,))

    def conv_transpose(self, prefix: str, c_in: int, c_out: int) -> tuple[Tensor, Tensor]:
        """ConvTranspose2d(k=2, s=2): (weight (Cin, 2, 2, Cout), bias (Cout,))."""
        w = self.tensor(f"{prefix}.weight", (c_in, c_out, 2, 2))
        return ops.permute(w, (0, 2, 3, 1)), self.tensor(f"{prefix}.bias", (c_out,))

    def attention_bias(self, key: str, heads: int, window: int) -> Tensor:
        """TinyViT's `attention_biases[:, idxs]` as a (heads, N, N) table, N = window**2.

        idxs numbers the offsets (|dr|, |dc|) between two window positions in first-seen order
        over all position pairs in row-major order, as the official code does.
        """
        points = [(r, c) for r in range(window) for c in range(window)]
        offsets: dict[tuple[int, int], int] = {}
        idxs = []
        for r1, c1 in points:
            for r2, c2 in points:
                idxs.append(offsets.setdefault((abs(r1 - r2), abs(c1 - c2)), len(offsets)))
        table = self.floats(key, (heads, len(offsets)))
        n = len(offsets)
        expanded = array("f", (table[h * n + i] for h in range(heads) for i in idxs))
        return self.device.upload(expanded.tobytes(), (heads, len(points), len(points)))


def _floats(data: bytes) -> list[float]:
    values = array("f")
    values.frombytes(data)
    if values.itemsize != 4:
        raise LayoutError("this platform's C float is not 32-bit")
    return values.tolist()
