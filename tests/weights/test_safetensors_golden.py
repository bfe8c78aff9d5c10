"""ST-2: every golden bad file is rejected with its own message, by both entry points."""

from __future__ import annotations

import pytest

from sandseg.weights import SafetensorsError, SafetensorsReader, load_safetensors

from .make_bad_safetensors import CASES, OUT_DIR


def test_committed_files_match_the_generator() -> None:
    committed = {path.stem: path.read_bytes() for path in OUT_DIR.glob("*.safetensors")}
    assert committed == {name: data for name, (data, _) in CASES.items()}, (
        "golden files are stale: run .venv/bin/python tests/weights/make_bad_safetensors.py"
    )


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.requirement("ST-2")
def test_golden_file_is_rejected_in_memory(name: str) -> None:
    fragment = CASES[name][1]
    with pytest.raises(SafetensorsError) as info:
        load_safetensors((OUT_DIR / f"{name}.safetensors").read_bytes())
    message = str(info.value)
    assert fragment in message
    # Distinct classes give distinct messages: no other class's fragment appears (a
    # sub-class such as NaN may extend its class's fragment).
    others = {other for _, other in CASES.values() if other not in fragment}
    assert not [other for other in others if other in message], message


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.requirement("ST-2")
def test_golden_file_is_rejected_from_disk(name: str) -> None:
    with pytest.raises(SafetensorsError, match="safetensors: ") as info:
        SafetensorsReader(OUT_DIR / f"{name}.safetensors")
    assert CASES[name][1] in str(info.value)


@pytest.mark.requirement("ST-2")
def test_every_required_class_has_a_golden_file() -> None:
    required = {
        "too_small", "header_over_cap", "header_beyond_file", "header_not_utf8",
        "header_not_json", "offsets_overlap", "offsets_gap", "offsets_reversed",
        "offsets_not_from_zero", "trailing_bytes", "size_mismatch", "unknown_dtype",
        "duplicate_key", "metadata_not_string",
    }  # fmt: skip
    assert required <= CASES.keys()
