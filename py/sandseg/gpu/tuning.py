"""Kernel variants chosen by measurement, per adapter, and remembered.

An op with several kernels for one job (see `sandseg.ops.variants`) asks `choose` which to
use for a shape class. The first time an adapter meets a (kernel, shape class), every
candidate it can run is timed on that class (`measure_seconds`: a few dispatches, the wall time
from submit to done, the fastest sample) and the fastest is kept in a table persisted as JSON
under `SANDSEG_HOME/tuning/`, keyed by the adapter and its driver, so the next load reuses it
without measuring. A table that cannot be read, or was written for another adapter, is ignored
with a `TuningTableWarning` and rewritten.

`SANDSEG_KERNELS="matmul=tiled64,..."` pins variants (tests, comparisons): no measurement.

Measuring needs the GPU to finish work, which is a wait: natively the wait is synchronous and
an op measures where it stands; in the browser a wait suspends, so an op cannot measure and
uses the first candidate until `tune` (async) has filled the table. In the browser the table
lives in Pyodide's in-memory file system: it lasts the session.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import warnings
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from . import IN_PYODIDE
from .device import Device

FORMAT = 1
# Timed samples per candidate after the untimed first run (which compiles the pipeline).
SAMPLES = 2
# A sample shorter than this is mostly submission overhead: it is repeated within one
# submission until it is not (on a fast GPU), up to MAX_REPEAT dispatches.
MIN_SAMPLE_S = 0.002
MAX_REPEAT = 64
# A candidate whose first run takes this many times the best so far is not timed further;
# one that lost by that much on STRIKES shape classes in a row is not timed again this session
# (on CPU adapters the workgroup-memory kernels lose by 10x everywhere).
GIVE_UP = 3.0
STRIKES = 3


class TuningTableWarning(UserWarning):
    """A tuning table file was unreadable or foreign and is being ignored."""


@dataclass
class Table:
    """The choices made on one adapter: "kernel/shape class" -> variant name, plus what each
    candidate measured (seconds) for the record."""

    adapter: str
    path: Path | None
    choices: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    # Candidate timings run through this table (tests count them: none on a second load).
    measurements: int = 0
    # This session only: "kernel/variant" -> classes in a row it lost by over GIVE_UP (a
    # candidate that keeps doing so is not timed again), and the variants that have run once.
    strikes: dict[str, int] = field(default_factory=dict)
    warmed: set[str] = field(default_factory=set)

    def first_run(self, key: str) -> bool:
        """True the first time `key` (a pipeline) is timed: its first run compiles it."""
        first = key not in self.warmed
        self.warmed.add(key)
        return first

    def save(self) -> None:
        if self.path is None:
            return
        doc = {
            "format": FORMAT,
            "adapter": self.adapter,
            "choices": self.choices,
            "seconds": self.seconds,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)  # atomic: a server and a CLI may share the home
        except OSError as exc:
            warnings.warn(
                f"cannot save the tuning table {self.path}: {exc}", TuningTableWarning, stacklevel=2
            )


def adapter_key(device: Device) -> str:
    """The adapter, its driver and the WGSL compiler: what a choice is valid for."""
    return str(getattr(device, "adapter_key", device.adapter_name))


def table_path(key: str) -> Path:
    home = Path(os.environ.get("SANDSEG_HOME", Path.home() / ".cache" / "sandseg"))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return home / "tuning" / f"{digest}.json"


def load_table(key: str, path: Path | None) -> Table:
    """The table at `path` if it is a well-formed table for this adapter, else an empty one."""
    table = Table(key, path)
    if path is None or not path.is_file():
        return table
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a format-{FORMAT} tuning table")
        if doc.get("adapter") != key:
            raise ValueError(f"written for adapter {doc.get('adapter')!r}, not {key!r}")
        choices, seconds = doc["choices"], doc.get("seconds", {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in choices.items()):
            raise ValueError("choices must map strings to variant names")
        table.choices, table.seconds = dict(choices), dict(seconds)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        warnings.warn(f"ignoring tuning table {path}: {exc}", TuningTableWarning, stacklevel=2)
    return table


_tables: weakref.WeakKeyDictionary[Device, Table] = weakref.WeakKeyDictionary()


def table_for(device: Device) -> Table:
    """The device's table, read from disk on first use."""
    table = _tables.get(device)
    if table is None:
        key = adapter_key(device)
        table = _tables[device] = load_table(key, table_path(key))
    return table


def forget(device: Device) -> None:
    """Drop the in-memory table: the next use reads the file again (a new load, in tests)."""
    _tables.pop(device, None)


def pinned(kernel: str) -> str | None:
    """The variant SANDSEG_KERNELS pins for `kernel` ("matmul=tiled64,attention=..."), if any."""
    for item in os.environ.get("SANDSEG_KERNELS", "").split(","):
        name, sep, variant = item.strip().partition("=")
        if sep and name.strip() == kernel:
            return variant.strip()
    return None


@contextlib.contextmanager
def pinning(variant: str | None, kernels: Sequence[str]) -> Iterator[None]:
    """SANDSEG_KERNELS pins each of `kernels` to `variant` (None: no pin, the tuned choices)
    for what runs inside, then is restored (benchmarks and checks that compare variants)."""
    before = os.environ.get("SANDSEG_KERNELS")
    if variant is not None:
        os.environ["SANDSEG_KERNELS"] = ",".join(f"{k}={variant}" for k in kernels)
    else:
        os.environ.pop("SANDSEG_KERNELS", None)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SANDSEG_KERNELS", None)
        else:
            os.environ["SANDSEG_KERNELS"] = before


# Seconds a named candidate takes; it may give up early past `bound` seconds (a candidate
# that slow cannot win) and return what it saw.
Measure = Callable[[str, float], Awaitable[float]]


def choose(
    device: Device, kernel: str, shape_class: str, candidates: Sequence[str], measure: Measure
) -> str:
    """The variant to use for `kernel` on this shape class: pinned, remembered, measured now
    (natively), or else the first candidate (the browser, until `tune` has run)."""
    pin = pinned(kernel)
    if pin is not None:
        if pin not in candidates:
            raise ValueError(
                f"SANDSEG_KERNELS pins {kernel}={pin}, but this adapter offers {list(candidates)}"
            )
        return pin
    table = table_for(device)
    known = table.choices.get(f"{kernel}/{shape_class}")
    if known is not None and known in candidates:
        return known
    if len(candidates) == 1 or IN_PYODIDE:
        return candidates[0]
    return run_now(tune(device, kernel, shape_class, candidates, measure))


async def tune(
    device: Device, kernel: str, shape_class: str, candidates: Sequence[str], measure: Measure
) -> str:
    """Time every candidate on the shape class, remember and persist the fastest."""
    table = table_for(device)
    timings: dict[str, float] = {}
    for name in candidates:
        if timings and table.strikes.get(f"{kernel}/{name}", 0) >= STRIKES:
            continue
        bound = GIVE_UP * min(timings.values(), default=float("inf"))
        timings[name] = await measure(name, bound)
        table.measurements += 1
    best = min(timings, key=lambda n: timings[n])
    for name, seconds in timings.items():
        lost = seconds > GIVE_UP * timings[best]
        table.strikes[f"{kernel}/{name}"] = (
            table.strikes.get(f"{kernel}/{name}", 0) + 1 if lost else 0
        )
    key = f"{kernel}/{shape_class}"
    table.choices[key] = best
    table.seconds[key] = {n: round(s, 7) for n, s in timings.items()}
    table.save()
    return best


async def measure_seconds(
    device: Device, record: Callable[[], object], bound: float, warm_up: bool
) -> float:
    """Seconds one `record()` (some dispatches) takes on the GPU, from submit to done: the
    fastest of SAMPLES timed runs, or only the first where that took over `bound`. The work
    recorded before goes first, untimed, and so does one run if `warm_up` (a pipeline's
    first submission may compile it)."""
    await device.finish()
    # Synthetic work must not teach the device its pacing rate (Device.finish learns it).
    rates = device._rates.copy()
    try:
        if warm_up:
            record()
            await device.finish()
        record()
        first = await _timed(device)
        if first > bound:
            return first
        repeat = max(1, min(MAX_REPEAT, round(MIN_SAMPLE_S / max(first, 1e-9))))
        best = first
        for _ in range(SAMPLES):
            for _ in range(repeat):
                record()
            best = min(best, await _timed(device) / repeat)
        return best
    finally:
        device._rates = rates


async def _timed(device: Device) -> float:
    started = time.perf_counter()
    await device.finish()
    return time.perf_counter() - started


def run_now[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never really waits (native GPU waits are synchronous) to its end."""
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    raise RuntimeError("a native GPU wait suspended: this device cannot measure synchronously")
