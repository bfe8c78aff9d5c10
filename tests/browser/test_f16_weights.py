"""The page on float16-stored weights, as `sandseg serve` ships them (issue 14): half the
download, verified by sha256, upcast on load; the model then runs on the page's GPU.

The session's other pages get the float32 file, so that their conformance tests hold the
strict float32 thresholds; the float16 numerics are held to the official masks natively
(tests/model/test_f16_weights.py) through the same Python code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandseg.server.thread import ServerThread as Server


def test_the_page_loads_float16_weights(
    open_app: Any, bundle_dir: Path, converted_weights: Path, converted_weights_f16: Path
) -> None:
    with Server(bundle_dir, converted_weights, page_weights=converted_weights_f16) as server:
        page = open_app(server.url + "/")
        page.wait_for_status("ready")
        state = page.evaluate("() => ({modes: window.sandseg.modes, t: window.sandseg.timings})")
        page.close()
    assert state["modes"]["clientAvailable"], f"the model did not load: {state['modes']}"
    timings = state["t"]
    assert timings["weightsDownloadMs"] > 0 and timings["pipelinesMs"] > 0, timings
    print(f"float16 weights: cold start (ms) {timings}")
