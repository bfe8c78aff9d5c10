"""`?runtime=auto` in the tier's Chromium, whose WebGPU is SwiftShader (a CPU emulation): the
boot probe times one encoder stage on WebGPU, finds the estimate slow, loads the wasm runtime,
times the same stage there and puts wasm in force by measurement (never by adapter name);
the page says what runs and why, and the official masks come out on it (RT-1)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Page, Server
from .test_wasm import PROMPTS, assert_official, predict, reference

STATE = """() => ({runtime: window.sandseg.getClient().runtime,
                  probe: window.sandseg.runtimeProbe,
                  shown: document.getElementById('runtime-reason').textContent})"""


@pytest.fixture(scope="module")
def auto_page(open_app: Any, server: Server) -> Page:
    page = open_app(server.url + "/?runtime=auto")
    page.wait_for_status("ready")
    page.evaluate("() => window.sandseg.setMode('client')")
    return page


def test_auto_takes_wasm_here_by_measurement_and_the_page_says_why(auto_page: Page) -> None:
    state = auto_page.evaluate(STATE)
    runtime, probe = state["runtime"], state["probe"]
    print(f"auto: {runtime['reason']}; probe {probe}")
    assert runtime["runtime"] == "wasm" and runtime["available"], runtime
    webgpu, wasm = probe["webgpu"], probe["wasm"]
    assert webgpu["stage"] == wasm["stage"] == probe["stage"], probe
    assert webgpu["encodeMs"] > probe["fastEnoughMs"], "SwiftShader measured fast: no test"
    assert wasm["encodeMs"] < webgpu["encodeMs"], probe
    for measured in (webgpu, wasm):
        share = measured["stageMs"] / measured["encodeMs"]
        assert share == pytest.approx(probe["stageShare"]), probe
    # The reason names both measured per-image figures: wasm's first, then WebGPU's.
    figures = [float(s) for s in re.findall(r"([\d.]+) s per image", runtime["reason"])]
    assert len(figures) == 2, runtime["reason"]
    assert figures[0] == pytest.approx(wasm["encodeMs"] / 1e3, rel=0.05), runtime["reason"]
    assert figures[1] == pytest.approx(webgpu["encodeMs"] / 1e3, rel=0.05), runtime["reason"]
    assert "WebGPU measured" in runtime["reason"], runtime["reason"]
    assert state["shown"] == f"Client runtime: wasm. {runtime['reason']}", state["shown"]
    # Asking for auto again answers the same figures: the probe is not run twice.
    again = auto_page.evaluate("() => window.sandseg.setRuntime('auto')")
    assert again == runtime, again
    assert auto_page.evaluate("() => window.sandseg.runtimeProbe") == probe


@pytest.mark.requirement("RT-1")
def test_auto_gives_the_official_masks(auto_page: Page) -> None:
    image = dict(auto_page.evaluate("() => window.sandseg.setImage('/samples/picture1.jpg')"))
    assert image["runtime"] == "wasm" and image["mode"] == "client", image["mode"]
    ref = reference("picture1_seed1234.npz")
    for tag in ("multi", "single"):
        result = predict(auto_page, PROMPTS["center_point"], multimask=tag == "multi")
        assert_official(result, ref, f"center_point__{tag}")
