"""The page as a user meets it (issue 4, "The page"), told as one story on a fresh page:
bad files get words on the page and the page keeps working; open a photo, hover, click, see
the mask drawn, pick among the three masks, export the mask and the cut-out (the files are
checked against window.sandseg.lastResult), add negative points and a box, undo, clear.

The weights are the seeded conformance checkpoint, so the masks are not meaningful shapes;
the story checks that what the page draws and exports is exactly what the model returned.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]
DOGS = ROOT.parent / "shared" / "images" / "dogs.jpg"
WIDTH, HEIGHT = 1072, 603
# In image pixels: the black dog's chest, the golden dog's head, a patch of sand.
BLACK_DOG = (660.0, 420.0)
GOLDEN_DOG = (530.0, 240.0)
SAND = (150.0, 530.0)
# SwiftShader: an encoder pass takes up to a minute, a decode a few seconds.
ENCODE_MS = 300_000
DECODE_MS = 120_000

COUNT_OPAQUE = """(id) => {
  const canvas = document.getElementById(id);
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i]) n++;
  return {opaque: n, total: canvas.width * canvas.height};
}"""
PIXEL_AT = """([id, fx, fy]) => {
  const canvas = document.getElementById(id);
  const x = Math.round(fx * canvas.width), y = Math.round(fy * canvas.height);
  return [...canvas.getContext("2d").getImageData(x, y, 1, 1).data];
}"""
LAST_RESULT = """() => {
  const r = window.sandseg.lastResult;
  return r && {masksBase64: r.masksBase64, shape: r.shape, iou: [...r.iouPredictions],
               backend: r.backend, selected: window.sandseg.ui.selectedMask};
}"""


def last_result(page: Any) -> dict[str, Any]:
    """The client's last result with its masks as a (C, H, W) bool array and the UI's choice."""
    result = page.evaluate(LAST_RESULT)
    assert result is not None, "window.sandseg.lastResult is not set"
    raw = np.frombuffer(base64.b64decode(result["masksBase64"]), dtype=np.uint8)
    result["masks"] = raw.reshape(result["shape"]).astype(bool)
    return result


def to_page(page: Any, point: tuple[float, float]) -> tuple[float, float]:
    """Image pixels -> page CSS pixels over the drawn image."""
    box = page.locator("#marker-canvas").bounding_box()
    return box["x"] + point[0] * box["width"] / WIDTH, box["y"] + point[1] * box["height"] / HEIGHT


def wait_results(page: Any, count: int) -> None:
    expect(page.locator("#stage")).to_have_attribute("data-results", str(count), timeout=DECODE_MS)


def download(page: Any, button: str, tmp_path: Path) -> tuple[str, np.ndarray]:
    with page.expect_download() as info:
        page.click(button)
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (WIDTH, HEIGHT)
        return info.value.suggested_filename, np.asarray(image.convert("RGBA"))


def check_bad_files(page: Any) -> None:
    bad = [
        ("notes.txt", "text/plain", b"not a picture\n", "not an image"),
        ("empty.jpg", "image/jpeg", b"", "empty"),
        ("corrupt.jpg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 64, "decode"),
    ]
    banner = page.locator("#error-banner")
    for name, mime, data, words in bad:
        page.set_input_files(
            "#file-input", files=[{"name": name, "mimeType": mime, "buffer": data}]
        )
        expect(banner).to_be_visible()
        expect(banner).to_contain_text(name)
        expect(banner).to_contain_text(words)
        page.click("#error-banner .dismiss")
        expect(banner).to_be_hidden()
    assert page.inner_text("#status") == "ready"


def check_drawn(page: Any, result: dict[str, Any]) -> None:
    """The overlay shows the selected mask: same share of the image, within sampling slack."""
    drawn = page.evaluate(COUNT_OPAQUE, "mask-canvas")
    share = result["masks"][result["selected"]].mean()
    assert abs(drawn["opaque"] / drawn["total"] - share) < 0.02, (drawn, share)
    pressed = page.locator(".mask-choice[aria-pressed=true]")
    expect(pressed).to_have_attribute("data-index", str(result["selected"]))


@pytest.mark.requirement("GP-2")
def test_ui_story(open_app: Any, tmp_path: Path) -> None:
    app = open_app()
    app.wait_for_status("ready")
    page = app.page

    check_bad_files(page)

    # Where it runs is chosen on the page: everything on this browser's GPU first.
    expect(page.locator("#mode-select")).to_be_enabled()
    page.select_option("#mode-select", "client")
    page.wait_for_function("() => window.sandseg.modes.mode === 'client'")

    # Open the photo with the file picker; the encoder runs once.
    page.set_input_files("#file-input", str(DOGS))
    expect(page.locator("#image-info")).to_contain_text(f"dogs.jpg · {WIDTH} \u00d7 {HEIGHT}")
    expect(page.locator("#stage")).to_have_attribute("data-image", "ready", timeout=ENCODE_MS)
    expect(page.locator("#timings")).to_contain_text(re.compile(r"Encoder\s*[\d.]+ m?s"))

    # Hovering previews the mask under the cursor, before any click.
    page.mouse.move(*to_page(page, GOLDEN_DOG))
    page.mouse.move(*to_page(page, (GOLDEN_DOG[0] + 4, GOLDEN_DOG[1] + 4)))
    expect(page.locator("#stage")).to_have_attribute("data-preview", "1", timeout=DECODE_MS)

    # A left click: a positive point at the right place in image pixels, three masks.
    page.mouse.click(*to_page(page, BLACK_DOG))
    wait_results(page, 1)
    prompts = page.evaluate("() => window.sandseg.ui.prompts")
    assert len(prompts) == 1 and prompts[0]["label"] == 1
    assert abs(prompts[0]["x"] - BLACK_DOG[0]) < 1.5 and abs(prompts[0]["y"] - BLACK_DOG[1]) < 1.5
    result = last_result(page)
    assert result["shape"] == [3, HEIGHT, WIDTH]
    assert result["selected"] == int(np.argmax(result["iou"])), "default: the best IoU"
    expect(page.locator(".mask-choice")).to_have_count(3)
    expect(page.locator("#mask-choices")).to_contain_text(f"IoU {result['iou'][0]:.3f}")
    expect(page.locator("#backend-badge")).to_have_text("Backend: WebGPU client")
    green = page.evaluate(PIXEL_AT, ["marker-canvas", BLACK_DOG[0] / WIDTH, BLACK_DOG[1] / HEIGHT])
    assert green[1] > 150 and green[0] < 100, f"the positive point is not drawn green: {green}"
    check_drawn(page, result)

    # Switch to the largest mask the model gave (the seeded weights make no promise of shape).
    areas = result["masks"].reshape(3, -1).sum(axis=1)
    assert areas.max() > 0, f"all three masks are empty: {areas}"
    page.locator(".mask-choice").nth(int(np.argmax(areas))).click()
    result = last_result(page)
    assert result["selected"] == int(np.argmax(areas))
    check_drawn(page, result)
    assert page.evaluate(COUNT_OPAQUE, "mask-canvas")["opaque"] > 0, "no mask drawn"

    # Export: the mask PNG is white on black at full size and equals the selected mask.
    selected = result["masks"][result["selected"]]
    name, mask_png = download(page, "#export-mask", tmp_path)
    assert name == "dogs-mask.png"
    assert (mask_png[..., 3] == 255).all()
    assert set(np.unique(mask_png[..., :3]).tolist()) <= {0, 255}
    assert (mask_png[..., :3] == mask_png[..., :1]).all(), "mask PNG is not grey"
    assert np.array_equal(mask_png[..., 0] == 255, selected)
    # ... and the cut-out keeps the photo's pixels where the mask is on, alpha 0 elsewhere.
    name, cutout = download(page, "#export-cutout", tmp_path)
    assert name == "dogs-cutout.png"
    assert np.array_equal(cutout[..., 3] == 255, selected)
    assert set(np.unique(cutout[..., 3]).tolist()) <= {0, 255}
    with Image.open(DOGS) as photo:
        original = np.asarray(photo.convert("RGB")).astype(int)
    diff = np.abs(cutout[..., :3].astype(int) - original)[selected]
    assert diff.size == 0 or (diff.mean() < 1.0 and diff.max() <= 8), (diff.mean(), diff.max())

    # Negative points (shift+click and right click) and a box drag, each a new prediction,
    # refined with the previous mask: the worker keeps the last click's, never a preview's.
    page.check("#refine-toggle")
    page.keyboard.down("Shift")
    page.mouse.click(*to_page(page, GOLDEN_DOG))
    page.keyboard.up("Shift")
    wait_results(page, 2)
    page.mouse.click(*to_page(page, SAND), button="right")
    wait_results(page, 3)
    red = page.evaluate(PIXEL_AT, ["marker-canvas", SAND[0] / WIDTH, SAND[1] / HEIGHT])
    assert red[0] > 150 and red[1] < 100, f"the negative point is not drawn red: {red}"
    page.mouse.move(*to_page(page, (560, 180)))
    page.mouse.down()
    page.mouse.move(*to_page(page, (650, 350)), steps=4)
    page.mouse.move(*to_page(page, (790, 590)), steps=4)
    page.mouse.up()
    wait_results(page, 4)
    prompts = page.evaluate("() => window.sandseg.ui.prompts")
    assert [p.get("label") for p in prompts] == [1, 0, 0, None]
    assert prompts[3]["kind"] == "box"
    assert np.allclose(prompts[3]["box"], [560, 180, 790, 590], atol=1.5)
    expect(page.locator("#prompt-info")).to_have_text("Prompts: 1 positive, 2 negative, 1 box.")

    # Undo removes the box and predicts again; clear removes everything.
    page.click("#undo-button")
    wait_results(page, 5)
    assert len(page.evaluate("() => window.sandseg.ui.prompts")) == 3
    check_drawn(page, last_result(page))
    page.click("#clear-button")
    expect(page.locator("#prompt-info")).to_have_text("No prompts yet.")
    expect(page.locator(".mask-choice")).to_have_count(0)
    expect(page.locator("#export-mask")).to_be_disabled()
    assert page.evaluate(COUNT_OPAQUE, "mask-canvas")["opaque"] == 0
    assert page.evaluate(COUNT_OPAQUE, "marker-canvas")["opaque"] == 0

    # Server mode from the page: the next image is encoded and decoded on the server, and the
    # page says so (GP-2).
    page.select_option("#mode-select", "server")
    page.wait_for_function("() => window.sandseg.modes.mode === 'server'")
    page.set_input_files("#file-input", str(DOGS))
    expect(page.locator("#mode-reason")).to_contain_text("This image: server", timeout=ENCODE_MS)
    expect(page.locator("#stage")).to_have_attribute("data-image", "ready")
    page.mouse.click(*to_page(page, BLACK_DOG))
    wait_results(page, 6)
    expect(page.locator("#backend-badge")).to_have_text("Backend: server")
    assert last_result(page)["shape"] == [3, HEIGHT, WIDTH]

    expect(page.locator("#error-banner")).to_be_hidden()
    assert page.inner_text("#status") == "ready"
    assert app.csp_violations() == []
