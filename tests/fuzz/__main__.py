"""Run a fuzzing campaign: `python -m tests.fuzz --target safetensors|pt|all --seconds N`.

Run from the repository root with the project's Python. Prints progress every 5 s and one
summary line per target; crashes and slow inputs are saved under --out (named by sha256,
with a .txt beside each). Exits 1 if anything was found.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from .engine import Fuzzer
from .targets import TARGETS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--seconds", type=float, default=60.0, help="per target (default 60)")
    parser.add_argument("--out", type=Path, default=Path("out/fuzz"), help="findings folder")
    parser.add_argument("--seed", type=int, help="random seed (default: a fresh one, printed)")
    args = parser.parse_args(argv)
    seed = random.SystemRandom().randrange(2**32) if args.seed is None else args.seed
    names = list(TARGETS) if args.target == "all" else [args.target]
    print(f"fuzzing {', '.join(names)} for {args.seconds:g} s each, seed {seed}", flush=True)
    results = []
    for name in names:
        fuzzer = Fuzzer(TARGETS[name], args.out / name, seed=seed)
        results.append(fuzzer.run(args.seconds, progress=lambda line: print(line, flush=True)))
        for finding in fuzzer.findings:
            print(f"{finding.kind}: {finding.path}\n{finding.detail}", flush=True)
    for stats in results:
        print(stats.summary())
    return 1 if any(stats.findings for stats in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
