"""Segment everything from the page (issue 15, item 5), on picture1 with config A (8 points
per side: 64 prompts), opened with the page's file picker and encoded on the server (server
mode: the generator then runs on the server, in seconds, not a SwiftShader decoder per prompt):

- window.sandseg.everything gives the official generator's masks in order (backend "server"),
  with the progress bar and Cancel shown while it runs;
- the masks are drawn in distinct translucent colours, hover highlights one, a click makes it
  the selected object's mask, and Export all downloads the CLI's COCO document;
- bad parameters (the Everything button's or the surface's) are refused in words, before any
  work, and the page keeps working.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import expect

from sandseg.amg import rle
from tests.amg.conformance import assert_conforms
from tests.amg.conftest import load_case

from .conftest import Page
from .test_offload import check_center_point

PICTURE = Path(__file__).resolve().parents[3] / "shared" / "images" / "picture1.jpg"
HEIGHT, WIDTH = 770, 769
ENCODE_MS = 300_000
FILL_ALPHA, HOVER_ALPHA = 110, 200  # everything.js
START = """(params) => {
  window.__events = [];
  window.sandseg.getClient().addEventListener('progress', ({detail}) => {
    if (detail.stage === 'everything') window.__events.push([detail.done, detail.total]);
  });
  window.__everything = window.sandseg.everything(params);
  // Handled here, awaited later (FINISH, CANCELLED): a cancel that rejects before the test
  // awaits it must not reach the page's unhandledrejection banner, which is for the page's
  // own promises.
  window.__everything.catch(() => {});
}"""
FINISH = "async () => ({...await window.__everything, events: window.__events})"
CANCELLED = """async () => {
  try { await window.__everything; return null; } catch (error) { return error.message; }
}"""
FAILS = """async (params) => {
  try { await window.sandseg.everything(params); return null; }
  catch (error) { return error.message; }
}"""
LAYER = """() => {
  const canvas = document.getElementById("everything-canvas");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let binary = "";
  for (let i = 0; i < data.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
  }
  return {width: canvas.width, height: canvas.height, rgba: btoa(binary), hidden: canvas.hidden};
}"""


def decoded(annotations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = []
    for a in annotations:
        assert a["segmentation"]["size"] == [HEIGHT, WIDTH], a["segmentation"]["size"]
        bits = rle.decode(rle.from_coco(a["segmentation"]))
        mask = np.frombuffer(bits, np.uint8).reshape(HEIGHT, WIDTH) > 0
        records.append({**a, "segmentation": mask})
    return records


def layer(page: Any) -> tuple[np.ndarray, bool]:
    o = page.evaluate(LAYER)
    data = np.frombuffer(base64.b64decode(o["rgba"]), dtype=np.uint8)
    return data.reshape(o["height"], o["width"], 4), o["hidden"]


def sampled(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A full-size mask sampled as canvas.js does (nearest, pixel centres) at the canvas size."""
    rows = np.minimum(HEIGHT - 1, ((np.arange(height) + 0.5) * HEIGHT / height).astype(int))
    cols = np.minimum(WIDTH - 1, ((np.arange(width) + 0.5) * WIDTH / width).astype(int))
    return mask[np.ix_(rows, cols)]


def eroded(mask: np.ndarray, times: int) -> np.ndarray:
    inside = mask.copy()
    for _ in range(times):
        shrunk = inside.copy()
        shrunk[1:] &= inside[:-1]
        shrunk[:-1] &= inside[1:]
        shrunk[:, 1:] &= inside[:, :-1]
        shrunk[:, :-1] &= inside[:, 1:]
        inside = shrunk
    return inside


def check_drawn(page: Any, masks: list[np.ndarray]) -> None:
    """Every mask's pixels are coloured, translucent, nothing outside them; the colours are
    distinct (each mask's own pixels, where no later mask lies, share one colour)."""
    pixels, hidden = layer(page)
    assert not hidden, "the masks' layer is hidden"
    height, width = pixels.shape[:2]
    on = [sampled(m, height, width) for m in masks]
    union = np.logical_or.reduce(on)
    assert (pixels[union][:, 3] > 0).all(), "mask pixels left undrawn"
    assert (pixels[~union][:, 3] == 0).all(), "pixels drawn outside every mask"
    inside = [eroded(m, 1) for m in on]
    seen = []
    for k, m in enumerate(inside):
        own = m & ~np.logical_or.reduce([*on[k + 1 :], np.zeros_like(m)])
        if own.sum() < 5:
            continue
        rgba = pixels[own]
        assert (rgba[:, 3] == FILL_ALPHA).all(), f"mask {k}: not at the fill alpha"
        colours = {tuple(c) for c in rgba[:, :3]}
        assert len(colours) == 1, f"mask {k}: {len(colours)} colours"
        seen.append(colours.pop())
    assert len(seen) >= 10 and len(set(seen)) == len(seen), f"colours not distinct: {seen}"


def client_point(page: Any, x: float, y: float) -> tuple[float, float]:
    box = page.locator("#marker-canvas").bounding_box()
    return box["x"] + x / WIDTH * box["width"], box["y"] + y / HEIGHT * box["height"]


@pytest.mark.requirement("AM-1")
def test_everything_on_the_page(app_page: Page, reference: dict[str, np.ndarray]) -> None:
    page = app_page.page
    case = load_case("A")
    try:
        page.select_option("#mode-select", "server")
        page.wait_for_function("() => window.sandseg.modes.mode === 'server'")
        page.set_input_files("#file-input", str(PICTURE))
        expect(page.locator("#stage")).to_have_attribute("data-image", "ready", timeout=ENCODE_MS)

        # The Everything button with a bad parameter: refused in words, no run.
        button = page.get_by_role("button", name="Everything", exact=True)
        page.evaluate("(p) => window.sandseg.setEverythingParams(p)", {"points_per_side": 0})
        button.click()
        error = page.locator(".error-text")
        expect(error).to_contain_text("points_per_side must be between 1 and 64, got 0")
        message = app_page.evaluate(FAILS, {"point_per_side": 8})
        assert message and "unknown parameter 'point_per_side'" in message, message

        # The official masks, with the progress bar and Cancel shown meanwhile.
        start = time.perf_counter()
        page.evaluate(START, case["config"])
        expect(page.locator("#everything-progress")).to_be_visible()
        expect(page.get_by_role("button", name="Cancel")).to_be_visible()
        result = page.evaluate(FINISH)
        wall = time.perf_counter() - start
        assert result["backend"] == "server"
        assert result["events"][-1] == [1, 1], result["events"]
        records = decoded(result["annotations"])
        worst = assert_conforms(records, case)
        print(
            f"everything (page, backend {result['backend']}): {len(records)} masks in "
            f"{result['ms'] / 1000:.1f} s (page {wall:.1f} s); worst {worst}"
        )
        expect(page.locator("#everything-progress")).to_be_hidden()
        expect(page.locator("#everything-info")).to_contain_text(f"{len(records)} masks")
        masks = [r["segmentation"] for r in records]
        check_drawn(page, masks)

        # Hover: the topmost mask under the pointer is highlighted.
        last = len(masks) - 1
        ys, xs = np.nonzero(eroded(masks[last], 4))
        assert len(xs), "the last mask has no interior to point at"
        x, y = float(xs[len(xs) // 2]) + 0.5, float(ys[len(ys) // 2]) + 0.5
        page.mouse.move(*client_point(page, x, y))
        hovered = f"() => window.sandseg.everythingHover === {last}"
        page.wait_for_function(hovered, timeout=10_000)
        pixels, _ = layer(page)
        assert (pixels[..., 3] == HOVER_ALPHA).sum() > 0, "no highlighted pixel"

        # Export all: the CLI's COCO document.
        with page.expect_download() as download:
            page.get_by_role("button", name="Export all (COCO JSON)").click()
        document = json.loads(Path(download.value.path()).read_text())
        assert document["image"] == {"file_name": "picture1.jpg", "height": HEIGHT, "width": WIDTH}
        assert document["annotations"] == result["annotations"]

        # A click makes it the selected object's mask; the masks are hidden for refining.
        page.mouse.click(*client_point(page, x, y))
        page.wait_for_function("() => window.sandseg.ui.result?.shape?.[0] === 1", timeout=10_000)
        picked = page.evaluate("() => window.sandseg.objects()")
        active = [o for o in picked if o["area"] == records[last]["area"]]
        assert active, (picked, records[last]["area"])
        assert page.evaluate("() => window.sandseg.ui.prompts")[0]["label"] == 1
        assert layer(page)[1], "the masks stay shown after a pick"

        # The page keeps working.
        app_page.evaluate("() => window.sandseg.setImage('/samples/picture1.jpg')")
        check_center_point(app_page, reference, "after segment everything")
        assert app_page.status() == "ready"

        # Cancel: the server's request is aborted and the run rejects as cancelled, no error.
        page.evaluate(START, case["config"])
        page.get_by_role("button", name="Cancel").click()
        message = page.evaluate(CANCELLED)
        assert message and "segment everything was cancelled" in message, message
        expect(page.locator("#everything-progress")).to_be_hidden()
        assert app_page.status() == "ready"
        expect(page.locator(".error-text")).not_to_contain_text("cancelled")
        errors = [line for line in app_page.console if line.startswith("pageerror")]
        assert not errors, errors
    finally:
        app_page.evaluate("() => window.sandseg.setMode('client')")
