"""sandseg.browser.annotations natively, over stand-ins for Pyodide's `js` and `pyodide.ffi`:
the page's request read into plain values, COCO JSON out and back in (exact), the label PNG,
and refusals that name what is wrong (a mask of the wrong size, another image's document)."""

from __future__ import annotations

import importlib
import io
import json
import sys
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sandseg.predictor import InputError

WIDTH, HEIGHT = 7, 5


@pytest.fixture
def annotations(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    js = ModuleType("js")
    js.Object = SimpleNamespace(fromEntries=dict)  # type: ignore[attr-defined]
    ffi = ModuleType("pyodide.ffi")
    ffi.to_js = lambda value, **_: value  # type: ignore[attr-defined]
    ffi.jsnull = object()  # type: ignore[attr-defined]
    pyodide = ModuleType("pyodide")
    pyodide.ffi = ffi  # type: ignore[attr-defined]
    for name, module in {"js": js, "pyodide": pyodide, "pyodide.ffi": ffi}.items():
        monkeypatch.setitem(sys.modules, name, module)
    names = ("sandseg.browser.annotations", "sandseg.browser.marshal", "sandseg.browser")
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield importlib.import_module("sandseg.browser.annotations")
    for name in names:
        sys.modules.pop(name, None)
    vars(sys.modules["sandseg"]).pop("browser", None)


class JsBytes:
    """A Uint8Array as Pyodide shows it: to_bytes()."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def to_bytes(self) -> bytes:
        return self.data


def masks() -> list[np.ndarray]:
    a = np.zeros((HEIGHT, WIDTH), np.uint8)
    a[1:4, 1:3] = 1
    b = np.zeros((HEIGHT, WIDTH), np.uint8)
    b[2:5, 2:6] = 1
    b[3, 4] = 0  # a hole
    return [a, b]


def request(objects: list[tuple[str, np.ndarray, Any]]) -> SimpleNamespace:
    items = [SimpleNamespace(name=n, mask=JsBytes(m.tobytes()), iou=i) for n, m, i in objects]
    return SimpleNamespace(fileName="dogs.jpg", width=WIDTH, height=HEIGHT, objects=items)


def test_coco_round_trip_is_exact(annotations: Any) -> None:
    a, b = masks()
    jsnull = sys.modules["pyodide.ffi"].jsnull  # type: ignore[attr-defined]
    text = annotations.coco_json(request([("dog", a, 0.75), ("sand", b, jsnull)]))
    document = json.loads(text)
    assert [c["name"] for c in document["categories"]] == ["dog", "sand"]
    assert document["annotations"][0]["score"] == 0.75
    assert "score" not in document["annotations"][1] or document["annotations"][1]["score"] is None
    back = annotations.read_coco(text, WIDTH, HEIGHT, "dogs.jpg")
    assert [o["name"] for o in back] == ["dog", "sand"]
    for got, mask in zip(back, (a, b), strict=True):
        assert bytes(got["mask"]) == mask.tobytes()


def test_label_png(annotations: Any) -> None:
    a, b = masks()
    png = annotations.label_image(request([("dog", a, None), ("sand", b, None)]))
    with Image.open(io.BytesIO(bytes(png))) as image:
        labels = np.asarray(image)
    expected = np.where(b == 1, 2, np.where(a == 1, 1, 0))
    assert np.array_equal(labels, expected)


def test_refusals_name_what_is_wrong(annotations: Any) -> None:
    a, _ = masks()
    with pytest.raises(InputError, match=r"object 1 \(dog\) has a 34-byte mask"):
        annotations.coco_json(request([("dog", a.ravel()[:-1], None)]))
    text = annotations.coco_json(request([("dog", a, None)]))
    with pytest.raises(InputError, match=r"is for 'dogs\.jpg', not the open image 'cats\.jpg'"):
        annotations.read_coco(text, WIDTH, HEIGHT, "cats.jpg")
    with pytest.raises(InputError, match="not JSON"):
        annotations.read_coco("{nope", WIDTH, HEIGHT, "dogs.jpg")
    with pytest.raises(InputError, match="7x5"):
        annotations.read_coco(text, WIDTH + 1, HEIGHT, "dogs.jpg")
