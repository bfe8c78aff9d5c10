"""`python -m tests.reliability [--long] [--out DIR] [pytest args]`: the reliability report.

Runs every test that carries a `requirement` marker and prints the table: ID, what was tried,
the number measured, pass/fail. The quick forms are what the README's test command runs too
(about 15 minutes on 2 cores, most of it the browser tier); `--long` runs the long forms:
fuzzing 10 minutes per reader, 20 device losses, 100 predictions, 10 minutes of sustained load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=__doc__)
    parser.add_argument("--long", action="store_true", help="run the long forms")
    parser.add_argument(
        "--out", default="out/reliability", help="where to write reliability.{json,md}"
    )
    args, pytest_args = parser.parse_known_args(argv)
    env = dict(os.environ)
    if args.long:
        env["SANDSEG_RELIABILITY_LONG"] = "1"
        env.setdefault("SANDSEG_FUZZ_SECONDS", "600")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "requirement",
        "--require-every-requirement",
        # One word: a separate path word would be taken for a test path once it exists.
        f"--reliability-report={args.out}",
        *pytest_args,
    ]
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
