"""`sandseg bench kernels` and `sandseg bench model` at their smallest settings, as users run
them: they print their table and write JSON of the documented structure, with positive
numbers. (What the numbers are is the benchmark's business, not a test's.)"""

from __future__ import annotations

import json
import math

import pytest

from sandseg.cli import main
from tests.conftest import CONFORMANCE


def positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_bench_kernels_prints_a_table_and_writes_json(gpu_device, tmp_path, capsys) -> None:
    out = tmp_path / "kernels.json"
    args = ["bench", "kernels", "--repeat", "1", "--only", "elementwise", "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "ratio = sandseg / numpy" in printed and "elementwise" in printed
    doc = json.loads(out.read_text())
    assert doc["adapter"] == gpu_device.adapter_name and doc["repeat"] == 1
    assert len(doc["results"]) == 2  # add and scale_shift
    for row in doc["results"]:
        assert row["kernel"] == "elementwise" and row["unit"] == "GB/s" and row["shape"]
        for key in ("sandseg", "numpy", "ratio", "sandseg_ms", "numpy_ms"):
            assert positive(row[key]), (key, row)
        assert row["ratio"] == pytest.approx(row["sandseg"] / row["numpy"])


@pytest.mark.slow
def test_bench_model_prints_a_table_and_writes_json(
    gpu_device, converted_weights, tmp_path, capsys, monkeypatch
) -> None:
    # The wgpu runtime alone: the onnxruntime side by side has its own tests (tests/runtime).
    monkeypatch.setattr("sandseg.bench.model.available_runtimes", lambda: ["wgpu"])
    out = tmp_path / "model.json"
    image = CONFORMANCE.parent / "images" / "picture1.jpg"
    args = ["bench", "model", "--weights", str(converted_weights), "--image", str(image)]
    assert main([*args, "--repeat", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "encoder (set_image)" in printed and "best matmul kernel in this run" in printed
    doc = json.loads(out.read_text())
    assert doc["adapter"] == gpu_device.adapter_name and doc["image"] == "picture1.jpg"
    assert doc["repeat"] == 1
    parts = [row["part"] for row in doc["rows"]]
    assert parts[0] == "encoder patch_embed" and parts[-2:] == [
        "encoder (set_image)",
        "decoder (predict, 1 point, 3 masks)",
    ]
    for row in doc["rows"]:
        assert all(positive(row[key]) for key in ("ms", "gflop", "gflops")), row
        assert row["gflops"] == pytest.approx(row["gflop"] / (row["ms"] / 1e3))
    for key in ("best_matmul_gflops", "encoder_ms", "decoder_ms"):
        assert positive(doc[key]), key
    assert doc["browser"] is None and doc["onnx"] is None and doc["runtimes"] is None
