"""numpy references, one per WGSL kernel (named after it): obviously right, not fast.

Never imported by the package. Each module covers a family of kernels.
"""

from .conv import conv2d, conv2d_depthwise, conv2d_subgroup, conv_transpose2x2
from .encoding import positional_encoding
from .image import preprocess, resize_antialias, resize_bilinear
from .layout import permute, window_partition, window_reverse
from .linalg import activate, gelu, matmul, matmul_strided, matmul_subgroup, matmul_tiled
from .mask import mask_stats, threshold
from .multihead import attention
from .norm import layer_norm, softmax
from .pointwise import elementwise

__all__ = [
    "activate",
    "attention",
    "conv2d",
    "conv2d_depthwise",
    "conv2d_subgroup",
    "conv_transpose2x2",
    "elementwise",
    "gelu",
    "layer_norm",
    "mask_stats",
    "matmul",
    "matmul_strided",
    "matmul_subgroup",
    "matmul_tiled",
    "permute",
    "positional_encoding",
    "preprocess",
    "resize_antialias",
    "resize_bilinear",
    "softmax",
    "threshold",
    "window_partition",
    "window_reverse",
]
