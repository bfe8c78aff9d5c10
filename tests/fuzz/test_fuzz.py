"""ST-4 and CV-2: only the readers' own errors escape and no input takes over 1 s.

Replays the seed corpus, the golden bad files and the regressions through both targets, then
fuzzes each target for SANDSEG_FUZZ_SECONDS (default 60, as in CI) with seed
SANDSEG_FUZZ_SEED (default 0: every run tries the same inputs, as many as time allows).
Run with `-s` to see how many inputs were tried.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from sandseg.weights import SafetensorsError

from .engine import TIME_LIMIT_S, Fuzzer, cpu_seconds
from .make_corpus import corpus
from .targets import CORPUS_DIR, GOLDEN_BAD_DIR, REGRESSIONS_DIR, TARGETS, Target, input_files

SECONDS = float(os.environ.get("SANDSEG_FUZZ_SECONDS", "60"))
SEED = int(os.environ.get("SANDSEG_FUZZ_SEED", "0"))
SEED_FILES = [
    *input_files(CORPUS_DIR / "safetensors"),
    *input_files(CORPUS_DIR / "pt"),
    *input_files(GOLDEN_BAD_DIR),
]


def assert_handled(target: Target, data: bytes) -> None:
    elapsed = cpu_seconds(lambda: target.run(data), target.expected)
    assert elapsed < TIME_LIMIT_S, f"{target.name} took {elapsed:.2f} s of CPU time"


def test_committed_corpus_matches_make_corpus() -> None:
    on_disk = {
        f"{kind}/{path.name}": path.read_bytes()
        for kind in ("safetensors", "pt")
        for path in input_files(CORPUS_DIR / kind)
    }
    assert on_disk == corpus(), "run `.venv/bin/python -m tests.fuzz.make_corpus`"


@pytest.mark.parametrize("name", list(TARGETS))
@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.requirement("ST-4", "CV-2")
def test_seed_is_handled(name: str, path: Path) -> None:
    assert_handled(TARGETS[name], path.read_bytes())


@pytest.mark.parametrize("name", list(TARGETS))
@pytest.mark.parametrize("path", input_files(REGRESSIONS_DIR), ids=lambda p: p.stem)
@pytest.mark.requirement("ST-4", "CV-2")
def test_regression(name: str, path: Path) -> None:
    assert_handled(TARGETS[name], path.read_bytes())


def _report(fuzzer: Fuzzer) -> str:
    lines = [fuzzer.stats.summary(), f"seed {SEED}; reproduce with the inputs below"]
    for finding in fuzzer.findings:
        data = finding.path.read_bytes()
        lines += [f"{finding.kind} ({len(data)} bytes): {finding.detail}"]
        lines += [f"base64: {base64.b64encode(data).decode()}"] if len(data) <= 4096 else []
    return "\n".join(lines)


@pytest.mark.parametrize("name", list(TARGETS))
@pytest.mark.requirement("ST-4", "CV-2")
def test_time_boxed_fuzzing_finds_nothing(name: str, tmp_path: Path, evidence) -> None:
    fuzzer = Fuzzer(TARGETS[name], tmp_path / name, seed=SEED)
    stats = fuzzer.run(SECONDS)
    summary = {"target": name, "seed": SEED, "tried": stats.tried, "seconds": stats.seconds}
    summary |= {"accepted": stats.accepted, "crashes": stats.crashes, "slow": stats.slow}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    print(f"\n{stats.summary()}")
    evidence(
        "ST-4" if name == "safetensors" else "CV-2",
        f"{name} reader: {stats.tried:,} inputs in {stats.seconds:.0f} s, "
        f"{stats.crashes} crashes, {stats.slow} over 1 s; slowest input "
        f"{stats.slowest * 1000:.1f} ms of CPU time",
    )
    assert not fuzzer.findings, _report(fuzzer)


# The engine itself: it must notice what it is looking for.


def test_engine_records_crashes_with_their_traceback(tmp_path: Path) -> None:
    def brittle(data: bytes) -> None:
        if len(data) % 2:
            raise KeyError("odd length")
        raise SafetensorsError("even length")

    target = Target("safetensors", brittle, SafetensorsError, CORPUS_DIR / "safetensors")
    fuzzer = Fuzzer(target, tmp_path, seed=1)
    stats = fuzzer.run(0.2)
    assert stats.crashes > 0
    assert [kind.split(" at ")[0] for kind in stats.crash_kinds] == ["crash KeyError"]
    saved = fuzzer.findings[0].path
    assert saved.name.startswith("crash-")
    assert "KeyError: 'odd length'" in saved.with_suffix(".txt").read_text()


def test_engine_records_slow_inputs(tmp_path: Path) -> None:
    fuzzer = Fuzzer(TARGETS["pt"], tmp_path, seed=1, time_limit=0.0)
    stats = fuzzer.run(0.0)
    assert stats.slow == stats.tried > 0 and stats.crashes == 0
    assert all(f.path.name.startswith("slow-") for f in fuzzer.findings)
