"""The server on the onnxruntime runtime (`sandseg serve --runtime onnxruntime`) and with a
runtime per part (`auto`): server mode, every split and split:image give the official masks
(RT-1); /api/v1/model publishes the runtime of every part and what each measured; a cancelled
job stops at a stage boundary (FT-2)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from starlette.testclient import TestClient

from sandseg.export import STAGES
from sandseg.inputs import Prompt
from sandseg.offload import messages
from sandseg.offload.client import OffloadClient, UrllibTransport
from sandseg.offload.session import OffloadSession
from sandseg.server.app import create_app
from sandseg.server.engine import Cancelled, Engine, RuntimePlan, ServerProfile
from sandseg.server.thread import ServerThread
from tests.model.conftest import describe, rel_l2

from .test_parity import check_prediction

OCTETS = "application/octet-stream"
CENTER_POINT = {"point_coords": [[384, 385]], "point_labels": [1]}


@pytest.fixture(scope="module")
def ort_engine(gpu_device, converted_weights, onnx_cache, graphs):
    """`sandseg serve --runtime onnxruntime`'s engine, profiled as serve does."""
    engine = Engine(converted_weights, runtime="onnxruntime", onnx_cache=onnx_cache)
    engine.profile = engine.measure(repeat=1)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory, converted_weights, ort_engine) -> TestClient:
    bundle = tmp_path_factory.mktemp("empty-bundle")  # the API needs no page
    app = create_app(bundle, converted_weights, hosts={"testserver"}, engine=ort_engine)
    return TestClient(app, raise_server_exceptions=False)


def official_masks(session: OffloadSession, reference, mode: str):
    session.set_mode(mode)
    image = reference["image_rgb"]
    h, w, _ = image.shape
    result = asyncio.run(session.set_image(image.tobytes(), h, w, 3))
    assert result.mode == mode
    prediction = asyncio.run(session.predict(Prompt.of(**CENTER_POINT, multimask_output=True)))
    check_prediction(prediction, reference, "center_point", "multi")
    return result


@pytest.mark.requirement("RT-1")
def test_server_mode_and_a_split_give_the_official_masks(
    predictor, converted_weights, ort_engine, reference, tmp_path
) -> None:
    with ServerThread(tmp_path, converted_weights, engine=ort_engine) as server:
        session = OffloadSession(predictor, OffloadClient(UrllibTransport(server.url)))
        asyncio.run(session.connect(probe=False))
        for mode in ("server", "split:image", "split:patch_embed"):
            result = official_masks(session, reference, mode)
            assert result.server_seconds > 0


@pytest.mark.requirement("RT-1")
@pytest.mark.parametrize("stage", STAGES)
def test_every_split_point_gives_the_official_masks(
    client, encoder_stages, predictor, reference, stage
) -> None:
    """The official tensor entering `stage` -> the server's suffix on onnxruntime -> the
    client decodes its embeddings (as in split mode)."""
    x = np.ascontiguousarray(encoder_stages[stage], np.float32)
    body = messages.encode_tensor("x", x.tobytes(), x.shape, "F32")
    response = client.post(
        f"/api/v1/stages/{stage}", content=body, headers={"Content-Type": OCTETS}
    )
    assert response.status_code == 200, response.text
    data, _ = messages.decode_embeddings(response.content)
    got = np.frombuffer(data, np.float32)
    want = encoder_stages["embeddings"].reshape(-1)
    assert rel_l2(got, want) <= 1e-4, describe(got, want)
    h, w = reference["image_rgb"].shape[:2]
    predictor.set_image_embedding(data, (h, w))
    prediction = asyncio.run(predictor.predict_async(**CENTER_POINT))
    check_prediction(prediction, reference, "center_point", "multi")


def test_the_model_route_publishes_the_runtimes(client, ort_engine) -> None:
    model = client.get("/api/v1/model").json()
    runtime = model["runtime"]
    assert runtime["requested"] == "onnxruntime"
    assert list(runtime["available"]) == ["onnxruntime"]
    assert "ExecutionProvider" in runtime["available"]["onnxruntime"]
    assert runtime["stages"] == {name: "onnxruntime" for name in STAGES}
    assert runtime["preprocess"] == runtime["decoder"] == "onnxruntime"
    assert runtime["reason"] == "--runtime onnxruntime"
    measured = runtime["measured"]["onnxruntime"]
    for stage in model["stages"]:
        assert stage["runtime"] == "onnxruntime"
        assert stage["server_seconds"] == stage["runtime_seconds"]["onnxruntime"] > 0
        assert measured["stage_seconds"][stage["name"]] == stage["server_seconds"]
    assert model["profile"]["decode_seconds"] == measured["decode_seconds"] > 0


@pytest.mark.requirement("FT-2")
def test_a_cancelled_job_stops_at_the_next_stage_boundary(ort_engine, encoder_stages) -> None:
    """onnxruntime cannot stop a stage midway: the job stops once the stage in flight ends."""
    cancel = threading.Event()
    ran: list[str] = []
    runtime = ort_engine.runtimes["onnxruntime"]

    class Recorded:
        def __init__(self, name: str, session) -> None:
            self.name, self.session = name, session

        def run(self, *args):
            ran.append(self.name)
            if self.name == "layers.1":
                cancel.set()  # the client goes away while layers.1 runs
            return self.session.run(*args)

    real = dict(runtime.sessions)
    runtime.sessions.update({name: Recorded(name, real[name]) for name in STAGES})
    try:
        x = np.ascontiguousarray(encoder_stages["layers.0"], np.float32).tobytes()
        with pytest.raises(Cancelled) as stopped:
            ort_engine.call(ort_engine.run_stages, 1, x, cancel)
    finally:
        runtime.sessions.update(real)
    assert stopped.value.args[0] == "layers.1"
    assert ran == ["layers.0", "layers.1"]


@pytest.mark.requirement("RT-1")
def test_auto_takes_the_fastest_runtime_per_part_and_mixes_them(
    gpu_device, converted_weights, onnx_cache, graphs, reference
) -> None:
    """Given what each runtime measured, auto's plan takes the faster per part; an image
    encoded and decoded across both runtimes still gives the official masks."""
    engine = Engine(converted_weights, runtime="auto", onnx_cache=onnx_cache)
    try:
        assert set(engine.runtimes) == {"wgpu", "onnxruntime"}
        # Measured seconds (made up, so that each runtime wins some parts).
        engine.runtime_profiles = {
            "wgpu": ServerProfile(
                0.1, {s: (0.5 if s in ("patch_embed", "layers.3") else 2.0) for s in STAGES}, 0.2
            ),
            "onnxruntime": ServerProfile(0.05, {s: 1.0 for s in STAGES}, 0.3),
        }
        engine.plan = engine._fastest_plan()
        want = {"preprocess": "onnxruntime", "decode": "wgpu"}
        want |= {s: "wgpu" if s in ("patch_embed", "layers.3") else "onnxruntime" for s in STAGES}
        assert engine.plan.parts == want
        assert engine.plan.reason.startswith("auto: the fastest runtime per part")
        profile = engine._planned_profile()
        assert profile.stage_s["patch_embed"] == 0.5 and profile.stage_s["layers.0"] == 1.0
        assert (profile.preprocess_s, profile.decode_s) == (0.05, 0.2)
        state = engine.call(
            engine.embed_image, "picture1", reference["image_rgb"], threading.Event()
        )
        got = np.frombuffer(state.embeddings, np.float32).reshape(64, 64, 256)
        want_emb = reference["image_embeddings"][0].transpose(1, 2, 0)
        assert rel_l2(got, want_emb) <= 1e-4, describe(got, want_emb)
        prediction = engine.call(engine.predict, state, Prompt.of(**CENTER_POINT))
        check_prediction(prediction, reference, "center_point", "multi")
    finally:
        engine.close()


def test_an_unknown_runtime_is_refused(converted_weights) -> None:
    from sandseg.predictor import InputError

    with pytest.raises(InputError, match="unknown runtime 'tensorrt'"):
        Engine(converted_weights, runtime="tensorrt")


def test_every_part_of_a_plan_is_named() -> None:
    plan = RuntimePlan.everything_on("wgpu", "why", list(STAGES))
    assert list(plan.parts) == ["preprocess", *STAGES, "decode"]


def test_onnxruntime_alone_loads_no_gpu_model(ort_engine, predictor) -> None:
    """--runtime onnxruntime needs no adapter; its stages are the model's own."""
    from sandseg.server.engine import _stage_infos

    assert ort_engine.predictor is None and ort_engine.device is None
    assert ort_engine.stages == _stage_infos(predictor)
