"""Which wgpu adapter a Ray Serve replica takes: a pure function of what wgpu enumerates, the
replica's rank and the GPU ids Ray gave it (so that it is tested without Ray or a GPU).

Vulkan ignores CUDA_VISIBLE_DEVICES, so Ray's GPU ids cannot pick the device by themselves: a
replica that Ray gave GPU id g takes the g-th GPU adapter (discrete or integrated, in wgpu's
order); a replica without GPU ids, of rank r, takes candidate r modulo their number (the GPU
adapters, or where there is none the CPU ones: lavapipe). Only the backends the WGSL model is
run on count (Vulkan, Metal, D3D12): wgpu also lists an OpenGL twin of each device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..inputs import InputError

NATIVE_BACKENDS = ("Vulkan", "Metal", "D3D12")
GPU_TYPES = ("DiscreteGPU", "IntegratedGPU")


@dataclass(frozen=True)
class AdapterChoice:
    index: int  # into the adapters as wgpu enumerated them
    reason: str


def choose_adapter(
    infos: Sequence[Mapping[str, object]], rank: int, gpu_ids: Sequence[str | int]
) -> AdapterChoice:
    """`infos`: each adapter's `info` (adapter_type, backend_type, device), in wgpu's order;
    `gpu_ids`: `ray.get_gpu_ids()` (the first one counts). Raises InputError, saying what to
    do, when there is no adapter to take or Ray's GPU id has no adapter."""
    native = [i for i, info in enumerate(infos) if info.get("backend_type") in NATIVE_BACKENDS]
    gpus = [i for i in native if infos[i].get("adapter_type") in GPU_TYPES]
    if gpu_ids:
        gpu = int(gpu_ids[0])
        if not 0 <= gpu < len(gpus):
            raise InputError(
                f"Ray gave this replica GPU id {gpu}, but wgpu finds {len(gpus)} GPU "
                f"adapter(s) on this node ({_names(infos, native)}): give Ray no more GPUs "
                "than Vulkan sees (`ray start --num-gpus N`), or install the GPU's Vulkan driver"
            )
        return AdapterChoice(gpus[gpu], f"Ray GPU id {gpu} of {len(gpus)} GPU adapters")
    candidates = gpus or native
    if not candidates:
        raise InputError(
            f"wgpu finds no Vulkan, Metal or D3D12 adapter ({_names(infos, range(len(infos)))})"
            ": install the GPU's Vulkan driver (Debian, no GPU: mesa-vulkan-drivers, lavapipe) "
            "or serve with --runtime onnxruntime"
        )
    kind = "GPU" if gpus else "CPU"
    index = candidates[rank % len(candidates)]
    return AdapterChoice(index, f"rank {rank} modulo {len(candidates)} {kind} adapter(s)")


def _names(infos: Sequence[Mapping[str, object]], indices: Sequence[int]) -> str:
    shown = [f"{infos[i].get('device')} ({infos[i].get('backend_type')})" for i in indices]
    return ", ".join(shown) or "none"
