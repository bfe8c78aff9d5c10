"""Kernel variants chosen by measurement (sandseg.gpu.tuning): measured once per adapter and
shape class, persisted under SANDSEG_HOME, reused on the next load, pinned by SANDSEG_KERNELS;
a broken or foreign table file is ignored with a warning."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from sandseg import ops
from sandseg.cli import main
from sandseg.gpu import tuning
from sandseg.model.tuning import CONV2D_SHAPES, MATMUL_SHAPES
from sandseg.ops import variants
from tests import reference
from tests.gpu_helpers import assert_close, from_gpu, to_gpu

SHAPE = (64, 16, 32)  # (M, K, N): one shape class, milliseconds to measure
CLASS = "matmul/" + variants.matmul_class(*SHAPE)


@pytest.fixture
def home(device, tmp_path, monkeypatch):
    """A fresh SANDSEG_HOME and no table in memory: what a first load sees."""
    monkeypatch.setenv("SANDSEG_HOME", str(tmp_path))
    monkeypatch.delenv("SANDSEG_KERNELS", raising=False)
    tuning.forget(device)
    yield tmp_path
    tuning.forget(device)  # later tests read the session's table again


def product(device, rng):
    """One fast matmul at SHAPE, checked against the reference; the dispatches it took."""
    m, k, n = SHAPE
    a, b = rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n))
    b = b.astype(np.float32)
    ga, gb = to_gpu(device, a), to_gpu(device, b)
    before = device.dispatch_count
    got = ops.matmul(ga, gb)
    dispatches = device.dispatch_count - before
    assert_close(from_gpu(got), reference.matmul(a, b), atol=1e-4)
    return dispatches


def test_the_table_is_measured_once_and_used_on_the_second_load(device, rng, home):
    offered = [v.name for v in variants.candidates(device, "matmul")]
    assert product(device, rng) > len(offered), "the first use measures every candidate"
    table = tuning.table_for(device)
    assert table.measurements == len(offered)
    chosen = table.choices[CLASS]
    assert table.seconds[CLASS][chosen] == min(table.seconds[CLASS].values())
    doc = json.loads(tuning.table_path(tuning.adapter_key(device)).read_text())
    assert doc["adapter"] == tuning.adapter_key(device) and doc["choices"][CLASS] == chosen
    # A new load (the table read from disk): the product alone, no timing dispatches.
    tuning.forget(device)
    assert product(device, rng) == 1
    assert tuning.table_for(device).measurements == 0
    assert tuning.table_for(device).choices[CLASS] == chosen


def test_a_corrupted_table_is_ignored_with_a_warning_and_rewritten(device, rng, home):
    path = tuning.table_path(tuning.adapter_key(device))
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"format": 1, "adapter": \xff truncated')
    with pytest.warns(tuning.TuningTableWarning, match="ignoring tuning table"):
        product(device, rng)
    assert tuning.table_for(device).measurements > 0
    assert CLASS in json.loads(path.read_text())["choices"]


def test_a_foreign_table_is_ignored_with_a_warning(device, rng, home):
    path = tuning.table_path(tuning.adapter_key(device))
    path.parent.mkdir(parents=True)
    foreign = {"format": 1, "adapter": "another GPU", "choices": {CLASS: "tiled64"}}
    path.write_text(json.dumps(foreign))
    with pytest.warns(tuning.TuningTableWarning, match="written for adapter 'another GPU'"):
        product(device, rng)
    assert tuning.table_for(device).measurements > 0


def test_a_pinned_variant_is_used_unmeasured(device, rng, home, monkeypatch):
    monkeypatch.setenv("SANDSEG_KERNELS", "attention=x, matmul=tiled128x64")
    assert product(device, rng) == 1
    assert tuning.table_for(device).measurements == 0
    monkeypatch.setenv("SANDSEG_KERNELS", "matmul=fastest")
    with pytest.raises(ValueError, match="pins matmul=fastest, but this adapter offers"):
        product(device, rng)


def test_pinning_pins_for_its_block_then_restores_what_was_set(monkeypatch):
    monkeypatch.setenv("SANDSEG_KERNELS", "attention=x")
    with tuning.pinning("blocked", ("matmul", "conv2d")):
        assert (tuning.pinned("matmul"), tuning.pinned("conv2d")) == ("blocked", "blocked")
        assert tuning.pinned("attention") is None
    assert os.environ["SANDSEG_KERNELS"] == "attention=x"
    with tuning.pinning(None, ("matmul",)):
        assert "SANDSEG_KERNELS" not in os.environ
    assert os.environ["SANDSEG_KERNELS"] == "attention=x"
    monkeypatch.delenv("SANDSEG_KERNELS")
    with pytest.raises(RuntimeError), tuning.pinning("tiled64", ("matmul",)):
        assert tuning.pinned("matmul") == "tiled64"
        raise RuntimeError("the block failed")
    assert "SANDSEG_KERNELS" not in os.environ


def test_a_candidate_that_keeps_losing_is_no_longer_timed(device, home):
    timed = []

    async def measure(name: str, bound: float) -> float:
        timed.append(name)
        return {"fast": 1.0, "slow": 10.0}[name]

    for i in range(tuning.STRIKES + 1):
        tuning.run_now(tuning.tune(device, "fake", f"c{i}", ["fast", "slow"], measure))
    assert timed == ["fast", "slow"] * tuning.STRIKES + ["fast"]


def test_sandseg_tune_fills_the_table_then_remembers_it(gpu_device, home, capsys, tmp_path):
    out = tmp_path / "tune.json"
    assert main(["tune", "--json", str(out)]) == 0
    classes = {variants.matmul_class(*s) for s in MATMUL_SHAPES}
    classes |= {f"conv:{i}" for i in range(len(CONV2D_SHAPES))}  # counted, not named here
    first = capsys.readouterr().out
    assert f"{len(classes)} of {len(classes)} shape classes measured in" in first, first
    doc = json.loads(out.read_text())
    assert len(doc["choices"]) == len(classes)
    assert {c["kernel"] for c in doc["choices"]} == {"matmul", "conv2d"}
    tuning.forget(gpu_device)
    assert main(["tune"]) == 0
    assert f"0 of {len(classes)} shape classes measured" in capsys.readouterr().out
