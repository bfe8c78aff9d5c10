"""Offload modes in the browser: every mode gives the official masks, and the fallbacks work.

- every mode (server, split:image, split after each stage, auto) on the session's page;
- a browser without WebGPU (launch flags) ends in server mode with a visible notice;
- two device losses within a minute move the work to the server, with the right mask;
- a server that goes away mid-session leaves a working client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sandseg.bench.browser import CHROMIUM_ARGS
from sandseg.offload.session import SPLIT_STAGES

from .conftest import BOOT_TIMEOUT_MS, Page, Server, _chromium_or_fail
from .test_runtime import PROMPTS, assert_masks_match, masks_of

CENTER = {**PROMPTS["center_point"], "multimask": True}
SET_IMAGE = "(url) => window.sandseg.setImage(url)"
PREDICT = "(options) => window.sandseg.predict(options)"


def check_center_point(page: Page, reference: dict[str, np.ndarray], what: str) -> dict[str, Any]:
    result = dict(page.evaluate(PREDICT, CENTER))
    want = reference["center_point__multi__masks"][0]
    assert_masks_match(masks_of(result), want, what)
    return result


MODES = ["server", "split:image", *(f"split:{s}" for s in SPLIT_STAGES), "auto"]


@pytest.mark.requirement("GP-2")
def test_every_mode_gives_the_official_masks(app_page, reference) -> None:
    try:
        for mode in MODES:
            modes = app_page.evaluate("(m) => window.sandseg.setMode(m)", mode)
            assert modes["mode"] == mode
            image = app_page.evaluate(SET_IMAGE, "/samples/picture1.jpg")
            if mode != "auto":
                assert image["mode"] == mode, image
            else:
                assert image["reason"].startswith("auto: "), image
            result = check_center_point(app_page, reference, mode)
            assert result["mode"] == image["mode"] == result["backend"]
            remote = image["mode"] != "client"
            assert (image["uploadBytes"] > 0) == remote, image
            print(
                f"{mode}: encode {image['encoderMs']:.0f} ms (up {image['uploadBytes']} B, "
                f"down {image['downloadBytes']} B), decode {result['decoderMs']:.0f} ms"
            )
    finally:
        app_page.evaluate("() => window.sandseg.setMode('client')")


@pytest.mark.requirement("GP-1", "GP-4")
def test_a_browser_without_webgpu_pinned_to_webgpu_uses_the_server(
    browser_type, server, reference
) -> None:
    """With no client runtime that can run (WebGPU missing, and the page told to use WebGPU
    only), the server does the work. (Left to auto, such a browser runs on wasm: test_wasm.)"""
    args = [a for a in CHROMIUM_ARGS if "webgpu" not in a] + ["--disable-webgpu"]
    browser = browser_type.launch(executable_path=_chromium_or_fail(), args=args)
    try:
        page = Page(browser, server.url + "/?runtime=webgpu")
        page.wait_for_status("ready", BOOT_TIMEOUT_MS)
        modes = page.evaluate("() => window.sandseg.modes")
        assert modes["mode"] == "server" and not modes["clientAvailable"], modes
        notice = page.page.locator("#mode-notice")
        assert notice.is_visible() and "switched to server mode" in notice.inner_text()
        image = page.evaluate(SET_IMAGE, "/samples/picture1.jpg")
        assert image["mode"] == "server"
        result = check_center_point(page, reference, "no WebGPU")
        assert result["mode"] == "server"
        page.close()
    finally:
        browser.close()


# A GPU that cannot run MobileSAM, through testing/worker.js's adapter shim (?testShim=): the
# requirement it shows and the words the page's notice must give for it.
CANNOT_HOLD = {
    "small-limits": ("GP-4", "limits are too small for MobileSAM"),
    "oom": ("GP-6", "could not hold the model"),
    "compile-fail": ("GP-6", "could not compile the model's kernels"),
}


@pytest.mark.requirement("GP-4", "GP-6")
@pytest.mark.parametrize("shim", CANNOT_HOLD)
def test_a_gpu_that_cannot_hold_the_model_offloads(
    open_app, server, reference, evidence, shim: str
) -> None:
    """An adapter whose limits are below WebGPU's defaults (GP-4), a device that runs out of
    memory uploading the weights or whose pipelines fail to compile at boot (GP-6): the page
    boots on the server with a notice, and the click gives the official mask"""
    requirement, words = CANNOT_HOLD[shim]
    page = open_app(server.url + f"/?runtime=webgpu&testShim={shim}")
    page.wait_for_status("ready")
    modes = page.evaluate("() => window.sandseg.modes")
    assert modes["mode"] == "server" and not modes["clientAvailable"], modes
    notice = page.page.locator("#mode-notice")
    assert notice.is_visible(), modes
    text = notice.inner_text()
    assert words in text and "switched to server mode" in text, text
    image = page.evaluate(SET_IMAGE, "/samples/picture1.jpg")
    assert image["mode"] == "server", image
    result = check_center_point(page, reference, shim)
    assert result["mode"] == "server" and page.status() == "ready", result["mode"]
    evidence(requirement, f"{shim} (test shim) -> server mode with the notice {text[:90]!r}...")


@pytest.mark.requirement("GP-1")
def test_two_device_losses_within_a_minute_move_to_the_server(open_app, reference) -> None:
    page = open_app()
    page.wait_for_status("ready")
    # split:image: the server encodes (cached), this GPU decodes: losses hit the decoder.
    page.evaluate("() => window.sandseg.setMode('split:image')")
    page.evaluate(SET_IMAGE, "/samples/picture1.jpg")
    page.evaluate("() => window.sandseg.getClient().loseDeviceForTesting()")
    first = check_center_point(page, reference, "after one loss")
    assert first["mode"] == "split:image" and not first["notice"], "one loss: rebuilt, retried"
    page.evaluate("() => window.sandseg.getClient().loseDeviceForTesting()")
    second = check_center_point(page, reference, "after two losses")
    assert second["mode"] == "server", second["mode"]
    assert "lost twice" in second["notice"] and "switched to server mode" in second["notice"]
    notice = page.page.locator("#mode-notice")
    assert "lost twice" in notice.inner_text()
    assert page.status() == "ready"


def test_a_server_that_goes_away_leaves_a_working_client(
    open_app, bundle_dir: Path, weights_file: Path, offload_engine, reference
) -> None:
    with Server(bundle_dir, weights_file, engine=offload_engine) as going_away:
        page = open_app(going_away.url + "/")
        page.wait_for_status("ready")
        page.evaluate("() => window.sandseg.setMode('server')")
        assert page.evaluate(SET_IMAGE, "/samples/picture1.jpg")["mode"] == "server"
        going_away.stop()
        # The next click finds no server: the page encodes the image itself and answers.
        result = check_center_point(page, reference, "server gone")
    assert result["mode"] == "client"
    assert "did not answer" in result["notice"] and "switched to client mode" in result["notice"]
    assert page.evaluate("() => window.sandseg.modes.mode") == "client"
    assert page.status() == "ready"
