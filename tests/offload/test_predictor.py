"""`OffloadPredictor`, the public SamPredictor-shaped face of offload, against a live server.

`OffloadPredictor.connect` with the conformance weights on both sides; every kind of mode
encodes picture1 once and decodes the official centre point. The masks, IoU predictions and
low-res logits are held to the official outputs at tests/model/test_conformance.py's
tolerances (embeddings travel as float32 here: float16 is the session's own trade-off).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sandseg.offload.predictor import OffloadPredictor
from sandseg.offload.session import MODES
from sandseg.predictor import InputError
from sandseg.server.thread import ServerThread
from tests.model.conftest import describe, mask_iou

POINT = "center_point"


@pytest.fixture(scope="module")
def server_url(tmp_path_factory, converted_weights, offload_engine) -> Iterator[str]:
    bundle = tmp_path_factory.mktemp("empty-bundle")
    with ServerThread(bundle, converted_weights, engine=offload_engine) as server:
        yield server.url


@pytest.fixture(scope="module")
def offload(server_url, converted_weights, gpu_device) -> OffloadPredictor:
    return OffloadPredictor.connect(
        server_url, weights=converted_weights, mode="client", download_dtype="float32"
    )


def assert_official(predictor: OffloadPredictor, reference: dict[str, np.ndarray]) -> None:
    masks, iou, low_res = predictor.predict(
        point_coords=reference[f"{POINT}__point_coords"],
        point_labels=reference[f"{POINT}__point_labels"],
        multimask_output=True,
    )
    key = f"{POINT}__multi__"
    want_masks = reference[key + "masks"][0]
    assert masks.shape == want_masks.shape and masks.dtype == bool
    for c, want in enumerate(want_masks):
        assert mask_iou(masks[c], want) >= 0.999, f"{predictor.mode}: mask {c}"
    np.testing.assert_allclose(iou, reference[key + "iou_predictions"][0], rtol=0, atol=1e-4)
    want_low = reference[key + "low_res_masks"][0]
    assert np.abs(low_res - want_low).max() <= 1e-4, describe(low_res, want_low)


# client, server, split:image, one encoder split and auto: each its own kind of traffic.
@pytest.mark.parametrize("mode", ["client", "server", "split:image", "split:layers.1", "auto"])
def test_every_kind_of_mode_gives_the_official_outputs(offload, reference, mode) -> None:
    offload.set_mode(mode)
    result = offload.set_image(reference["image_rgb"])
    # auto runs the planner's choice, and says which.
    assert result.mode == mode if mode != "auto" else result.mode in MODES[1:]
    assert offload.mode == mode
    if result.mode == "client":
        assert result.upload_bytes == result.download_bytes == 0
    else:
        assert result.upload_bytes > 0, f"{mode}: a remote mode sent nothing"
    assert_official(offload, reference)


def test_a_server_only_predictor_gives_the_official_outputs(server_url, reference) -> None:
    """No local model (weights=None): the server encodes and decodes."""
    offload = OffloadPredictor.connect(server_url, mode="server")
    assert offload.set_image(reference["image_rgb"]).mode == "server"
    assert_official(offload, reference)
    with pytest.raises(InputError, match="needs the model on this device"):
        offload.set_mode("client")


def test_connect_refuses_what_it_cannot_do(server_url) -> None:
    with pytest.raises(InputError, match="dtype must be float32 or float16, got 'int8'"):
        OffloadPredictor.connect(server_url, upload_dtype="int8")
    with pytest.raises(InputError, match="needs a local model, a server, or both"):
        OffloadPredictor.connect(None, mode="server", weights=None)
