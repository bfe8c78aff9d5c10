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
from ..ops.conv import conv2d_class, conv2d_measure
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


# conv2d's blocked path (Cout / groups % 4 == 0): (H, W, Cin, Cout, kh, kw, stride, padding,
# groups) of patch_embed's two 3x3 convolutions and the neck's.
CONV2D_SHAPES = (
    (1024, 1024, 3, 32, 3, 3, 2, 1, 1),
    (512, 512, 32, 64, 3, 3, 2, 1, 1),
    (64, 64, 256, 256, 3, 3, 1, 1, 1),
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
    work: list[tuple[str, str, tuning.Measure]] = [
        ("matmul", shape_class, matmul_measure(device, m, k, n))
        for shape_class, (m, k, n) in sorted(_classes().items())
    ]
    for h, w, cin, cout, kh, kw, stride, padding, groups in CONV2D_SHAPES:
        ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
        geometry = (h, w, cin, cout, ho, wo, kh, kw, stride, padding, cin // groups, cout // groups)
        work.append(
            ("conv2d", conv2d_class(geometry, groups), conv2d_measure(device, geometry, groups))
        )
    table = tuning.table_for(device)
    choices = []
    for kernel, shape_class, measure in work:
        names = [v.name for v in variants.candidates(device, kernel)]
        key = f"{kernel}/{shape_class}"
        known = table.choices.get(key)
        if known is not None and known in names and not force:
            choices.append(Choice(kernel, shape_class, known, {}, False))
        elif len(names) == 1:
            choices.append(Choice(kernel, shape_class, names[0], {}, False))
        else:
            best = await tuning.tune(device, kernel, shape_class, names, measure)
            choices.append(Choice(kernel, shape_class, best, table.seconds[key], True))
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
