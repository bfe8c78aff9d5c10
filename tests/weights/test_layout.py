from __future__ import annotations

from sandseg.weights import mobile_sam_layout
from sandseg.weights.layout import attention_offset_count


def test_layout_equals_the_official_checkpoint_in_order(official_layout: list) -> None:
    layout = mobile_sam_layout()
    assert [(name, shape, dtype) for name, (shape, dtype) in layout.items()] == official_layout


def test_attention_bias_offsets_are_distinct_displacements() -> None:
    # For a square window every (|dr|, |dc|) pair with 0 <= d < window occurs.
    assert [attention_offset_count(w) for w in (1, 2, 7, 14)] == [1, 4, 49, 196]


def test_layout_is_a_fresh_copy() -> None:
    first = mobile_sam_layout()
    first.clear()
    assert len(mobile_sam_layout()) == 439
