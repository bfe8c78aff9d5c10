"""The prompt of one predict, as web/client.js builds it and worker.js forwards it (a JS
object): read and checked here, once. The numbers are checked against the image by the
predictor (Prompt.check), as for every other caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyodide.ffi import jsnull

from ..inputs import InputError, Prompt

# The fields client.js sends, and nothing else.
FIELDS = ("points", "labels", "box", "maskInput", "multimask", "preview")


@dataclass(frozen=True)
class PagePrompt:
    """points: [[x, y], ...] with labels [1 | 0, ...]; box: [x0, y0, x1, y1]; in
    original-image pixels. mask_input "previous": refine with the best mask of the last kept
    prediction. preview: a hover preview, whose result is not kept."""

    points: list[Any] | None = None
    labels: list[Any] | None = None
    box: list[Any] | None = None
    mask_input: str | None = None
    multimask: bool = True
    preview: bool = False

    @classmethod
    def from_js(cls, value: Any) -> PagePrompt:
        """value: the JS object (a JsProxy in Pyodide) or a dict with (some of) the FIELDS;
        null and absent are the same."""
        data = value.to_py() if hasattr(value, "to_py") else value
        if not isinstance(data, dict):
            raise InputError(f"a prompt is an object with the fields {', '.join(FIELDS)}")
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise InputError(f"unknown prompt fields {unknown}; the fields are {', '.join(FIELDS)}")
        get = {k: None if v is jsnull else v for k, v in data.items()}.get
        mask_input = get("maskInput")
        if mask_input not in (None, "previous"):
            raise InputError(f'maskInput must be "previous" or null, got {mask_input!r}')
        multimask, preview = get("multimask"), get("preview")
        return cls(
            points=_list(get("points"), "points") or None,
            labels=_list(get("labels"), "labels") or None,
            box=_list(get("box"), "box"),
            mask_input=mask_input,
            multimask=True if multimask is None else bool(multimask),
            preview=bool(preview),
        )

    def resolve(self, previous: bytes | None) -> Prompt:
        """The prompt to decode; `previous`: the low-res mask "previous" refers to."""
        mask = None
        if self.mask_input is not None:
            if previous is None:
                raise InputError('maskInput "previous" needs an earlier prediction on this image')
            mask = previous
        return Prompt.of(self.points, self.labels, self.box, mask, self.multimask)


def _list(value: Any, name: str) -> list[Any] | None:
    if value is not None and not isinstance(value, list):
        raise InputError(f"{name} must be a list or null, got {value!r}")
    return value
