"""The browser's client runtimes natively (sandseg.browser.runtimes and wasm over the stand-in
`js`/`pyodide` of test_browser_package): what auto chooses and why (by measured timings, fake
here), what an unavailable runtime answers, and that the ONNX route serves the graphs the
export names."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from sandseg.export import DECODER, STAGES
from sandseg.model.flops import encoder_stage_flops, stage_share
from sandseg.predictor import InputError
from sandseg.server.onnx_route import GRAPHS
from tests.test_browser_package import worker_py  # noqa: F401 (the fixture)


def runtimes(worker_py, webgpu: bool, wasm: bool):  # noqa: F811
    from sandseg.browser.runtimes import ClientRuntimes

    local = SimpleNamespace(predictor=object() if webgpu else None)
    loaded = ClientRuntimes(local)  # type: ignore[arg-type]
    if wasm:
        loaded.attach_wasm(SimpleNamespace(threads=1))
    if not webgpu:
        loaded.problem("webgpu", "WebGPU found no GPU adapter")
    return loaded


def test_the_onnx_route_serves_the_graphs_the_export_names() -> None:
    # The stage names and boundaries are one definition (weights/layout.py), held to the
    # exported graphs by tests/runtime/test_stage_graphs.py; the decoder's name is not.
    assert list(GRAPHS) == [*STAGES, DECODER]


def test_auto_takes_webgpu_where_it_works_else_wasm_saying_why(worker_py) -> None:  # noqa: F811
    both = runtimes(worker_py, webgpu=True, wasm=True)
    assert both.choose("auto") and both.current == "webgpu"
    only_wasm = runtimes(worker_py, webgpu=False, wasm=True)
    assert only_wasm.choose("auto")
    assert only_wasm.state(True) == {
        "runtime": "wasm",
        "available": True,
        "reason": "auto: wasm, since WebGPU cannot (WebGPU found no GPU adapter)",
    }
    assert only_wasm.predictor() is only_wasm.wasm


def test_an_unavailable_runtime_is_refused_and_the_current_one_kept(worker_py) -> None:  # noqa: F811
    loaded = runtimes(worker_py, webgpu=False, wasm=True)
    assert loaded.choose("wasm")
    assert not loaded.choose("webgpu")
    assert loaded.state(False) == {
        "runtime": "wasm",
        "available": False,
        "reason": "webgpu cannot run here (WebGPU found no GPU adapter)",
    }
    neither = runtimes(worker_py, webgpu=False, wasm=False)
    assert not neither.choose("auto") and neither.current is None
    assert "wasm: not loaded" in neither.reason
    with pytest.raises(InputError, match="unknown runtime 'cuda'; the runtimes are auto"):
        neither.choose("cuda")


def test_the_mode_picker_names_the_client_runtime(worker_py) -> None:  # noqa: F811
    from sandseg.browser import marshal

    for runtime, name in (("webgpu", "WebGPU"), ("wasm", "WASM"), (None, "WebGPU")):
        by_value = {c["value"]: c for c in marshal.mode_choices(runtime)}
        assert by_value["client"]["runs"] == f"{name} client"
        assert by_value["split:image"]["runs"] == f"server encoder + {name} decoder"
        assert by_value["split:layers.1"]["runs"] == f"split after layers.1 ({name} + server)"


def timed(loaded, webgpu_s: float | None = None, wasm_s: float | None = None):
    """Fake probe timings of the probe stage (seconds) on each runtime."""
    from sandseg.browser.runtimes import PROBE_STAGE, Measured

    for runtime, seconds in (("webgpu", webgpu_s), ("wasm", wasm_s)):
        if seconds is not None:
            loaded.measured[runtime] = Measured(PROBE_STAGE, seconds)
    return loaded


def test_the_probe_scales_the_stage_by_its_share_of_the_encoders_flops() -> None:
    flops = encoder_stage_flops()
    assert list(flops) == list(STAGES)
    # patch_embed by hand: 3x3 stride-2 convolutions 3 -> 32 (to 512x512), 32 -> 64 (256x256).
    assert flops["patch_embed"] == 2 * (512 * 512 * 32 * 3 * 9 + 256 * 256 * 64 * 32 * 9)
    # neck: 1x1 320 -> 256 and 3x3 256 -> 256 at 64x64.
    assert flops["neck"] == 2 * 64 * 64 * 256 * (320 + 256 * 9)
    assert sum(stage_share(s) for s in STAGES) == pytest.approx(1.0)
    assert 0.03 < stage_share("patch_embed") < 0.05, "the cheapest stage, a few per cent"
    with pytest.raises(ValueError, match="unknown encoder stage 'decoder'"):
        stage_share("decoder")


def test_auto_keeps_a_fast_webgpu_without_loading_wasm(worker_py) -> None:  # noqa: F811
    from sandseg.browser.runtimes import FAST_ENOUGH_S, PROBE_STAGE

    share = stage_share(PROBE_STAGE)
    loaded = timed(runtimes(worker_py, webgpu=True, wasm=False), webgpu_s=0.3 * share)
    assert not loaded.wants_wasm()
    assert loaded.choose("auto") and loaded.current == "webgpu"
    assert "0.3 s per image" in loaded.reason and "wasm was not tried" in loaded.reason
    probe = loaded.probe()
    assert probe["webgpu"]["encodeMs"] == pytest.approx(300.0)
    assert probe["fastEnoughMs"] == FAST_ENOUGH_S * 1e3 and "wasm" not in probe


def test_auto_takes_wasm_when_it_measures_faster_than_a_slow_webgpu(worker_py) -> None:  # noqa: F811
    from sandseg.browser.runtimes import PROBE_STAGE

    share = stage_share(PROBE_STAGE)
    loaded = timed(runtimes(worker_py, webgpu=True, wasm=False), webgpu_s=26 * share)
    assert loaded.wants_wasm(), "26 s per encode on WebGPU: wasm must be tried"
    loaded.attach_wasm(SimpleNamespace(threads=1))
    timed(loaded, wasm_s=4.1 * share)
    assert loaded.choose("auto") and loaded.current == "wasm"
    assert loaded.predictor() is loaded.wasm
    assert loaded.reason.startswith(f"auto: wasm, 4.1 s per image (measured: {PROBE_STAGE} in")
    assert loaded.reason.endswith("WebGPU measured 26 s per image on this adapter")
    probe = loaded.probe()
    assert probe["wasm"]["encodeMs"] < probe["webgpu"]["encodeMs"]
    assert probe["wasm"]["stage"] == probe["webgpu"]["stage"] == PROBE_STAGE
    # A slow WebGPU that still beats wasm stays.
    loaded.measured.clear()
    timed(loaded, webgpu_s=5 * share, wasm_s=6 * share)
    assert loaded.choose("auto") and loaded.current == "webgpu", loaded.reason
    assert "wasm measured 6 s per image" in loaded.reason


def test_auto_keeps_a_slow_webgpu_when_wasm_cannot_run_saying_why(worker_py) -> None:  # noqa: F811
    loaded = timed(runtimes(worker_py, webgpu=True, wasm=False), webgpu_s=1.0)
    loaded.problem("wasm", "the wasm runtime did not load: HTTP 404")
    assert loaded.wants_wasm()
    assert loaded.choose("auto") and loaded.current == "webgpu"
    assert "wasm cannot be measured here (the wasm runtime did not load: HTTP 404)" in (
        loaded.reason
    )


class FailingEncoder:
    """A stand-in Predictor whose encoder raises: the probe's failure path."""

    def __init__(self) -> None:
        self.device = SimpleNamespace(finish=self._finish, upload=lambda data, shape: shape)
        self.model = SimpleNamespace(encode=self._encode)

    async def _finish(self) -> list[Any]:
        return []

    def _encode(self, x: Any, start: int, stop: int) -> Any:
        raise RuntimeError(f"lost the device in stages [{start}, {stop}) of {x}")


def test_a_failed_probe_falls_back_to_webgpu_naming_the_failure(worker_py) -> None:  # noqa: F811
    loaded = runtimes(worker_py, webgpu=True, wasm=False)
    loaded.local.predictor = FailingEncoder()
    asyncio.run(loaded.measure("webgpu"))
    assert not loaded.wants_wasm(), "a failed probe keeps the rule without measurement"
    assert loaded.choose("auto") and loaded.current == "webgpu"
    assert loaded.reason == (
        "auto: webgpu (not measured: the probe failed: RuntimeError: lost the device in "
        "stages [5, 6) of (64, 64, 320))"
    )
    assert loaded.probe()["webgpu"] == {"error": loaded.probe_errors["webgpu"]}
