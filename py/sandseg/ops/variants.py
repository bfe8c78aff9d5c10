"""Kernel variants: for one op, the kernels that compute the same thing in different ways.

Which is fastest depends on the adapter (CPU adapters punish workgroup barriers that GPUs
reward), so the op asks `sandseg.gpu.tuning.choose`, which measures the candidates once per
adapter and shape class. Every variant of an op shares its bindings and `struct Params`, so
the op packs parameters once and only the kernel, its constants and its grid differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..gpu import Device

# WebGPU names the feature "subgroups", wgpu-native "subgroup".
SUBGROUP_FEATURES = frozenset({"subgroups", "subgroup"})


@dataclass(frozen=True)
class Variant:
    name: str  # what SANDSEG_KERNELS and the tuning table call it
    kernel: str  # the WGSL file
    rows: int  # rows of the output one workgroup computes
    cols: int  # columns of the output one workgroup computes
    constants: Mapping[str, int] = field(default_factory=dict)
    features: frozenset[str] = frozenset()  # needs one of these optional features

    def runs_on(self, device: Device) -> bool:
        return not self.features or bool(self.features & device.features)


def _tiled(name: str, wg_x: int, wg_y: int, tm: int, tn4: int, bk: int = 16) -> Variant:
    # The limits matmul_tiled.wgsl's fixed workgroup arrays allow (see its header).
    assert tm <= 8 and tn4 <= 2 and bk % 4 == 0
    assert wg_y * tm * bk <= 2048 and bk * wg_x * tn4 <= 512
    constants = {"WG_X": wg_x, "WG_Y": wg_y, "TM": tm, "TN4": tn4, "BK": bk}
    return Variant(name, "matmul_tiled", wg_y * tm, 4 * wg_x * tn4, constants)


# The first candidate is the default where nothing was measured (the browser before tuning):
# the kernel every CPU adapter we test on does best with.
MATMUL = (
    Variant("blocked", "matmul", 8 * 4, 16 * 16, {"WG_X": 16, "WG_Y": 4}),
    Variant("blocked8x8", "matmul", 8 * 8, 16 * 8, {"WG_X": 8, "WG_Y": 8}),
    _tiled("tiled64", 16, 16, 4, 1),  # 64x64 tiles, 4x4 outputs per invocation
    _tiled("tiled128x64", 8, 16, 8, 2),  # 128x64 tiles, 8x8 outputs per invocation
    Variant("subgroup", "matmul_subgroup", 8 * 64, 16, {"WG": 64}, SUBGROUP_FEATURES),
    Variant("subgroup8", "matmul_subgroup", 8 * 8, 16, {"WG": 8}, SUBGROUP_FEATURES),
)

# conv2d's blocked path (Cout / groups % 4 == 0); rows and cols: 8 pixels x 16 channels per
# invocation, grouped per workgroup as each kernel's header says.
CONV2D = (
    Variant("blocked", "conv2d", 8, 16),
    Variant("subgroup", "conv2d_subgroup", 8, 16, {}, SUBGROUP_FEATURES),
)

VARIANTS: dict[str, tuple[Variant, ...]] = {"matmul": MATMUL, "conv2d": CONV2D}


def candidates(device: Device, op: str) -> tuple[Variant, ...]:
    """The variants of `op` this device can run, the default first."""
    return tuple(v for v in VARIANTS[op] if v.runs_on(device))


def variant(op: str, name: str) -> Variant:
    for v in VARIANTS[op]:
        if v.name == name:
            return v
    raise KeyError(f"{op} has no variant {name!r}; it has {[v.name for v in VARIANTS[op]]}")


def matmul_class(m: int, k: int, n: int) -> str:
    """Products that share K and N and whose M rounds up to the same power of two (at most
    4096: beyond, every variant's grid is many workgroups tall) favour the same variant."""
    return f"m{min(1 << max(m - 1, 0).bit_length(), 4096)}_k{k}_n{n}"
