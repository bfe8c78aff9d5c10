"""MobileSAM as compositions of ops; module and attribute names mirror the official code."""

from .sam import ImageInfo, MobileSAM
from .tiny_vit import TinyViT

__all__ = ["ImageInfo", "MobileSAM", "TinyViT"]
