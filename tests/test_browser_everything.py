"""The page's segment everything natively (sandseg.browser.everything on the native predictor,
lavapipe): config A gives the official masks reusing the image's embeddings (no second
encode), progress reaches the page's callback, a cancel stops at the next batch and leaves the
image in place, and bad parameters are refused in words before any work (AM-1)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sandseg.browser.everything import Cancelled, check_parameters, run_locally
from sandseg.predictor import InputError
from tests.amg.conformance import assert_conforms
from tests.amg.conftest import load_case
from tests.browser.test_everything import decoded


@pytest.fixture
def picture1(reference) -> np.ndarray:
    """picture1.jpg as the official code decoded it, (770, 769, 3) uint8."""
    return reference["image_rgb"]


@pytest.fixture
def rgba(picture1: np.ndarray) -> bytes:
    h, w = picture1.shape[:2]
    out = np.full((h, w, 4), 255, np.uint8)
    out[..., :3] = picture1
    return out.tobytes()


@pytest.fixture
def encoded(predictor, picture1, monkeypatch):
    """The predictor with picture1 set, and set_image_async refused: a second encode fails."""
    predictor.set_image(picture1)
    state = predictor.image_state()

    async def refuse(*args, **kwargs):
        raise AssertionError("the image was encoded again")

    monkeypatch.setattr(predictor, "set_image_async", refuse)
    return predictor, state


@pytest.mark.slow
def test_config_a_reuses_the_embeddings_and_gives_the_official_masks(
    encoded, rgba, picture1
) -> None:
    predictor, state = encoded
    case = load_case("A")
    h, w = picture1.shape[:2]
    events: list[tuple[int, int]] = []

    def step(done: int, total: int) -> bool:
        events.append((done, total))
        return False

    params = check_parameters(case["config"])
    annotations = asyncio.run(run_locally(predictor, rgba, h, w, params, step))
    assert events == [(1, 1)], events
    assert_conforms(decoded(annotations), case)
    assert predictor.image_state().embeddings is state.embeddings, "the image was not put back"


@pytest.mark.slow
def test_a_cancel_stops_at_the_next_batch_and_keeps_the_image(encoded, rgba, picture1) -> None:
    predictor, state = encoded
    h, w = picture1.shape[:2]
    events: list[tuple[int, int]] = []

    def step(done: int, total: int) -> bool:
        events.append((done, total))
        return True  # cancel

    params = {**load_case("A")["config"], "points_per_batch": 16}
    with pytest.raises(Cancelled, match="segment everything was cancelled"):
        asyncio.run(run_locally(predictor, rgba, h, w, check_parameters(params), step))
    assert events == [(1, 4)], events
    assert predictor.image_state().embeddings is state.embeddings, "the image was not put back"


@pytest.mark.requirement("AM-1")
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"points_per_side": 0}, "points_per_side must be between 1 and 64, got 0"),
        ({"points_per_side": 65}, "points_per_side must be between 1 and 64, got 65"),
        ({"crop_n_layers": 3}, "crop_n_layers must be between 0 and 2, got 3"),
        ({"pred_iou_thresh": "high"}, "pred_iou_thresh must be a finite number, got 'high'"),
        ({"point_per_side": 8}, "unknown parameter 'point_per_side'; the parameters are"),
        ({"output_mode": "binary_mask"}, "unknown parameter 'output_mode'"),
        ([8], "everything's parameters must be an object"),
    ],
)
def test_bad_parameters_are_refused_in_words(params, message) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        check_parameters(params)


def test_no_parameters_take_the_defaults() -> None:
    assert check_parameters(None) == {} and check_parameters({}) == {}
    assert check_parameters({"points_per_side": 8}) == {"points_per_side": 8}
