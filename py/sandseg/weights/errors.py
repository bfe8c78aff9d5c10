"""Error types of the weights package: every failure is a `WeightsError` (a `ValueError`)."""

from __future__ import annotations

from collections.abc import Sequence


class WeightsError(ValueError):
    """A weights file or tensor is invalid; the message says what is wrong and what to do."""


class SafetensorsError(WeightsError):
    """A safetensors file or buffer is malformed."""


class CheckpointError(WeightsError):
    """A PyTorch `.pt` checkpoint is unreadable, unsafe or not a plain state dict."""


class LayoutError(WeightsError):
    """Tensor names, shapes or dtypes do not match the expected model layout."""

    def __init__(
        self,
        message: str,
        *,
        missing: Sequence[str] = (),
        unknown: Sequence[str] = (),
        mismatched: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.missing = tuple(missing)
        self.unknown = tuple(unknown)
        self.mismatched = tuple(mismatched)
