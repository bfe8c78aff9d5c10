"""Every offload mode gives the same masks, natively, against a live server on 127.0.0.1.

The client (the session's Predictor) and the server (its own Engine on its GPU thread,
served by uvicorn) load the conformance checkpoint; each mode encodes picture1 and decodes
the official prompts. Masks must match the official implementation's (IoU >= 0.999) and the
client mode's; a server that goes away leaves a working client.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from sandseg.inputs import Prompt
from sandseg.offload.client import OffloadClient, Reply, UrllibTransport
from sandseg.offload.session import MODES, OffloadSession
from sandseg.server.thread import ServerThread

PROMPTS = {
    "center_point": {"point_coords": [[384, 385]], "point_labels": [1]},
    "center_box": {"box": [192, 192, 576, 577]},
}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, converted_weights, offload_engine):
    bundle = tmp_path_factory.mktemp("empty-bundle")
    with ServerThread(bundle, converted_weights, engine=offload_engine) as server:
        yield server


@pytest.fixture(scope="module")
def session(predictor, live_server) -> OffloadSession:
    session = OffloadSession(predictor, OffloadClient(UrllibTransport(live_server.url)))
    asyncio.run(session.connect())
    return session


def masks_iou(got: np.ndarray, want: np.ndarray) -> list[float]:
    got, want = got.reshape(want.shape).astype(bool), want.astype(bool)
    inter = np.logical_and(got, want).reshape(len(want), -1).sum(1)
    union = np.logical_or(got, want).reshape(len(want), -1).sum(1)
    return list(inter / np.maximum(union, 1))


def run(session: OffloadSession, image: np.ndarray, prompt: str):
    h, w, _ = image.shape
    result = asyncio.run(session.set_image(image.tobytes(), h, w, 3))
    prediction = asyncio.run(session.predict(Prompt.of(**PROMPTS[prompt], multimask_output=True)))
    masks = np.frombuffer(prediction.masks, np.uint8).reshape(prediction.shape)
    return result, prediction, masks


@pytest.mark.parametrize("mode", [m for m in MODES if m != "auto"])
def test_every_mode_gives_the_official_masks(session, reference, mode) -> None:
    session.set_mode(mode)
    result, prediction, masks = run(session, reference["image_rgb"], "center_point")
    assert result.mode == mode and session.image_mode == mode
    want = reference["center_point__multi__masks"].reshape(masks.shape)
    ious = masks_iou(masks, want)
    assert min(ious) >= 0.999, f"{mode}: IoU with the official masks {ious}"
    iou_pred = reference["center_point__multi__iou_predictions"].ravel()
    np.testing.assert_allclose(prediction.iou, iou_pred, atol=2e-3)
    if mode == "client":
        assert result.upload_bytes == result.download_bytes == 0
    else:
        assert result.upload_bytes > 0, "a remote mode that sent nothing"


@pytest.mark.requirement("GP-5")
def test_a_paced_encode_splits_its_blocks_and_gives_the_official_masks(
    session, reference, monkeypatch, evidence
) -> None:
    """With the browser's pacing on, the encoder's blocks go as many short submissions (the
    large products and convolutions split into slices), in order, and nothing changes."""
    device = session.predictor.device
    monkeypatch.setattr(device, "submission_target_s", 0.05)
    monkeypatch.setattr(device, "_rates", type(device._rates)(maxlen=device._rates.maxlen))
    session.set_mode("client")
    before = device.dispatch_count
    result, prediction, masks = run(session, reference["image_rgb"], "center_point")
    blocks = list(dict.fromkeys(name for name, _ in result.submissions))
    assert blocks[:3] == ["preprocess", "patch_embed[0]", "layers.0[0]"]
    assert blocks[-1] == "neck[0]" and len(blocks) == 18
    assert len(result.submissions) > 2 * len(blocks), "the blocks were not cut"
    block, longest = max(result.submissions, key=lambda s: s[1])
    evidence(
        "GP-5",
        f"natively on {device.adapter_name}, 50 ms target: {len(result.submissions)} "
        f"submissions, longest {longest * 1000:.0f} ms ({block})",
    )
    if longest > 0.5:
        # The budget is one learned rate for every kernel: a kernel slower per unit of work
        # than the recent submissions' (a large matmul after convolutions) overshoots it.
        evidence.gap("GP-5", f"a native submission took {longest * 1000:.0f} ms (limit 500)")
    assert device.dispatch_count - before > 200, "no dispatch was split"
    want = reference["center_point__multi__masks"].reshape(masks.shape)
    assert min(masks_iou(masks, want)) >= 0.999
    iou_pred = reference["center_point__multi__iou_predictions"].ravel()
    np.testing.assert_allclose(prediction.iou, iou_pred, atol=2e-3)


def test_auto_runs_the_planners_choice_and_says_why(session, reference) -> None:
    session.set_mode("auto")
    result, _, masks = run(session, reference["image_rgb"], "center_box")
    plan = session.planner.last_plan
    assert plan is not None and result.mode == plan.choice.mode
    # The reason is the planner's own sentence, which names a split in words
    # ("split after layers.2: ..."), not by its mode string.
    assert result.reason == f"auto: {plan.reason}"
    assert len(plan.estimates) == 8, "client, 5 splits, split:image and server"
    want = reference["center_box__multi__masks"].reshape(masks.shape)
    assert min(masks_iou(masks, want)) >= 0.999


def test_the_server_never_encodes_the_same_image_twice(session, reference) -> None:
    session.set_mode("server")
    first, _, _ = run(session, reference["image_rgb"], "center_point")
    again, _, _ = run(session, reference["image_rgb"], "center_point")
    # An encode takes seconds on lavapipe; a cache hit took up to 0.2 s on a busy machine.
    assert again.server_seconds < 1.0, f"re-encoded: {again.server_seconds:.2f} s on the server"
    assert again.upload_bytes == first.upload_bytes


def test_a_server_that_goes_away_leaves_a_working_client(
    predictor, converted_weights, offload_engine, reference, tmp_path: Path
) -> None:
    with ServerThread(tmp_path, converted_weights, engine=offload_engine) as server:
        session = OffloadSession(predictor, OffloadClient(UrllibTransport(server.url)))
        asyncio.run(session.connect(probe=False))
        session.set_mode("server")
        run(session, reference["image_rgb"], "center_point")
        server.stop()
    # The next click finds no server: the client encodes the image itself and answers.
    prediction = asyncio.run(session.predict(Prompt.of(**PROMPTS["center_point"])))
    masks = np.frombuffer(prediction.masks, np.uint8).reshape(prediction.shape)
    want = reference["center_point__multi__masks"].reshape(masks.shape)
    assert min(masks_iou(masks, want)) >= 0.999
    assert session.mode == "client" and session.image_mode == "client"
    assert session.notice and session.notice.mode == "client"
    assert "switched to client mode" in session.notice.text
    # And a new image in a remote mode falls back the same way.
    session.set_mode("split:layers.1")
    result, _, _ = run(session, reference["image_rgb"], "center_point")
    assert result.mode == "client" and "did not answer" in result.reason


def test_modes_are_checked(session) -> None:
    from sandseg.predictor import InputError

    with pytest.raises(InputError, match=r"unknown mode 'split:layers\.9'"):
        session.set_mode("split:layers.9")
    client_only = OffloadSession(session.predictor, None)
    with pytest.raises(InputError, match="needs a server"):
        client_only.set_mode("server")
    server_only = OffloadSession(None, session.client)
    with pytest.raises(InputError, match="needs the model on this device"):
        server_only.set_mode("split:image")


class BusyServer:
    """The live server, except that every image upload is refused as busy (503)."""

    def __init__(self, inner: UrllibTransport) -> None:
        self.inner = inner

    async def request(self, method, path, body, content_type):
        if path.startswith("/api/v1/images"):
            headers = {"retry-after": "2", "content-type": "application/json"}
            return Reply(503, headers, b'{"error": "the server is busy"}', len(body), 31, 0.001)
        return await self.inner.request(method, path, body, content_type)


def test_a_busy_server_hands_the_image_to_the_client(predictor, live_server, reference) -> None:
    transport = BusyServer(UrllibTransport(live_server.url))
    session = OffloadSession(predictor, OffloadClient(transport))
    asyncio.run(session.connect(probe=False))
    session.set_mode("server")
    result, _, masks = run(session, reference["image_rgb"], "center_point")
    assert result.mode == "client" and "busy" in result.reason
    assert session.mode == "server", "busy is not gone: the next image tries the server again"
    want = reference["center_point__multi__masks"].reshape(masks.shape)
    assert min(masks_iou(masks, want)) >= 0.999
