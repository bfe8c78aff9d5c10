"""sandseg.browser natively: the worker's Python imports with stand-ins for Pyodide's `js` and
`pyodide.ffi` (no browser), and its results carry the fields web/client.js documents.
Only sandseg/browser/ and gpu/browser.py may import `js` or `pyodide`."""

from __future__ import annotations

import ast
import asyncio
import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from sandseg.offload.planner import MODES, Estimate, Plan
from sandseg.offload.session import ImageResult, Notice
from sandseg.predictor import LOW_RES, Prediction

PACKAGE = Path(__file__).resolve().parents[1] / "py" / "sandseg"
JS_MODULES = ("js", "pyodide")


def _fake_pyodide() -> dict[str, ModuleType]:
    js = ModuleType("js")
    js.Object = SimpleNamespace(fromEntries=dict)  # type: ignore[attr-defined]
    ffi = ModuleType("pyodide.ffi")
    # to_js leaves values as they are: the tests read the Python values it was given.
    ffi.to_js = lambda value, **_: value  # type: ignore[attr-defined]
    ffi.create_proxy = lambda value, **_: value  # type: ignore[attr-defined]
    ffi.jsnull = object()  # type: ignore[attr-defined]
    ffi.JsException = type("JsException", (Exception,), {})  # type: ignore[attr-defined]
    pyodide = ModuleType("pyodide")
    pyodide.ffi = ffi  # type: ignore[attr-defined]
    return {"js": js, "pyodide": pyodide, "pyodide.ffi": ffi}


def _browser_modules() -> list[str]:
    return [n for n in sys.modules if n.startswith("sandseg.browser") or n == "sandseg.gpu.browser"]


@pytest.fixture
def worker_py(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """sandseg.browser's modules, imported over the stand-ins, and forgotten afterwards."""
    for name, module in _fake_pyodide().items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in _browser_modules():
        monkeypatch.delitem(sys.modules, name)
    names = ("session", "marshal", "prompt", "recovery", "weights", "fetch", "testing")
    yield SimpleNamespace(**{n: importlib.import_module(f"sandseg.browser.{n}") for n in names})
    for name in _browser_modules():
        del sys.modules[name]
    for parent in ("sandseg", "sandseg.gpu"):
        vars(sys.modules[parent]).pop("browser", None)


def _prediction(planes: int, iou: list[float]) -> Prediction:
    plane = [bytes([i + 1]) * (LOW_RES * LOW_RES * 4) for i in range(planes)]
    submissions = (("decoder .. mask_threshold", 0.012),)
    masks, low_res = bytes(range(6 * len(iou))), b"".join(plane)
    return Prediction((len(iou), 2, 3), masks, None, low_res, iou, submissions)


def test_only_the_browser_modules_import_js() -> None:
    importers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            if any(name.split(".")[0] in JS_MODULES for name in names):
                importers.append(path.relative_to(PACKAGE).as_posix())
    outside = {p for p in importers if not p.startswith("browser/") and p != "gpu/browser.py"}
    assert not outside, f"modules outside sandseg/browser/ import js or pyodide: {outside}"
    assert "gpu/browser.py" in importers


def test_a_prediction_crosses_with_the_documented_fields(worker_py: Any) -> None:
    prediction = _prediction(3, [0.2, 0.9, 0.5])
    result = worker_py.marshal.prediction_result(prediction, "client", None, (10.0, 20.0, 0.5))
    assert result == {
        "masks": memoryview(prediction.masks),
        "shape": [3, 2, 3],
        "iouPredictions": [0.2, 0.9, 0.5],
        "lowResMasks": memoryview(prediction.low_res).cast("f"),
        "lowResShape": [3, LOW_RES, LOW_RES],
        "backend": "client",
        "mode": "client",
        "notice": None,
        "uploadBytes": 10.0,
        "downloadBytes": 20.0,
        "serverMs": 500.0,
        "submissionsMs": [["decoder .. mask_threshold", 12.0]],
    }
    assert worker_py.marshal.js_object(result) is result


def test_the_previous_mask_is_the_best_scoring_plane(worker_py: Any) -> None:
    best = worker_py.session._best_low_res
    assert set(best(_prediction(3, [0.2, 0.9, 0.5]))) == {2}
    # Server mode brings back only the best mask's logits: the one plane there is.
    assert set(best(_prediction(1, [0.2, 0.9, 0.5]))) == {1}


def test_an_image_result_and_the_plan(worker_py: Any) -> None:
    estimate = Estimate("client", 1.5, 0.2, 1.5, 0.0, 0.0, 0, 0, 0)
    plan = Plan(estimate, [estimate], "latency", "client: fastest")
    result = ImageResult("client", "auto: client", 1.0, 5, 7, 0.25, {"neck": 0.5}, [("neck", 0.1)])
    assert worker_py.marshal.image_result(result, plan, Notice("auto", "a notice")) == {
        "backend": "client",
        "mode": "client",
        "reason": "auto: client",
        "plan": "client: fastest",
        "estimates": [
            {
                "mode": "client",
                "firstMaskS": 1.5,
                "clickS": 0.2,
                "clientS": 1.5,
                "serverS": 0.0,
                "uploadBytes": 0,
                "downloadBytes": 0,
            }
        ],
        "notice": {"mode": "auto", "text": "a notice"},
        "uploadBytes": 5,
        "downloadBytes": 7,
        "serverMs": 250.0,
        "clientMs": {"neck": 500.0},
        "submissionsMs": [["neck", 100.0]],
    }
    assert worker_py.marshal.plan_fields(None) == {"plan": None, "estimates": []}


def test_the_page_gets_every_mode_from_python(worker_py: Any) -> None:
    choices = worker_py.marshal.mode_choices()
    assert [c["value"] for c in choices] == list(MODES)
    by_value = {c["value"]: c for c in choices}
    assert by_value["split:layers.1"] == {
        "value": "split:layers.1",
        "label": "Split after layers.1",
        "runs": "split after layers.1 (WebGPU + server)",
        "needsClient": True,
        "needsServer": True,
    }
    assert by_value["client"]["runs"] == "WebGPU client"
    assert (by_value["auto"]["needsClient"], by_value["auto"]["needsServer"]) == (False, True)
    assert (by_value["server"]["needsClient"], by_value["client"]["needsServer"]) == (False, False)


def test_a_notice_says_which_mode_is_in_force(worker_py: Any) -> None:
    notice = Notice("server", "the GPU device was lost twice: switched to server mode")
    assert worker_py.marshal.notice(notice) == {"mode": "server", "text": notice.text}
    assert worker_py.marshal.notice(None) is None


def test_a_prompt_is_read_once_from_the_js_object(worker_py: Any) -> None:
    from sandseg.predictor import InputError

    Prompt, jsnull = worker_py.prompt.PagePrompt, sys.modules["pyodide.ffi"].jsnull

    class JsObject:  # a JsProxy of a plain object: to_py() gives a dict
        def to_py(self) -> dict[str, Any]:
            return {"points": [[1, 2]], "labels": [1], "box": jsnull, "maskInput": "previous"}

    assert Prompt.from_js(JsObject()) == Prompt([[1, 2]], [1], None, "previous", True, False)
    assert Prompt.from_js({"points": [], "labels": [], "multimask": False, "preview": True}) == (
        Prompt(multimask=False, preview=True)
    )
    for bad, words in (
        ({"maskInput": "next"}, 'maskInput must be "previous" or null'),
        ({"point": [[1, 2]]}, "unknown prompt fields ['point']"),
        ({"box": "0 0 1 1"}, "box must be a list or null"),
        ([[1, 2]], "a prompt is an object"),
    ):
        with pytest.raises(InputError, match=re.escape(words)):
            Prompt.from_js(bad)


@pytest.mark.gpu
def test_the_pages_variant_checks_pass_on_the_native_device(worker_py, gpu_device) -> None:
    """The test bundle's kernel-variant checks (testing.py), run natively: every variant this
    adapter offers gives the exact products with its guard sentinels intact, so a failure in
    Chromium points at the browser's adapter, not at the checks."""
    session = SimpleNamespace(local=SimpleNamespace(ready_device=lambda: gpu_device))
    checks = (worker_py.testing.check_matmul_variants, worker_py.testing.check_conv2d_variants)
    for check in checks:
        results = asyncio.run(check(session))
        assert len({r["variant"] for r in results}) >= 2, results
        assert all(r["wrong"] == 0 and r["guard"] for r in results), results
