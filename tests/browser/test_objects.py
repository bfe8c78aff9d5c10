"""Several objects per image on the page (issue 17): the demo-weights notice, a two-object
story told through window.sandseg and checked on screen (the overlay's pixels in each object's
colour), COCO JSON decoded with pycocotools against the model's own masks, the label PNG,
import round trip and refusals, and the keyboard shortcuts.

One page, one photo, encoded once on the server (server mode: decodes are the server's, so the
story costs seconds, not a SwiftShader decoder per click). The weights are the seeded
conformance checkpoint: masks are noise-like, so each object takes its largest mask, and the
checks compare what the page shows and exports with what the model returned.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from sandseg.server.thread import ServerThread as Server
from tests.amg import coco
from tests.annotations.coco_reader import annotation_mask, iou
from tests.browser.conftest import Page

ROOT = Path(__file__).resolve().parents[2]
DOGS = ROOT.parent / "shared" / "images" / "dogs.jpg"
PICTURE = ROOT.parent / "shared" / "images" / "picture1.jpg"
SCREENSHOT = ROOT / "out" / "objects.png"
WIDTH, HEIGHT = 1072, 603
BLACK_DOG = (660.0, 420.0)
GOLDEN_DOG = (530.0, 240.0)
SAND = (150.0, 530.0)
ENCODE_MS = 300_000
DECODE_MS = 120_000
NOTICE = "demo weights: seeded random, masks look like noise; run with mobile_sam.pt for real masks"
FILL_ALPHA = 120  # canvas.js: an object's fill is its colour at this alpha

OVERLAY = """() => {
  const canvas = document.getElementById("mask-canvas");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let binary = "";
  for (let i = 0; i < data.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
  }
  return {width: canvas.width, height: canvas.height, rgba: btoa(binary)};
}"""
LAST_RESULT = """() => {
  const r = window.sandseg.lastResult;
  return {masksBase64: r.masksBase64, shape: r.shape};
}"""
# Every control on the page and whether it has an accessible name (text, aria-label, a label).
UNNAMED_CONTROLS = """() => [...document.querySelectorAll("button, input, select, textarea")]
  .filter((e) => !(e.getAttribute("aria-label") || e.labels?.length || e.title ||
                   (e.tagName === "BUTTON" && e.textContent.trim())))
  .map((e) => e.outerHTML.slice(0, 120))"""


# ---- helpers ---------------------------------------------------------------------------------


def surface(page: Any, script: str, arg: Any = None) -> Any:
    return page.evaluate(script, arg)


def objects(page: Any) -> list[dict[str, Any]]:
    return list(surface(page, "() => window.sandseg.objects()"))


def active_id(page: Any) -> int:
    return int(page.locator(".object-row.active").get_attribute("data-id"))


def wait_results(page: Any, count: int) -> None:
    expect(page.locator("#stage")).to_have_attribute("data-results", str(count), timeout=DECODE_MS)


def results(page: Any) -> int:
    return int(page.locator("#stage").get_attribute("data-results"))


def to_page(page: Any, point: tuple[float, float]) -> tuple[float, float]:
    box = page.locator("#marker-canvas").bounding_box()
    return box["x"] + point[0] * box["width"] / WIDTH, box["y"] + point[1] * box["height"] / HEIGHT


def masks_of(prediction: dict[str, Any]) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(prediction["masksBase64"]), dtype=np.uint8)
    return raw.reshape(prediction["shape"]).astype(bool)


def choose_largest(page: Any, masks: np.ndarray) -> np.ndarray:
    """Picks the selected object's largest mask with its key (1-3); -> that mask."""
    index = int(np.argmax(masks.reshape(len(masks), -1).sum(axis=1)))
    page.keyboard.press(str(index + 1))
    expect(page.locator(".mask-choice[aria-pressed=true]")).to_have_attribute(
        "data-index", str(index)
    )
    assert masks[index].any(), "every mask of this prompt is empty"
    return masks[index]


def predict_object(page: Any, name: str, point: tuple[float, float]) -> tuple[int, np.ndarray]:
    """A new object named `name`, prompted through window.sandseg.predict; -> (id, its mask)."""
    new = surface(page, "(name) => window.sandseg.addObject(name)", name)
    prediction = surface(
        page,
        "(p) => window.sandseg.predict({points: [p], labels: [1], multimask: true})",
        list(point),
    )
    return int(new["id"]), choose_largest(page, masks_of(prediction))


def overlay(page: Any) -> np.ndarray:
    o = surface(page, OVERLAY)
    data = np.frombuffer(base64.b64decode(o["rgba"]), dtype=np.uint8)
    return data.reshape(o["height"], o["width"], 4)


def sampled(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A full-size mask sampled as canvas.js does (nearest, pixel centres) at the canvas size."""
    rows = np.minimum(HEIGHT - 1, ((np.arange(height) + 0.5) * HEIGHT / height).astype(int))
    cols = np.minimum(WIDTH - 1, ((np.arange(width) + 0.5) * WIDTH / width).astype(int))
    return mask[np.ix_(rows, cols)]


def interior(mask: np.ndarray) -> np.ndarray:
    inside = mask.copy()
    inside[1:] &= mask[:-1]
    inside[:-1] &= mask[1:]
    inside[:, 1:] &= mask[:, :-1]
    inside[:, :-1] &= mask[:, 1:]
    return inside


def rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])


def share_in_colour(pixels: np.ndarray, where: np.ndarray, colour: str) -> float:
    """The share of the overlay's pixels at `where` filled with `colour` at the fill alpha."""
    chosen = pixels[where]
    assert len(chosen), "no pixel to look at"
    close = np.abs(chosen[:, :3].astype(int) - rgb(colour)).max(axis=1) <= 3
    return float((close & (chosen[:, 3] == FILL_ALPHA)).mean())


def colours(page: Any) -> dict[int, str]:
    rows = page.locator(".object-row")
    return {
        int(rows.nth(i).get_attribute("data-id")): rows.nth(i)
        .locator(".object-colour")
        .input_value()
        for i in range(rows.count())
    }


def check_drawn(
    page: Any, shown: dict[int, np.ndarray], hidden: tuple[np.ndarray, ...] = ()
) -> None:
    """The overlay holds each shown object's mask in its colour (where no other shown object
    covers it) and nothing else: nothing of a hidden (or deleted) object's mask."""
    pixels = overlay(page)
    height, width = pixels.shape[:2]
    on = {oid: sampled(mask, height, width) for oid, mask in shown.items()}
    palette = colours(page)
    for oid, mask in on.items():
        others = np.zeros_like(mask)
        for other, m in on.items():
            if other != oid:
                others |= m
        only = interior(mask) & ~others
        assert only.sum() > 20, f"object {oid} has too few pixels of its own to check"
        share = share_in_colour(pixels, only, palette[oid])
        assert share > 0.99, f"object {oid}: {share:.3f} of its pixels in {palette[oid]}"
    covered = np.zeros((height, width), bool)
    for m in on.values():
        covered |= m
    assert (pixels[~covered][:, 3] == 0).all(), "overlay pixels outside every shown mask"
    for mask in hidden:
        assert (sampled(mask, height, width) & ~covered).sum() > 20, "cannot tell: it is covered"


# ---- the page --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(open_app: Any) -> Any:
    """The app with dogs.jpg open (opened with the file picker, encoded on the server)."""
    app = open_app()
    app.wait_for_status("ready")
    page = app.page
    page.select_option("#mode-select", "server")
    page.wait_for_function("() => window.sandseg.modes.mode === 'server'")
    page.set_input_files("#file-input", str(DOGS))
    expect(page.locator("#stage")).to_have_attribute("data-image", "ready", timeout=ENCODE_MS)
    yield page
    assert app.csp_violations() == []
    assert not [line for line in app.console if line.startswith("pageerror")], app.console


def test_demo_weights_notice(page: Any) -> None:
    page.wait_for_function("() => window.sandseg.weights !== null", timeout=30_000)
    weights = surface(page, "() => window.sandseg.weights")
    assert weights["demo"] is True, weights
    assert len(weights["sha256"]) == 64 and weights["name"], weights
    notice = page.locator("#weights-notice")
    expect(notice).to_be_visible()
    expect(notice).to_have_text(NOTICE)
    # It does not block: the page under it still takes clicks (the story below).


def test_no_notice_with_other_weights(
    browser: Any, bundle_dir: Path, weights_file: Path, offload_engine: Any, tmp_path: Path
) -> None:
    """Weights that are not the demo's (one value changed) make no notice. The notice reads
    /api/v1/model from the page itself, so the page need not finish booting."""
    data = bytearray(weights_file.read_bytes())
    data[-1] ^= 1
    other = tmp_path / "mobile_sam.safetensors"
    other.write_bytes(bytes(data))
    with Server(bundle_dir, other, engine=offload_engine) as server:
        app = Page(browser, server.url + "/")
        try:
            app.page.wait_for_function("() => window.sandseg.weights !== null", timeout=30_000)
            weights = app.evaluate("() => window.sandseg.weights")
            assert weights["demo"] is False, weights
            assert app.page.locator("#weights-notice").is_hidden()
        finally:
            app.close()


def test_two_objects_story(page: Any) -> None:
    # The first object exists without being made: a click prompts it, as on the old page.
    first = objects(page)
    assert len(first) == 1 and first[0]["area"] == 0, first
    one = first[0]["id"]
    start = results(page)
    page.mouse.click(*to_page(page, BLACK_DOG))
    wait_results(page, start + 1)
    mask_one = choose_largest(page, masks_of(surface(page, LAST_RESULT)))
    [row] = objects(page)
    assert row["area"] == int(mask_one.sum()) and row["iou"] is not None

    # A second object: made with the button, selected, and the hover and clicks act on it.
    page.click("#add-object")
    expect(page.locator(".object-row")).to_have_count(2)
    two = active_id(page)
    assert two != one and objects(page)[1] == {
        "id": two,
        "name": "Object 2",
        "iou": None,
        "area": 0,
    }
    page.mouse.move(*to_page(page, GOLDEN_DOG))
    page.mouse.move(*to_page(page, (GOLDEN_DOG[0] + 4, GOLDEN_DOG[1] + 4)))
    expect(page.locator("#stage")).to_have_attribute("data-preview", "1", timeout=DECODE_MS)
    page.mouse.click(*to_page(page, GOLDEN_DOG))
    wait_results(page, start + 2)
    mask_two = choose_largest(page, masks_of(surface(page, LAST_RESULT)))
    areas = {o["id"]: o["area"] for o in objects(page)}
    assert areas == {one: int(mask_one.sum()), two: int(mask_two.sum())}

    # Its own undo: a negative point, then Undo, leave object 1 alone.
    page.mouse.click(*to_page(page, SAND), button="right")
    wait_results(page, start + 3)
    assert len(surface(page, "() => window.sandseg.ui.prompts")) == 2
    page.click("#undo-button")
    wait_results(page, start + 4)
    assert [p["label"] for p in surface(page, "() => window.sandseg.ui.prompts")] == [1]
    mask_two = choose_largest(page, masks_of(surface(page, LAST_RESULT)))
    page.locator(f".object-row[data-id='{one}'] .object-select").check()
    prompts = surface(page, "() => window.sandseg.ui.prompts")
    assert len(prompts) == 1 and abs(prompts[0]["x"] - BLACK_DOG[0]) < 1.5
    assert objects(page)[0]["area"] == int(mask_one.sum())

    # Both drawn at once, each in its colour; a new colour and a rename from the list.
    check_drawn(page, {one: mask_one, two: mask_two})
    page.locator(f".object-row[data-id='{one}'] .object-colour").fill("#00ff00")
    name = page.locator(f".object-row[data-id='{one}'] .object-name")
    name.fill("black dog")
    name.press("Enter")
    assert [o["name"] for o in objects(page)] == ["black dog", "Object 2"]
    assert colours(page)[one] == "#00ff00"
    check_drawn(page, {one: mask_one, two: mask_two})
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # Hidden: not drawn, still listed.
    page.locator(f".object-row[data-id='{one}'] .object-hide").check()
    check_drawn(page, {two: mask_two}, hidden=(mask_one,))
    page.locator(f".object-row[data-id='{one}'] .object-hide").uncheck()

    # Delete one, then Undo brings it back as it was.
    before = objects(page)
    page.click(f".object-row[data-id='{two}'] .object-delete")
    assert [o["id"] for o in objects(page)] == [one]
    check_drawn(page, {one: mask_one}, hidden=(mask_two,))
    page.click("#undo-button")
    assert objects(page) == before
    check_drawn(page, {one: mask_one, two: mask_two})
    expect(page.locator("#error-banner")).to_be_hidden()


def fresh_objects(page: Any) -> list[tuple[int, str, np.ndarray]]:
    """Three objects made through window.sandseg (two share a name): [(id, name, mask)]."""
    for o in objects(page):
        surface(page, "(id) => window.sandseg.removeObject(id)", o["id"])
    made = []
    for name, point in (("dog", BLACK_DOG), ("dog", GOLDEN_DOG), ("sand", SAND)):
        oid, mask = predict_object(page, name, point)
        made.append((oid, name, mask))
    assert [o["id"] for o in objects(page)] == [m[0] for m in made]
    return made


def test_coco_label_png_and_import(page: Any, tmp_path: Path) -> None:
    made = fresh_objects(page)

    # COCO JSON: one image, a category per name, each annotation's RLE the object's mask.
    document = surface(page, "() => window.sandseg.exportCoco()")
    [image] = document["images"]
    assert (image["file_name"], image["width"], image["height"]) == ("dogs.jpg", WIDTH, HEIGHT)
    names = {c["id"]: c["name"] for c in document["categories"]}
    assert sorted(names.values()) == ["dog", "sand"]
    assert len(document["annotations"]) == len(made)
    for annotation, (_, name, mask) in zip(document["annotations"], made, strict=True):
        assert names[annotation["category_id"]] == name
        decoded = coco.decode(annotation["segmentation"])
        assert decoded.shape == (HEIGHT, WIDTH)
        assert np.array_equal(decoded, mask), (
            f"{name}: {int((decoded != mask).sum())} pixels differ"
        )
        assert annotation["area"] == int(mask.sum())

    # Polygons (1 px tolerance, stated in the document): pycocotools fills them back within
    # IoU 0.88 of each noise-like mask (sandseg.annotations' stated bound for these weights).
    polygons = surface(page, "() => window.sandseg.exportCoco({segmentation: 'polygon'})")
    assert polygons["info"]["polygon_tolerance"] == 1
    for annotation, (_, name, mask) in zip(polygons["annotations"], made, strict=True):
        filled = annotation_mask(annotation, HEIGHT, WIDTH)
        assert iou(filled, mask) >= 0.88, f"{name}: IoU {iou(filled, mask):.3f}"

    # The button downloads the same document.
    with page.expect_download() as info:
        page.click("#export-coco")
    assert info.value.suggested_filename == "dogs-coco.json"
    assert json.loads(Path(info.value.path()).read_text()) == document

    # The label PNG: 0 background, k where object k is (later objects over earlier ones).
    png = base64.b64decode(surface(page, "() => window.sandseg.exportLabelPng()"))
    with Image.open(io.BytesIO(png)) as label_image:
        assert label_image.format == "PNG" and label_image.size == (WIDTH, HEIGHT)
        labels = np.asarray(label_image)
    expected = np.zeros((HEIGHT, WIDTH), np.uint8)
    for k, (_, _, mask) in enumerate(made, start=1):
        expected[mask] = k
    assert np.array_equal(labels, expected)
    with page.expect_download() as info:
        page.click("#export-labels")
    assert info.value.suggested_filename == "dogs-labels.png"
    assert Path(info.value.path()).read_bytes() == png

    # Import round trip: the objects come back exactly (RLE), drawn and exported the same.
    for oid, _, _ in made:
        surface(page, "(id) => window.sandseg.removeObject(id)", oid)
    assert objects(page) == []
    imported = surface(page, "(doc) => window.sandseg.importCoco(doc)", document)["objects"]
    assert [(o["name"], o["area"]) for o in imported] == [(n, int(m.sum())) for _, n, m in made]
    again = surface(page, "() => window.sandseg.exportCoco()")
    segmentations = [a["segmentation"] for a in again["annotations"]]
    assert segmentations == [a["segmentation"] for a in document["annotations"]]
    ids = [o["id"] for o in imported]
    check_drawn(page, {oid: mask for oid, (_, _, mask) in zip(ids, made, strict=True)})

    # Undo right after the import brings back what was there (nothing, here).
    page.keyboard.press("z")
    assert objects(page) == []
    imported = surface(page, "(doc) => window.sandseg.importCoco(doc)", document)["objects"]

    # Refused imports change nothing and say why on the page.
    before = objects(page)
    other = {**document, "images": [{**image, "file_name": "cats.jpg"}]}
    bigger = {**document, "images": [{**image, "width": WIDTH + 1}]}
    for bad, words in ((other, "cats.jpg"), (bigger, "1073x603"), ({"images": 3}, "images")):
        with pytest.raises(Exception, match=words):
            surface(page, "(doc) => window.sandseg.importCoco(doc)", bad)
        expect(page.locator("#error-banner")).to_contain_text(words)
        page.click("#error-banner .dismiss")
        assert objects(page) == before
    page.set_input_files(
        "#import-coco-input",
        files=[{"name": "notes.json", "mimeType": "application/json", "buffer": b"{not json"}],
    )
    banner = page.locator("#error-banner")
    expect(banner).to_contain_text("Could not import notes.json")
    expect(banner).to_contain_text("not JSON")
    page.click("#error-banner .dismiss")
    assert objects(page) == before


def test_shortcuts_and_help(page: Any) -> None:
    page.locator("#marker-canvas").focus()
    # "?" opens the help, which lists the shortcuts; Escape closes it.
    page.keyboard.press("?")
    help_dialog = page.locator("#help-dialog")
    expect(help_dialog).to_be_visible()
    expect(help_dialog).to_contain_text("New object")
    expect(help_dialog).to_contain_text("Export all objects as COCO JSON")
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()

    count = len(objects(page))
    page.keyboard.press("n")
    assert len(objects(page)) == count + 1
    new = active_id(page)
    assert objects(page)[-1]["id"] == new
    # Keys typed into a name are the name's, not shortcuts.
    name = page.locator(f".object-row[data-id='{new}'] .object-name")
    name.fill("")
    name.type("n1z")
    name.press("Enter")
    assert len(objects(page)) == count + 1 and objects(page)[-1]["name"] == "n1z"
    page.locator("#marker-canvas").focus()

    prediction = surface(
        page, "(p) => window.sandseg.predict({points: [p], labels: [1]})", list(GOLDEN_DOG)
    )
    masks = masks_of(prediction)
    for key in "312":
        page.keyboard.press(key)
        assert surface(page, "() => window.sandseg.ui.selectedMask") == int(key) - 1
        assert objects(page)[-1]["area"] == int(masks[int(key) - 1].sum())
    page.keyboard.press("z")
    assert surface(page, "() => window.sandseg.ui.prompts") == []
    assert objects(page)[-1]["area"] == 0

    assert page.is_checked("#hover-toggle")
    page.keyboard.press("h")
    assert not page.is_checked("#hover-toggle")
    page.keyboard.press("h")
    assert page.is_checked("#hover-toggle")

    with page.expect_download() as info:
        page.keyboard.press("e")
    assert info.value.suggested_filename == "dogs-coco.json"

    page.keyboard.press("Delete")
    assert len(objects(page)) == count and new not in [o["id"] for o in objects(page)]
    assert surface(page, UNNAMED_CONTROLS) == []


def test_each_image_keeps_its_objects(page: Any) -> None:
    """Another photo starts with one implicit object; back on dogs.jpg (encoded again: a cache
    hit on the server) its objects are as they were, masks included."""
    if not any(o["area"] for o in objects(page)):
        predict_object(page, "dog", BLACK_DOG)
    before = objects(page)
    document = surface(page, "() => window.sandseg.exportCoco()")
    page.set_input_files("#file-input", str(PICTURE))
    expect(page.locator("#image-info")).to_contain_text("picture1.jpg")
    expect(page.locator("#stage")).to_have_attribute("data-image", "ready", timeout=ENCODE_MS)
    [implicit] = objects(page)
    assert implicit["area"] == 0 and implicit["id"] not in [o["id"] for o in before]
    page.set_input_files("#file-input", str(DOGS))
    expect(page.locator("#image-info")).to_contain_text("dogs.jpg")
    expect(page.locator("#stage")).to_have_attribute("data-image", "ready", timeout=ENCODE_MS)
    assert objects(page) == before
    assert surface(page, "() => window.sandseg.exportCoco()") == document


def test_set_image_through_the_surface_opens_it_with_its_objects(page: Any) -> None:
    """An outside tool's flow: setImage(url), addObject, predict, exportCoco. The page shows
    the image (no second encode), the prediction becomes the new object's mask, and the COCO
    export holds it."""
    info = surface(page, "(url) => window.sandseg.setImage(url)", "/samples/picture1.jpg")
    expect(page.locator("#image-info")).to_contain_text("picture1.jpg")
    expect(page.locator("#stage")).to_have_attribute("data-image", "ready")
    height, width = int(info["height"]), int(info["width"])
    created = surface(page, "(name) => window.sandseg.addObject(name)", "tool object")
    prediction = surface(
        page,
        "(p) => window.sandseg.predict({points: [p], labels: [1], multimask: false})",
        [width / 2, height / 2],
    )
    [mask] = masks_of(prediction)
    assert mask.any(), "the centre point's mask is empty"
    listed = {o["id"]: o for o in objects(page)}
    assert listed[created["id"]]["area"] == int(mask.sum())
    document = surface(page, "() => window.sandseg.exportCoco()")
    [image] = document["images"]
    assert (image["file_name"], image["width"], image["height"]) == ("picture1.jpg", width, height)
    names = {c["id"]: c["name"] for c in document["categories"]}
    [annotation] = [a for a in document["annotations"] if names[a["category_id"]] == "tool object"]
    assert np.array_equal(coco.decode(annotation["segmentation"]), mask)
