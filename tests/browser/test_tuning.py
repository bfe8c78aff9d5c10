"""The page chooses its WebGPU kernels by measurement and keeps the choice (issue 14): the
tuning table is measured once on this adapter, kept in the browser (IndexedDB, through the
worker's tuning_store.js), and the next load of the page reuses it without measuring; the
masks with the chosen kernels are the official ones."""

from __future__ import annotations

import numpy as np

from .conftest import Page
from .test_offload import SET_IMAGE, check_center_point

TUNE = "() => window.sandseg.tuneKernels()"


def test_the_tuning_table_is_measured_once_and_kept_for_the_next_load(
    open_app, reference: dict[str, np.ndarray]
) -> None:
    page: Page = open_app()  # ?runtime=webgpu (the tier's default): no measuring at boot
    page.wait_for_status("ready")
    assert page.evaluate("() => window.sandseg.timings.tuning") is None
    first = page.evaluate(TUNE)
    assert first["measured"] > 0, first
    assert first["choices"] == first["measured"] + first["reused"], first
    # The next load of the page, in the same browser profile: the kept table, no measuring.
    page.page.reload()
    page.wait_for_status("ready")
    again = page.evaluate(TUNE)
    assert again["measured"] == 0 and again["reused"] == first["choices"], (first, again)
    print(
        f"tuning on this adapter: {first['choices']} choices, {first['measured']} measured in "
        f"{first['ms'] / 1000:.1f} s; the next load reused them all in {again['ms']:.0f} ms"
    )
    page.evaluate("() => window.sandseg.setMode('client')")
    assert page.evaluate(SET_IMAGE, "/samples/picture1.jpg")["mode"] == "client"
    check_center_point(page, reference, "with the tuned kernels")
