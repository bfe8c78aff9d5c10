"""The server's runtimes side by side (`sandseg bench model`): what `sandseg serve --runtime
auto` measures per part on every available runtime, and whole images and clicks timed on each
runtime alone and on auto's per-part choice, in the same run.

Server seconds per image: pre-processing + every encoder stage (what POST /api/v1/images
computes); per click: prompt encoder + mask decoder + upscaling to the image + threshold.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..inputs import Prompt
from ..server.engine import Engine, RuntimePlan

# Per-click medians take at least this many runs, as the rest of `bench model` does.
MIN_DECODER_RUNS = 5


def runtimes_side_by_side(
    weights: str | Path,
    pixels: np.ndarray,
    point: tuple[float, float],
    repeat: int,
    progress: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Print and return every runtime's (and auto's) seconds per image and per click."""
    engine = Engine(Path(weights), runtime="auto", progress=progress)
    try:
        progress(f"measuring {', '.join(engine.runtimes)} per part, as serve --runtime auto")
        engine.profile = engine.measure(repeat)
        stages = [s.name for s in engine.stages]
        plans = {
            name: RuntimePlan.everything_on(name, f"--runtime {name}", stages)
            for name in engine.runtimes
        }
        plans["auto"] = engine.plan
        times = {}
        for label, plan in plans.items():
            progress(f"timing whole images and clicks on {label}")
            engine.plan = plan
            times[label] = engine.call(_time_image_and_click, engine, label, pixels, point, repeat)
        engine.plan = plans["auto"]
    finally:
        engine.close()
    measured = {name: vars(p) for name, p in engine.runtime_profiles.items()}
    _print(engine, times)
    return {
        "runtimes": {name: runtime.detail for name, runtime in engine.runtimes.items()},
        "auto_plan": plans["auto"].parts,
        "auto_reason": plans["auto"].reason,
        "measured_per_part": measured,
        "per_image_and_click": times,
    }


def _time_image_and_click(
    engine: Engine, label: str, pixels: np.ndarray, point: tuple[float, float], repeat: int
) -> dict[str, float]:
    never = threading.Event()
    image_s, state = [], None
    for i in range(repeat + 1):  # the first warms up
        start = time.perf_counter()
        state = engine.embed_image(f"bench-{label}-{i}", pixels, never)
        image_s.append(time.perf_counter() - start)
    assert state is not None
    prompt = Prompt.of([point], [1])
    click_s = []
    for _ in range(max(repeat, MIN_DECODER_RUNS) + 1):
        start = time.perf_counter()
        engine.predict(state, prompt)
        click_s.append(time.perf_counter() - start)
    return {
        "image_s": statistics.median(image_s[1:]),
        "click_s": statistics.median(click_s[1:]),
    }


def _print(engine: Engine, times: dict[str, dict[str, float]]) -> None:
    labels = list(times)
    profiles = engine.runtime_profiles
    print("\nserver runtimes side by side (median seconds; auto: the fastest runtime per part)")
    print(f"{'part':<22}" + "".join(f"{label:>13}" for label in labels) + "  auto runs on")
    print("-" * (22 + 13 * len(labels) + 14))
    parts = [("preprocess", "preprocess"), *((s.name, s.name) for s in engine.stages)]
    for name, part in [*parts, ("decode", "decode")]:
        cells = []
        for label in labels:
            profile = profiles[engine.plan.parts[part] if label == "auto" else label]
            if part == "preprocess":
                cells.append(profile.preprocess_s)
            else:
                cells.append(profile.decode_s if part == "decode" else profile.stage_s[part])
        row = "".join(f"{seconds:>13.3f}" for seconds in cells)
        print(f"{name:<22}{row}  {engine.plan.parts[part]}")
    for key, title in (("image_s", "server s per image"), ("click_s", "server s per click")):
        row = "".join(f"{times[label][key]:>13.3f}" for label in labels)
        print(f"{title:<22}{row}")
    if "wgpu" in times and "auto" in times:
        ratio = times["wgpu"]["image_s"] / times["auto"]["image_s"]
        print(f"auto is {ratio:.1f}x faster per image than wgpu alone")
