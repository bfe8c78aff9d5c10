"""numpy references, one per WGSL kernel (named after it): obviously right, not fast.

Never imported by the package. Each module covers a family of kernels.
"""

from .linalg import activate, gelu, matmul, matmul_strided

__all__ = ["activate", "gelu", "matmul", "matmul_strided"]
