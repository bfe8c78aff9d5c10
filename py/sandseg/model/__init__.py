"""MobileSAM as compositions of ops; module and attribute names mirror the official code."""

from .sam import ImageInfo, MobileSAM, probe_image
from .tiny_vit import TinyViT

__all__ = ["ImageInfo", "MobileSAM", "TinyViT", "probe_image"]
