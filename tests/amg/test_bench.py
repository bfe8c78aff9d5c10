"""`sandseg bench everything` runs end to end at a tiny size and writes its JSON (the numbers
themselves are measurements, not test results)."""

from __future__ import annotations

import json

import pytest

from sandseg.cli import main

from .test_cli import PICTURE1


@pytest.mark.slow
def test_bench_everything_prints_a_table_and_writes_json(
    gpu_device, converted_weights, tmp_path, capsys
):
    out = tmp_path / "everything.json"
    argv = ["bench", "everything", "--weights", str(converted_weights), "--image", str(PICTURE1)]
    argv += ["--points-per-side", "2", "--batch", "2", "--repeat", "1", "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "batch of 2 recorded, one read" in printed
    assert "batched decoder, 2 prompts, one read" in printed
    doc = json.loads(out.read_text())
    assert len(doc["decoder"]) == 4 and doc["prompts"] == 2
    assert doc["batched_vs_one_at_a_time"] > 0
    assert all(row["prompts_per_s"] > 0 for row in doc["decoder"])
    assert doc["generator"]["points_per_side"] == 2 and doc["generator"]["seconds_per_image"] > 0
