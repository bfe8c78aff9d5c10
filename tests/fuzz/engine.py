"""A small mutation fuzzer without coverage instrumentation (no native dependencies).

Each step takes an input from the pool, mutates it with the target's structure-aware mutator
and runs the target, timing the call. The outcome is accepted, rejected (the target's own
error), a crash (any other exception) or slow (over `time_limit` seconds of this thread's
CPU time: the targets are pure Python and cannot be interrupted safely, so a slow call is
measured, not stopped). CPU time, not wall time: on a shared machine another process can
stretch any call's wall time, while the CPU time an input costs is the input's own.

An input whose outcome was not seen before (rejected by a check at another line, or for
another wrapped reason) joins the pool: a cheap stand-in for coverage that lets an input
that passes one check go on to the next. A few other inputs join too, so that mutations
stack, and a quarter of the parents are seeds, so that mutants stay close to valid files.
With a fixed seed the sequence of inputs is fixed; only how far it gets depends on time.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

from .mutate_pt import mutate_pt
from .mutate_safetensors import mutate_safetensors
from .targets import Target, seeds

TIME_LIMIT_S = 1.0
MAX_POOL = 1000
# Saved inputs per crash signature (exception type and place); all are counted.
SAVED_PER_CRASH = 3
MUTATORS: dict[str, Callable[[bytes, Random, Sequence[bytes]], bytes]] = {
    "safetensors": mutate_safetensors,
    "pt": mutate_pt,
}
# A wrapped low-level reason: "(UnpicklingError: ...", "(Expecting value: line 1 ...".
_REASON = re.compile(r"\(([A-Za-z][A-Za-z ]*)")


@dataclass
class Stats:
    target: str
    tried: int = 0
    accepted: int = 0
    crashes: int = 0
    slow: int = 0
    seconds: float = 0.0
    slowest: float = 0.0  # the most CPU seconds one input took
    crash_kinds: set[str] = field(default_factory=set)

    @property
    def findings(self) -> int:
        return self.crashes + self.slow

    def summary(self) -> str:
        rate = self.tried / self.seconds if self.seconds else 0.0
        return (
            f"{self.target}: {self.tried} inputs in {self.seconds:.0f} s ({rate:.0f}/s), "
            f"{self.accepted} accepted, {self.crashes} crashes ({len(self.crash_kinds)} "
            f"distinct), {self.slow} slow inputs (slowest {self.slowest * 1000:.1f} ms CPU)"
        )


@dataclass(frozen=True)
class Finding:
    kind: str  # "crash" or "slow"
    path: Path  # the input; `path.with_suffix(".txt")` holds the traceback or the time
    detail: str


class Fuzzer:
    """Fuzz one target; crashes and slow inputs are written to `out_dir`, named by sha256."""

    def __init__(
        self, target: Target, out_dir: Path, *, seed: int, time_limit: float = TIME_LIMIT_S
    ) -> None:
        self.target = target
        self.out_dir = out_dir
        self.time_limit = time_limit
        self.rng = Random(seed)
        self.mutate = MUTATORS[target.name]
        self.pool = seeds(target)
        self._seed_count = len(self.pool)
        self.outcomes: set[str] = set()
        self.stats = Stats(target.name)
        self.findings: list[Finding] = []
        self._saved: dict[str, int] = {}

    def execute(self, data: bytes) -> str:
        """Run the target once on `data`; record a crash or a slow run; return the outcome."""
        start = time.thread_time()
        try:
            self.target.run(data)
            outcome = "accepted"
            self.stats.accepted += 1
        except self.target.expected as exc:
            outcome = _rejection_kind(exc)
        except Exception as exc:
            outcome = _crash_kind(exc)
            self._crash(outcome, data, traceback.format_exc())
        elapsed = time.thread_time() - start
        self.stats.slowest = max(self.stats.slowest, elapsed)
        if elapsed > self.time_limit:
            self.stats.slow += 1
            detail = f"took {elapsed:.2f} s of CPU time, over the {self.time_limit} s limit\n"
            self._save("slow", data, detail)
        self.stats.tried += 1
        return outcome

    def run(self, seconds: float, progress: Callable[[str], None] | None = None) -> Stats:
        """Replay the seeds, then mutate for `seconds`; call `progress` every 5 s."""
        start = time.monotonic()
        next_report = start + 5.0
        with warnings.catch_warnings():
            # A warning from a reader is a finding too, also outside pytest.
            warnings.simplefilter("error")
            for data in list(self.pool):
                self.outcomes.add(self.execute(data))
            while (now := time.monotonic()) - start < seconds:
                self._step()
                if progress is not None and now >= next_report:
                    next_report = now + 5.0
                    self.stats.seconds = now - start
                    progress(f"[{self.target.name}] {self.stats.seconds:4.0f} s  {self._line()}")
        self.stats.seconds = time.monotonic() - start
        return self.stats

    def _step(self) -> None:
        # A quarter of the parents are seeds, so that mutants stay close to valid files.
        parents = self.pool[: self._seed_count] if self.rng.random() < 0.25 else self.pool
        child = self.mutate(self.rng.choice(parents), self.rng, self.pool)
        outcome = self.execute(child)
        # New outcomes always join the pool; a few others do too, so that mutations stack.
        if outcome not in self.outcomes or self.rng.random() < 0.01:
            self.outcomes.add(outcome)
            if len(self.pool) < MAX_POOL:
                self.pool.append(child)
            else:
                self.pool[self.rng.randrange(self._seed_count, MAX_POOL)] = child

    def _line(self) -> str:
        s = self.stats
        return (
            f"tried {s.tried} ({s.tried / max(s.seconds, 1e-9):.0f}/s)  pool {len(self.pool)}  "
            f"outcomes {len(self.outcomes)}  crashes {s.crashes}  slow {s.slow}"
        )

    def _crash(self, kind: str, data: bytes, detail: str) -> None:
        self.stats.crashes += 1
        self.stats.crash_kinds.add(kind)
        self._saved[kind] = self._saved.get(kind, 0) + 1
        if self._saved[kind] <= SAVED_PER_CRASH:
            self._save("crash", data, detail)

    def _save(self, kind: str, data: bytes, detail: str) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{kind}-{hashlib.sha256(data).hexdigest()}"
        path.write_bytes(data)
        path.with_suffix(".txt").write_text(detail)
        self.findings.append(Finding(kind, path, detail))


def cpu_seconds(
    run: Callable[[], object], expected: type[Exception] | tuple[type[Exception], ...] = ()
) -> float:
    """The CPU time `run()` took on this thread, `expected` errors suppressed: what an input
    costs, however busy the machine is (the 1 s limit of ST-4 is measured this way)."""
    start = time.thread_time()
    with contextlib.suppress(expected):
        run()
    return time.thread_time() - start


def _where(exc: Exception) -> str:
    # The raising line; walked by hand because traceback.extract_tb is slow.
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}" if tb else "?"


def _rejection_kind(exc: Exception) -> str:
    # Which check rejected the input (the raise site), plus the wrapped reason if any: a
    # coarse stand-in for coverage. Values in the message would make every input look new.
    reason = _REASON.search(str(exc))
    return f"rejected at {_where(exc)}" + (f" ({reason.group(1)})" if reason else "")


def _crash_kind(exc: Exception) -> str:
    return f"crash {type(exc).__name__} at {_where(exc)}"
