"""Tuning the kernels for the whole model ahead of time (`sandseg tune`, or the page at load).

The fast matmul's variants are chosen per adapter and shape class at first use (see
sandseg.gpu.tuning); `tune_model` makes every choice the model will need up front, so that
the first image pays no measurement and the browser (which cannot measure in the middle of a
forward pass) gets measured choices too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..gpu import Device, tuning
from ..ops import variants
from ..ops.linalg import matmul_measure

# (M, K, N) of every fast matmul one set_image + predict (one prompt) runs, as traced on the
# model (tests/model/test_tuning.py checks this list against a trace).
MATMUL_SHAPES = (
    # image encoder: patch_embed, layers.0 MBConv 1x1 convs, patch merging (65536 / 16384 /
    # 4096 pixels), TinyViT qkv / proj / MLP over windows and tokens, the neck's 1x1 conv
    (65536, 32, 4),
    (65536, 64, 128),
    (65536, 64, 256),
    (65536, 256, 64),
    (16384, 128, 128),
    (16384, 128, 160),
    (16384, 128, 512),
    (16384, 512, 128),
    (17689, 128, 128),
    (17689, 128, 384),
    (4096, 160, 160),
    (4096, 160, 320),
    (4096, 160, 640),
    (4096, 640, 160),
    (4900, 160, 160),
    (4900, 160, 480),
    (4900, 320, 320),
    (4900, 320, 960),
    (4096, 320, 320),
    (4096, 320, 1280),
    (4096, 1280, 320),
    (4096, 320, 256),
    # prompt encoder and mask decoder: 7 tokens, 4096 image tokens, hypernetwork MLPs
    (1, 256, 4),
    (1, 256, 32),
    (1, 256, 256),
    (7, 128, 256),
    (7, 256, 128),
    (7, 256, 256),
    (7, 256, 2048),
    (7, 2048, 256),
    (4096, 128, 256),
    (4096, 256, 128),
)


@dataclass(frozen=True)
class Choice:
    kernel: str
    shape_class: str
    variant: str
    seconds: dict[str, float]  # what each candidate measured; empty when remembered
    measured: bool


async def tune_model(device: Device, force: bool = False) -> list[Choice]:
    """Choose the variant of every kernel the model runs, measuring what the table lacks (or
    everything, with `force`), and persist the table."""
    table = tuning.table_for(device)
    names = [v.name for v in variants.candidates(device, "matmul")]
    choices = []
    for shape_class, (m, k, n) in sorted(_classes().items()):
        key = f"matmul/{shape_class}"
        known = table.choices.get(key)
        if known is not None and known in names and not force:
            choices.append(Choice("matmul", shape_class, known, {}, False))
            continue
        measure = matmul_measure(device, m, k, n)
        best = await tuning.tune(device, "matmul", shape_class, names, measure)
        choices.append(Choice("matmul", shape_class, best, table.seconds[key], True))
    return choices


def _classes() -> dict[str, tuple[int, int, int]]:
    """One product per shape class (the largest, which the measurement caps anyway)."""
    classes: dict[str, tuple[int, int, int]] = {}
    for m, k, n in MATMUL_SHAPES:
        shape_class = variants.matmul_class(m, k, n)
        if shape_class not in classes or m > classes[shape_class][0]:
            classes[shape_class] = (m, k, n)
    return classes


def timed_tune_model(device: Device, force: bool = False) -> tuple[list[Choice], float]:
    """Natively: tune_model run to its end now, and the seconds it took."""
    started = time.perf_counter()
    choices = tuning.run_now(tune_model(device, force))
    return choices, time.perf_counter() - started
