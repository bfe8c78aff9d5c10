"""Regenerate tests/data/safetensors_bad/: one small malformed file per error class (ST-2).

Run from the repository root: `.venv/bin/python tests/weights/make_bad_safetensors.py`.
The output is deterministic; a test checks that the committed files match it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parents[1] / "data" / "safetensors_bad"


def _file(header: object, data: bytes = b"", *, length: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def _entry(dtype: object, shape: object, begin: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


_U8_4 = _entry("U8", [4], 0, 4)

# name -> (file bytes, a fragment that the error message, and only this class's, contains)
CASES: dict[str, tuple[bytes, str]] = {
    "too_small": (b"\x08\x00\x00", "smaller than the 8-byte"),
    "header_over_cap": (struct.pack("<Q", 100_000_001) + b"{}", "exceeds the cap"),
    "header_length_2pow63": (struct.pack("<Q", 2**63) + b"{}", "exceeds the cap"),
    "header_length_2pow64m1": (struct.pack("<Q", 2**64 - 1) + b"{}", "exceeds the cap"),
    "header_beyond_file": (_file(b"{}", length=64), "beyond the end of the file"),
    "header_not_utf8": (_file(b'{"\xff": 1}'), "not valid UTF-8"),
    "header_not_json": (_file(b'{"a": '), "not valid JSON"),
    "header_nan": (_file(b'{"a": NaN}'), "not valid JSON (NaN is not a JSON value)"),
    "header_not_object": (_file(b"[1, 2]"), "header JSON is an array"),
    "entry_not_object": (_file({"a": 5}), "entry for tensor 'a' is a number"),
    "duplicate_key": (
        _file(b'{"a": {}, "a": {}}'),
        "duplicate key 'a'",
    ),
    "duplicate_field": (
        _file(b'{"a": {"dtype": "U8", "dtype": "U8", "shape": [], "data_offsets": [0, 1]}}'),
        "duplicate key 'dtype'",
    ),
    "metadata_not_string": (_file({"__metadata__": {"k": 1}}), "is a number, not a string"),
    "metadata_not_object": (_file({"__metadata__": ["k"]}), "must be an object of strings"),
    "missing_field": (_file({"a": {"dtype": "U8", "shape": [0]}}), "missing field(s)"),
    "extra_field": (_file({"a": {**_U8_4, "x": 1}}, b"abcd"), "unknown field(s) ['x']"),
    "unknown_dtype": (_file({"a": _entry("F128", [1], 0, 16)}, bytes(16)), "unknown dtype"),
    "shape_negative": (_file({"a": _entry("U8", [-1], 0, 0)}), "bad shape [-1]"),
    "shape_float": (_file({"a": _entry("U8", [1.0], 0, 1)}, b"a"), "bad shape [1.0]"),
    "shape_bool": (_file({"a": _entry("U8", [True], 0, 1)}, b"a"), "bad shape [True]"),
    "offsets_malformed": (
        _file({"a": {"dtype": "U8", "shape": [0], "data_offsets": [0]}}),
        "bad data_offsets",
    ),
    "offsets_reversed": (_file({"a": _entry("U8", [4], 4, 0)}, b"abcd"), "reversed"),
    "size_mismatch": (
        _file({"a": _entry("F32", [2], 0, 4)}, b"abcd"),
        "does not match dtype x shape",
    ),
    "offsets_not_from_zero": (
        _file({"a": _entry("U8", [4], 4, 8)}, b"abcdefgh"),
        "do not start at 0",
    ),
    "offsets_gap": (
        _file({"a": _U8_4, "b": _entry("U8", [4], 6, 10)}, bytes(10)),
        "gap of 2 bytes",
    ),
    "offsets_overlap": (
        _file({"a": _U8_4, "b": _entry("U8", [4], 2, 6)}, bytes(6)),
        "overlaps the previous tensor",
    ),
    "trailing_bytes": (_file({"a": _U8_4}, bytes(6)), "2 trailing bytes"),
    "data_truncated": (
        _file({"a": _entry("U8", [8], 0, 8)}, bytes(4)),
        "data section is truncated",
    ),
}


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in OUT_DIR.glob("*.safetensors"):
        stale.unlink()
    for name, (data, _) in CASES.items():
        (OUT_DIR / f"{name}.safetensors").write_bytes(data)
    print(f"wrote {len(CASES)} files to {OUT_DIR}")


if __name__ == "__main__":
    main()
