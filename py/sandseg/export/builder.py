"""A small ONNX graph builder: named nodes and initializers, and the layers MobileSAM uses.

Every helper appends standard opset-17 nodes and returns the name of its output value.
Node and value names carry the checkpoint prefix of the module being built (`scope`), so a
profile of the exported model reads like the model code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 17
# IR version 8 is the one that came with opset 17: every onnxruntime that runs opset 17
# (native and web) loads it.
IR_VERSION = 8
SQRT1_2 = 0.70710678118654752


class GraphBuilder:
    """Collects nodes and initializers for one graph; scalars and index tables are shared."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}
        self._scope = ""
        self._count = 0
        self._shared: dict[tuple[str, bytes, tuple[int, ...]], str] = {}

    @contextlib.contextmanager
    def scope(self, prefix: str) -> Iterator[None]:
        """Name what is built inside after the module `prefix` (a checkpoint key prefix)."""
        outer, self._scope = self._scope, prefix
        try:
            yield
        finally:
            self._scope = outer

    def weight(self, name: str, value: np.ndarray) -> str:
        """A named initializer (float32 or int64); returns its name."""
        if name in self.initializers:
            raise ValueError(f"initializer {name!r} added twice")
        array = np.ascontiguousarray(value)
        if array.dtype not in (np.float32, np.int64):
            raise TypeError(f"initializer {name!r}: float32 or int64 only, got {array.dtype}")
        self.initializers[name] = numpy_helper.from_array(array, name)
        return name

    def const(self, value: float | Sequence[int] | np.ndarray) -> str:
        """An anonymous constant, shared between all uses of the same value.

        A Python float becomes a float32 scalar; a sequence of ints an int64 vector."""
        if isinstance(value, float):
            array = np.asarray(value, np.float32)
        elif isinstance(value, np.ndarray):
            array = value
        else:
            array = np.asarray(value, np.int64)
        key = (str(array.dtype), array.tobytes(), array.shape)
        if key not in self._shared:
            self._shared[key] = self.weight(f"const_{len(self._shared)}", array)
        return self._shared[key]

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs: Any) -> list[str]:
        """Append one node; returns its output names."""
        self._count += 1
        base = (
            f"{self._scope}/{op_type}_{self._count}" if self._scope else f"{op_type}_{self._count}"
        )
        names = [base] if outputs == 1 else [f"{base}:{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=base, **attrs))
        return names

    def __call__(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        """Append a node with one output; returns its name."""
        return self.op(op_type, *inputs, **attrs)[0]

    # -- layers ---------------------------------------------------------------------------

    def linear(self, x: str, weight: str, bias: str | None = None) -> str:
        """x (..., in) @ weight (in, out) + bias (out,)."""
        y = self("MatMul", x, weight)
        return y if bias is None else self("Add", y, bias)

    def conv(
        self,
        x: str,
        weight: str,
        bias: str | None,
        kernel: int,
        *,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
    ) -> str:
        """Conv2d on NCHW; weight (Cout, Cin / groups, k, k) as in PyTorch."""
        inputs = [x, weight] if bias is None else [x, weight, bias]
        return self(
            "Conv",
            *inputs,
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[padding] * 4,
            group=groups,
        )

    def layer_norm(self, x: str, weight: str, bias: str, eps: float) -> str:
        """LayerNorm over the last axis (PyTorch's LayerNorm, or LayerNorm2d on NHWC)."""
        return self("LayerNormalization", x, weight, bias, axis=-1, epsilon=eps)

    def gelu(self, x: str) -> str:
        """Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (the Gelu op needs opset 20)."""
        erf = self("Erf", self("Mul", x, self.const(SQRT1_2)))
        return self("Mul", self("Mul", x, self("Add", erf, self.const(1.0))), self.const(0.5))

    def relu(self, x: str) -> str:
        return self("Relu", x)

    def add(self, a: str, b: str) -> str:
        return self("Add", a, b)

    def mul(self, a: str, b: str) -> str:
        return self("Mul", a, b)

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        return self("Reshape", x, self.const(list(shape)))

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        return self("Transpose", x, perm=list(perm))

    def nchw(self, x: str) -> str:
        return self.transpose(x, (0, 3, 1, 2))

    def nhwc(self, x: str) -> str:
        return self.transpose(x, (0, 2, 3, 1))

    def slice(self, x: str, axes: Sequence[int], starts: Sequence[int], ends: Sequence[int]) -> str:
        return self("Slice", x, self.const(list(starts)), self.const(list(ends)), self.const(axes))

    def attention(
        self, q: str, k: str, v: str, heads: int, head_dim: int, bias: str | None = None
    ) -> str:
        """softmax((Q_h / sqrt(head_dim)) K_h^T + bias[h]) V_h per head, heads recombined.

        q: (B, Nq, heads * head_dim), k, v: (B, Nk, heads * head_dim); bias: (heads, Nq, Nk).
        Returns (B, Nq, heads * head_dim). The query is scaled before the product, as the
        package's attention kernel does."""
        qh, kh, vh = (self._heads(t, heads, head_dim) for t in (q, k, v))
        return self.attend(qh, kh, vh, heads, head_dim, bias)

    def attend(
        self, qh: str, kh: str, vh: str, heads: int, head_dim: int, bias: str | None = None
    ) -> str:
        """`attention` on inputs already split into heads: (B, heads, N, head_dim) each."""
        qh = self.mul(qh, self.const(head_dim**-0.5))
        scores = self("MatMul", qh, self.transpose(kh, (0, 1, 3, 2)))  # (B, h, Nq, Nk)
        if bias is not None:
            scores = self.add(scores, bias)
        out = self("MatMul", self("Softmax", scores, axis=-1), vh)  # (B, h, Nq, d)
        return self.reshape(self.transpose(out, (0, 2, 1, 3)), (0, -1, heads * head_dim))

    def _heads(self, x: str, heads: int, head_dim: int) -> str:
        """(B, N, heads * d) -> (B, heads, N, d)."""
        return self.transpose(self.reshape(x, (0, -1, heads, head_dim)), (0, 2, 1, 3))

    # -- the graph ------------------------------------------------------------------------

    def output(self, x: str, name: str) -> None:
        """Expose the value x as the graph output `name`."""
        self.nodes.append(helper.make_node("Identity", [x], [name], name=f"output/{name}"))

    def graph(
        self, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto]
    ) -> onnx.GraphProto:
        return helper.make_graph(
            self.nodes, name, inputs, outputs, initializer=list(self.initializers.values())
        )


def float_value(name: str, shape: Sequence[int | str], doc: str) -> onnx.ValueInfoProto:
    """A float32 graph input or output; a str dimension is symbolic (dynamic)."""
    return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(shape), doc)
