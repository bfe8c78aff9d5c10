"""Segment everything from the page (issue 15, item 5): the automatic mask generator where the
current image lives, as `sandseg everything` writes its records (COCO compressed RLE).

- On this browser's WebGPU (the image was encoded here): `AutomaticMaskGenerator` on the
  session's predictor. The whole-image crop reuses the embeddings already on the GPU (no second
  encode); crop layers encode their crops.
- On the server (the image was encoded there): POST /api/v1/images/{sha}/everything.
- The wasm runtime cannot run the generator (it needs the WGSL model's batched decoder): its
  images go to the server (uploaded once, their mode unchanged); with no server the error says
  to choose the webgpu runtime.

Parameters are the generator's keyword arguments (not point_grids, not output_mode), checked
by GeneratorParams before any GPU work (RELIABILITY.md AM-1). Standard library only (plus the
browser's `js` through the session's transport).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ..amg import AutomaticMaskGenerator, GeneratorParams
from ..amg.document import json_safe
from ..predictor import InputError, Predictor

# The parameters the page may give: the generator's, less the two the page fixes.
PARAMETERS = tuple(
    f.name
    for f in dataclasses.fields(GeneratorParams)
    if f.name not in ("point_grids", "output_mode")
)
SERVER_TOTAL = 1  # one request: progress goes 0/1 -> 1/1


class Cancelled(Exception):
    """The page cancelled segment everything (at a batch boundary)."""

    def __init__(self) -> None:
        super().__init__("segment everything was cancelled; nothing was changed")


def check_parameters(params: Any) -> dict[str, Any]:
    """The page's parameters (a dict, or None for every default) -> the generator's keyword
    arguments, checked. InputError names what is wrong and what is allowed."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise InputError(
            "everything's parameters must be an object, e.g. {points_per_side: 16}; "
            "{} takes every default"
        )
    for name in params:
        if name not in PARAMETERS:
            shown = repr(name) if isinstance(name, str) and len(name) <= 40 else "a parameter"
            raise InputError(
                f"unknown parameter {shown}; the parameters are {', '.join(PARAMETERS)}"
            )
    GeneratorParams(**params)  # raises InputError naming a bad value
    return dict(params)


Step = Callable[[int, int], bool]  # (done, total) -> whether to stop


class _ReusingPredictor:
    """The session's predictor, for the generator: the whole-image crop takes the embeddings
    already encoded (`state`) instead of encoding the image again."""

    def __init__(self, predictor: Predictor, state: Any, size: tuple[int, int]) -> None:
        self._predictor = predictor
        self._state = state
        self._size = size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._predictor, name)

    async def set_image_async(self, image: Any, *args: Any, **kwargs: Any) -> None:
        shape = memoryview(image).shape or ()
        if self._state is not None and tuple(shape[:2]) == self._size:
            self._predictor.restore_image(self._state)
            return
        await self._predictor.set_image_async(image, *args, **kwargs)


async def run_locally(
    predictor: Predictor, pixels: bytes, height: int, width: int, params: dict[str, Any], step: Step
) -> list[dict[str, Any]]:
    """The generator on this browser's GPU -> the CLI's records. The predictor gets the
    current image back afterwards, cancelled or not."""
    state = predictor.image_state()

    def progress(done: int, total: int) -> None:
        if step(done, total):
            raise Cancelled()

    generator = AutomaticMaskGenerator(
        _ReusingPredictor(predictor, state, (height, width)),  # type: ignore[arg-type]
        output_mode="coco_rle",
        **params,
    )
    image = memoryview(pixels).cast("B", (height, width, 4))
    try:
        records = await generator.generate_async(image, progress)
    finally:
        if state is not None:
            predictor.restore_image(state)
    return [json_safe(r) for r in records]
