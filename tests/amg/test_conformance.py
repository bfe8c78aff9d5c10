"""The generator against the official SamAutomaticMaskGenerator on picture1 (seed-1234
weights): config A (no de-duplication, 45 masks) and B (a crop layer and NMS, 1 mask)."""

from __future__ import annotations

import pytest

from sandseg import AutomaticMaskGenerator

from .conformance import assert_conforms
from .conftest import load_case


@pytest.mark.slow
@pytest.mark.parametrize("name", ["A", "B"])
def test_generator_matches_the_official_one(predictor, picture1, name):
    case = load_case(name)
    generator = AutomaticMaskGenerator(predictor, **case["config"])
    calls: list[tuple[int, int]] = []
    records = generator.generate(picture1, progress=lambda done, total: calls.append((done, total)))
    total = len(calls) and calls[-1][1]
    assert calls == [(i + 1, total) for i in range(total)], calls
    assert total == (1 if name == "A" else 5)  # 64 prompts per crop, one batch each
    worst = assert_conforms(records, case)
    print(f"config {name}: {worst}")
