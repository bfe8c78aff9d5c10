"""Which adapter a Ray replica takes (sandseg.scale.adapters): without Ray or a GPU, adapters
as wgpu-py describes them on the machines a replica meets; then live, two wgpu replicas on the
session's Ray each report the adapter they took."""

from __future__ import annotations

import time

import httpx2 as httpx
import pytest

from sandseg.inputs import InputError
from sandseg.scale.adapters import choose_adapter

from .conftest import deployed, free_port
from .helpers import REQUEST_S


def adapter(device: str, kind: str, backend: str = "Vulkan") -> dict[str, str]:
    return {"device": device, "adapter_type": kind, "backend_type": backend}


# This machine's kind (no GPU): lavapipe on Vulkan, and its OpenGL twin, which wgpu also lists.
LAVAPIPE = [adapter("llvmpipe", "CPU"), adapter("llvmpipe", "CPU", "OpenGL")]
# Two GPUs, their OpenGL twins, and lavapipe, in an order wgpu may give them.
TWO_GPUS = [
    adapter("llvmpipe", "CPU"),
    adapter("NVIDIA H100 #0", "DiscreteGPU"),
    adapter("NVIDIA H100 #0", "DiscreteGPU", "OpenGL"),
    adapter("Intel UHD", "IntegratedGPU"),
    adapter("NVIDIA H100 #1", "DiscreteGPU"),
]


@pytest.mark.parametrize("rank", [0, 1, 2, 5])
def test_without_a_gpu_every_rank_takes_lavapipe_on_vulkan(rank: int) -> None:
    choice = choose_adapter(LAVAPIPE, rank, [])
    assert choice.index == 0
    assert choice.reason == f"rank {rank} modulo 1 CPU adapter(s)"


def test_ranks_take_the_gpus_in_turn_and_never_a_cpu_or_opengl_adapter() -> None:
    taken = [choose_adapter(TWO_GPUS, rank, []).index for rank in range(5)]
    assert taken == [1, 3, 4, 1, 3]


@pytest.mark.parametrize(("gpu_id", "index"), [("0", 1), ("1", 3), (2, 4)])
def test_a_ray_gpu_id_takes_that_gpu_whatever_the_rank(gpu_id, index: int) -> None:
    for rank in (0, 3):
        choice = choose_adapter(TWO_GPUS, rank, [gpu_id, "9"])
        assert choice.index == index
        assert choice.reason == f"Ray GPU id {gpu_id} of 3 GPU adapters"


def test_a_gpu_id_past_the_adapters_names_what_vulkan_sees() -> None:
    with pytest.raises(InputError) as raised:
        choose_adapter(TWO_GPUS, 0, ["3"])
    message = str(raised.value)
    assert "GPU id 3" in message and "finds 3 GPU adapter(s)" in message
    assert "NVIDIA H100 #1 (Vulkan)" in message and "--num-gpus" in message


def test_a_gpu_id_where_vulkan_sees_no_gpu_says_to_install_the_driver() -> None:
    with pytest.raises(InputError, match=r"GPU id 0, but wgpu finds 0 GPU.*Vulkan driver"):
        choose_adapter(LAVAPIPE, 0, [0])


def test_only_opengl_adapters_are_refused_naming_them() -> None:
    with pytest.raises(InputError, match=r"no Vulkan, Metal or D3D12 adapter \(llvmpipe \(OpenGL"):
        choose_adapter(LAVAPIPE[1:], 0, [])
    with pytest.raises(InputError, match=r"\(none\).*--runtime onnxruntime"):
        choose_adapter([], 0, [])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray 2.60 on pydantic 2
def test_each_wgpu_replica_reports_the_adapter_it_took(ray_cluster, replica_config) -> None:
    import wgpu

    infos = [adapter.info for adapter in wgpu.gpu.enumerate_adapters_sync()]
    expected = []
    for rank in (0, 1):
        choice = choose_adapter(infos, rank, [])
        info = infos[choice.index]
        expected.append(
            {
                "index": choice.index,
                "device": info["device"],
                "type": info["adapter_type"],
                "backend": info["backend_type"],
                "reason": choice.reason,
            }
        )
    port = free_port()
    # The WGSL model on this machine's adapter; no start-up profile (30 s more on lavapipe).
    config = replica_config(port, runtime="wgpu", replicas=2, profile_repeat=0)
    reports: dict[str, object] = {}
    with deployed(ray_cluster, config, port) as url, httpx.Client(base_url=url) as client:
        deadline = time.monotonic() + REQUEST_S
        while len(reports) < 2 and time.monotonic() < deadline:
            replicas = client.get("/api/v1/model", timeout=REQUEST_S).json()["replicas"]
            reports[replicas["this"]] = replicas["adapter"]
    assert len(reports) == 2, f"one replica answered every request: {reports}"
    assert sorted(reports.values(), key=lambda r: r["reason"]) == expected
