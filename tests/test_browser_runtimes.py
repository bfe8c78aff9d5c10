"""The browser's client runtimes natively (sandseg.browser.runtimes and wasm over the stand-in
`js`/`pyodide` of test_browser_package): what auto chooses and why, what an unavailable
runtime answers, and that the ONNX route serves the graphs the export names."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sandseg.export import DECODER, STAGES
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
