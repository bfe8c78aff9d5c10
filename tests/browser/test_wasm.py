"""The wasm client runtime (onnxruntime-web's WASM backend on the server's stage graphs) in a
Chromium started without WebGPU (`--disable-gpu`, no `--enable-unsafe-webgpu`): it boots to
ready on wasm and segments the photos with the official masks; its files are the bundle's,
pinned and checked before use (RT-2); `?runtime=` and `setRuntime` choose the runtime.
Module order matters: one page per browser, booted once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.amg.conformance import assert_conforms
from tests.amg.conftest import load_case

from .conftest import CHROMIUM, CONFORMANCE, Page, Server
from .test_everything import decoded
from .test_runtime import SET_IMAGE_ERROR, assert_masks_match, low_res_of, masks_of

# Debian's chromium as a visitor without a GPU has it: no WebGPU at all.
NO_WEBGPU_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ORT_FILES = ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]
# picture1's prompts (test_runtime.PROMPTS) and one of the landscape photo's.
PROMPTS: dict[str, dict[str, Any]] = {
    "center_point": {"points": [[384, 385]], "labels": [1], "box": None},
    "two_points": {"points": [[256, 385], [512, 385]], "labels": [1, 0], "box": None},
    "center_box": {"points": None, "labels": None, "box": [192, 192, 576, 577]},
}
STATE = "() => ({runtime: window.sandseg.getClient().runtime, modes: window.sandseg.modes})"


@pytest.fixture(scope="module")
def no_webgpu(playwright: Any) -> Iterator[Any]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=NO_WEBGPU_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def wasm_page(no_webgpu: Any, server: Server) -> Iterator[Page]:
    """The app in the Chromium without WebGPU, `?runtime=auto`, booted, in client mode."""
    page = Page(no_webgpu, server.url + "/?runtime=auto")
    page.page.set_default_timeout(300_000)
    page.wait_for_status("ready")
    page.evaluate("() => window.sandseg.setMode('client')")
    yield page
    page.close()


def reference(name: str) -> dict[str, np.ndarray]:
    with np.load(CONFORMANCE / name) as npz:
        return dict(npz)


def predict(page: Page, prompt: dict[str, Any], multimask: bool) -> dict[str, Any]:
    options = {**prompt, "maskInput": None, "multimask": multimask}
    return dict(page.evaluate("(o) => window.sandseg.predict(o)", options))


def assert_official(result: dict[str, Any], ref: dict[str, np.ndarray], key: str) -> None:
    assert result["runtime"] == "wasm" and result["mode"] == "client", result["mode"]
    assert_masks_match(masks_of(result), ref[f"{key}__masks"][0], key)
    got = np.asarray(result["iouPredictions"], np.float32)
    np.testing.assert_allclose(got, ref[f"{key}__iou_predictions"][0], rtol=0, atol=1e-3)
    assert low_res_of(result).shape == (masks_of(result).shape[0], 256, 256)


@pytest.mark.requirement("RT-2")
def test_boots_to_ready_on_wasm_without_webgpu(wasm_page: Page, server: Server, evidence) -> None:
    state = wasm_page.evaluate(STATE)
    assert state["runtime"]["runtime"] == "wasm", state
    assert "WebGPU" in state["runtime"]["reason"], state["runtime"]
    assert state["modes"]["clientAvailable"], state["modes"]
    no_adapter = "() => navigator.gpu ? navigator.gpu.requestAdapter().then((a) => !a) : true"
    assert wasm_page.evaluate(no_adapter), "this Chromium has a WebGPU adapter"
    # Self-hosted: onnxruntime-web's files came from this server's bundle, nothing else did.
    urls = wasm_page.evaluate("() => performance.getEntriesByType('resource').map((e) => e.name)")
    assert all(url.startswith(server.url) for url in urls), urls
    assert wasm_page.csp_violations() == []
    assert wasm_page.evaluate("() => self.crossOriginIsolated"), "COOP/COEP missing"
    evidence("RT-2", "booted on wasm without WebGPU; every file same-origin, 0 CSP violations")


@pytest.fixture(scope="module")
def picture1(wasm_page: Page) -> dict[str, Any]:
    result = dict(wasm_page.evaluate("() => window.sandseg.setImage('/samples/picture1.jpg')"))
    print(f"wasm encoder (picture1): {result['encoderMs']:.0f} ms, stages {result['clientMs']}")
    return result


@pytest.mark.parametrize("tag", ["multi", "single"])
@pytest.mark.parametrize("prompt", list(PROMPTS))
@pytest.mark.requirement("RT-1")
def test_wasm_gives_the_official_outputs(wasm_page, picture1, prompt: str, tag: str) -> None:
    assert picture1["runtime"] == "wasm" and picture1["mode"] == "client"
    result = predict(wasm_page, PROMPTS[prompt], multimask=tag == "multi")
    assert_official(result, reference("picture1_seed1234.npz"), f"{prompt}__{tag}")
    print(f"wasm {prompt} {tag}: decoder {result['decoderMs']:.0f} ms")


@pytest.mark.requirement("RT-1")
def test_wasm_gives_the_official_outputs_on_the_landscape_photo(wasm_page, picture1) -> None:
    ref = reference("dogs_seed1234.npz")
    result = dict(wasm_page.evaluate("() => window.sandseg.setImage('/samples/dogs.jpg')"))
    assert (result["height"], result["width"]) == ref["image_rgb"].shape[:2]
    prompt = {
        "points": ref["left_point__point_coords"].tolist(),
        "labels": ref["left_point__point_labels"].tolist(),
        "box": None,
    }
    assert_official(predict(wasm_page, prompt, True), ref, "left_point__multi")


@pytest.mark.requirement("RT-1")
def test_a_wasm_prefix_composes_with_the_servers_suffix(wasm_page, picture1) -> None:
    """split:layers.1 on wasm: patch_embed, layers.0 and layers.1 here, the rest on the
    server (the session's engine: wgpu), the decoder here."""
    wasm_page.evaluate("() => window.sandseg.setMode('split:layers.1')")
    try:
        image = dict(wasm_page.evaluate("() => window.sandseg.setImage('/samples/picture1.jpg')"))
        result = predict(wasm_page, PROMPTS["center_point"], True)
    finally:
        wasm_page.evaluate("() => window.sandseg.setMode('client')")
    assert image["mode"] == "split:layers.1" and image["runtime"] == "wasm", image["mode"]
    assert set(image["clientMs"]) == {"preprocess", "patch_embed", "layers.0", "layers.1"}
    assert result["mode"] == "split:layers.1" and result["runtime"] == "wasm"
    ref = reference("picture1_seed1234.npz")
    assert_masks_match(masks_of(result), ref["center_point__multi__masks"][0], "split")
    got = np.asarray(result["iouPredictions"], np.float32)
    np.testing.assert_allclose(got, ref["center_point__multi__iou_predictions"][0], atol=1e-3)


def test_everything_on_an_image_the_wasm_runtime_encoded_runs_on_the_server(
    wasm_page, picture1
) -> None:
    """wasm has no batched decoder: segment everything goes to the server (the image
    uploaded once), gives the official generator's masks (config A), and the image stays the
    client's (the next click runs on wasm)."""
    image = dict(wasm_page.evaluate("() => window.sandseg.setImage('/samples/picture1.jpg')"))
    assert image["runtime"] == "wasm" and image["mode"] == "client", image["mode"]
    case = load_case("A")
    result = wasm_page.evaluate("(p) => window.sandseg.everything(p)", case["config"])
    assert result["backend"] == "server", result["backend"]
    worst = assert_conforms(decoded(result["annotations"]), case)
    print(f"everything behind wasm, on the server: {len(result['annotations'])} masks; {worst}")
    click = predict(wasm_page, PROMPTS["center_point"], True)
    assert click["runtime"] == "wasm" and click["mode"] == "client", click["mode"]


def test_set_runtime_answers_what_can_run(wasm_page, picture1) -> None:
    webgpu = wasm_page.evaluate("() => window.sandseg.setRuntime('webgpu')")
    assert webgpu["available"] is False and webgpu["runtime"] == "wasm", webgpu
    assert "webgpu cannot run here" in webgpu["reason"], webgpu
    auto = wasm_page.evaluate("() => window.sandseg.setRuntime('auto')")
    assert auto == {**auto, "runtime": "wasm", "available": True}, auto
    error = wasm_page.evaluate(
        "() => window.sandseg.setRuntime('cuda').then(() => '', (e) => e.message)"
    )
    assert "unknown runtime 'cuda'" in error and "wasm" in error, error
    wasm_page.evaluate("() => window.sandseg.setMode('server')")
    wasm_page.evaluate("() => window.sandseg.setImage('/samples/picture1.jpg')")
    served = predict(wasm_page, PROMPTS["center_point"], True)
    assert served["mode"] == "server" and served["runtime"] is None, served["mode"]
    wasm_page.evaluate("() => window.sandseg.setMode('client')")


@pytest.mark.requirement("RT-2")
def test_a_flipped_byte_in_an_ort_file_stops_the_wasm_path(
    no_webgpu, bundle_dir, weights_file, offload_engine, tmp_path, evidence
) -> None:
    bundle = tmp_path / "dist"
    shutil.copytree(bundle_dir, bundle)
    target = "ort/ort-wasm-simd-threaded.wasm"
    with Server(bundle, weights_file, engine=offload_engine) as server:
        data = bytearray((bundle / target).read_bytes())
        data[len(data) // 2] ^= 0x01
        (bundle / target).write_bytes(bytes(data))
        page = Page(no_webgpu, server.url + "/?runtime=wasm")
        try:
            page.page.set_default_timeout(300_000)
            page.wait_for_status("ready")
            state = page.evaluate(STATE)
            again = page.evaluate("() => window.sandseg.setRuntime('wasm')")
            image_error = page.evaluate(SET_IMAGE_ERROR, "/samples/picture1.jpg")
        finally:
            page.close()
    # The page still works, on the server, and says why the wasm path stopped.
    assert state["runtime"]["runtime"] is None and state["modes"]["mode"] == "server", state
    notice = state["modes"]["notice"]
    for words in (target, "pinned sha256", "refusing"):
        assert words in notice, notice
        assert words in again["reason"], again
    assert again["available"] is False and again["runtime"] is None, again
    assert image_error == "", image_error
    evidence("RT-2", f"flipped byte in {target}: wasm refused, page on the server, in words")


def test_url_runtime_wasm_on_a_page_with_webgpu(open_app, server: Server) -> None:
    """`?runtime=wasm` in the WebGPU browser: wasm, without WebGPU's weights or pipelines."""
    page = open_app(server.url + "/?runtime=wasm")
    page.wait_for_status("ready")
    state = page.evaluate(STATE)
    assert state["runtime"] == {**state["runtime"], "runtime": "wasm", "available": True}
    timings = page.evaluate("() => window.sandseg.timings")
    assert timings["pipelinesMs"] is None and timings["wasmMs"] > 0, timings
    page.close()
