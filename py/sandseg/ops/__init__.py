"""One function per WGSL kernel: check shapes, pack parameters, pick the grid, dispatch.

No numerics happen on the host (the one documented exception: PIL's resampling weight tables,
computed in double precision as PIL does, in `image.resize_antialias`). Layout: activations
are row-major; images and feature maps are channels-last (H, W, C), which makes 1x1
convolutions plain matmuls and LayerNorm2d a layer norm over the last dimension. Masks are
planar (C, H, W).
"""

from ._common import OpError
from .attention import attention, qkv_packed
from .conv import conv2d, conv2d_depthwise, conv_transpose2x2
from .elementwise import add, add_bias, add_tiled, fill, gelu, mul, relu, scale, scale_shift
from .encoding import positional_encoding
from .image import preprocess, resize_antialias, resize_bilinear, resize_longest_side
from .layout import permute, window_partition, window_reverse
from .linalg import linear, matmul
from .mask import mask_stats, threshold
from .norm import layer_norm, softmax

__all__ = [
    "OpError",
    "add",
    "add_bias",
    "add_tiled",
    "attention",
    "conv2d",
    "conv2d_depthwise",
    "conv_transpose2x2",
    "fill",
    "gelu",
    "layer_norm",
    "linear",
    "mask_stats",
    "matmul",
    "mul",
    "permute",
    "positional_encoding",
    "preprocess",
    "qkv_packed",
    "relu",
    "resize_antialias",
    "resize_bilinear",
    "resize_longest_side",
    "scale",
    "scale_shift",
    "softmax",
    "threshold",
    "window_partition",
    "window_reverse",
]
