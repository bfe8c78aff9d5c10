"""`sandseg bench gpu --quick`: the tuned and the register-blocked matmul next to numpy, as a
share of the adapter's fp32 peak where the peak table knows the adapter."""

from __future__ import annotations

import json

import pytest

from sandseg.bench.gpu import fp32_peak_gflops
from sandseg.cli import main
from tests.bench.test_bench_smoke import positive


@pytest.mark.parametrize(
    ("adapter", "gflops"),
    [
        ("NVIDIA H200 (Vulkan, DiscreteGPU)", 67_000),
        ("NVIDIA GeForce RTX 4090 (Vulkan, DiscreteGPU)", 82_600),
        ("Apple M2 (Metal, IntegratedGPU)", 3_600),
        ("Intel(R) Iris(R) Xe Graphics (D3D12, IntegratedGPU)", 2_070),
        ("llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, CPU)", None),
    ],
)
def test_fp32_peaks_by_adapter_name(adapter, gflops):
    assert fp32_peak_gflops(adapter) == (None if gflops is None else pytest.approx(gflops))


def test_bench_gpu_prints_a_table_and_writes_json(gpu_device, tmp_path, capsys) -> None:
    out = tmp_path / "gpu.json"
    assert main(["bench", "gpu", "--quick", "--repeat", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"adapter: {gpu_device.adapter_name}" in printed and "fp32 peak: " in printed
    doc = json.loads(out.read_text())
    assert doc["adapter"] == gpu_device.adapter_name and doc["repeat"] == 1
    assert [row["variant"] for row in doc["kernels"]] == ["tuned", "blocked"]
    for row in doc["kernels"]:
        assert row["kernel"] == "matmul" and "neck.0" in row["shape"]
        assert all(positive(row[key]) for key in ("gflops", "numpy_gflops", "ratio", "ms"))
        assert (row["peak_share"] is None) == (fp32_peak_gflops(doc["adapter"]) is None)
    assert doc["tuning_seconds"] >= 0 and len(doc["choices"]) == 32  # 29 matmul, 3 conv2d
