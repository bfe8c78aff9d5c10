"""One function per WGSL kernel: check shapes, pack parameters, pick the grid, dispatch.

No numerics happen on the host. Layout: activations are row-major; images and feature maps
are channels-last (H, W, C), which makes 1x1 convolutions plain matmuls and LayerNorm2d a
layer norm over the last dimension. Masks are planar (C, H, W).
"""

from ._common import OpError
from .linalg import linear, matmul

__all__ = ["OpError", "linear", "matmul"]
