"""The error types users see: each says what was wrong and what to do."""

from __future__ import annotations

from .annotations import AnnotationError
from .gpu.device import GPUError
from .offload.client import OffloadError
from .ops._common import OpError
from .predictor import InputError
from .weights import WeightsError

# Errors the command line prints as one line instead of a traceback. Others are bugs.
# (AnnotationError is an InputError.)
UserFacingError: tuple[type[Exception], ...] = (
    GPUError,
    OffloadError,
    OpError,
    OSError,
    InputError,
    WeightsError,
)

__all__ = [
    "AnnotationError",
    "GPUError",
    "InputError",
    "OffloadError",
    "OpError",
    "UserFacingError",
    "WeightsError",
]
