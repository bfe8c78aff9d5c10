"""The fuzz targets, one per reader, and the seed inputs they start from.

A target returns when the reader accepts the input and raises the reader's own error type
when it rejects it; any other exception is a crash (ST-4, CV-2).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sandseg.weights import CheckpointError, HostTensor, SafetensorsError, read_pt
from sandseg.weights.safetensors import SafetensorsReader, load_safetensors

FUZZ_DIR = Path(__file__).resolve().parent
CORPUS_DIR = FUZZ_DIR / "corpus"
REGRESSIONS_DIR = FUZZ_DIR / "regressions"
GOLDEN_BAD_DIR = FUZZ_DIR.parent / "data" / "safetensors_bad"


def _streamed(data: bytes) -> tuple[dict[str, HostTensor], dict[str, str]]:
    with SafetensorsReader(io.BytesIO(data)) as reader:
        return reader.read_all(), reader.metadata


def safetensors_target(data: bytes) -> None:
    """`load_safetensors` and `SafetensorsReader` must agree: same tensors, or both reject.

    Their messages may differ: a header nested close to the recursion limit fails as deep
    JSON in one and at a later character in the other, whose call stack is deeper.
    """
    outcomes: list[object] = []
    for read in (load_safetensors, _streamed):
        try:
            outcomes.append(read(data))
        except SafetensorsError as exc:
            outcomes.append(exc)
    loaded, streamed = outcomes
    if isinstance(loaded, SafetensorsError) and isinstance(streamed, SafetensorsError):
        raise loaded
    if loaded != streamed:
        raise AssertionError(f"readers disagree: {loaded!r:.300} / {streamed!r:.300}")


def pt_target(data: bytes) -> None:
    read_pt(io.BytesIO(data))


@dataclass(frozen=True)
class Target:
    """A reader under test: `run` may raise only `expected`."""

    name: str
    run: Callable[[bytes], None]
    expected: type[Exception]
    corpus: Path


TARGETS = {
    "safetensors": Target(
        "safetensors", safetensors_target, SafetensorsError, CORPUS_DIR / "safetensors"
    ),
    "pt": Target("pt", pt_target, CheckpointError, CORPUS_DIR / "pt"),
}


def input_files(directory: Path) -> list[Path]:
    """The inputs in `directory` (READMEs and dotfiles are not inputs), sorted by name."""
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.suffix != ".md" and not p.name.startswith(".")
    )


def seeds(target: Target) -> list[bytes]:
    """The target's corpus, the golden bad safetensors files (read where they are, never
    copied) and the regressions."""
    paths = [*input_files(target.corpus), *input_files(GOLDEN_BAD_DIR)]
    paths += input_files(REGRESSIONS_DIR)
    return [p.read_bytes() for p in paths]
