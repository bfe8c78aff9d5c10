"""sandseg: MobileSAM on WebGPU from Python, natively (wgpu-py) and in the browser (Pyodide)."""

from .amg import AutomaticMaskGenerator
from .predictor import Predictor

__all__ = ["AutomaticMaskGenerator", "Predictor"]
