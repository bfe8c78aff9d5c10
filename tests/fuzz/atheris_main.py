"""Coverage-guided campaigns with atheris (libFuzzer), when it is installed (optional).

    .venv/bin/pip install atheris
    .venv/bin/python -m tests.fuzz.atheris_main --target pt --seconds 300 [--out DIR]

Same targets and seeds as the CI engine; libFuzzer stops at the first crash and writes it
(and any input over the 1 s limit, as timeout-*) under --out/<target>/. New corpus entries
go to --out/<target>/corpus, never into the committed corpus.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from .targets import GOLDEN_BAD_DIR, REGRESSIONS_DIR, TARGETS


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.atheris_main")
    parser.add_argument("--target", choices=list(TARGETS), required=True)
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("out/fuzz/atheris"))
    args, extra = parser.parse_known_args()
    target = TARGETS[args.target]
    out = args.out / target.name
    (out / "corpus").mkdir(parents=True, exist_ok=True)

    def one_input(data: bytes) -> None:
        with contextlib.suppress(target.expected):
            target.run(data)

    libfuzzer_args = [
        sys.argv[0],
        f"-max_total_time={args.seconds}",
        "-timeout=1",
        "-rss_limit_mb=4096",
        "-max_len=65536",
        f"-artifact_prefix={out}/",
        *extra,
        str(out / "corpus"),
        str(target.corpus),
        str(GOLDEN_BAD_DIR),
        str(REGRESSIONS_DIR),
    ]
    atheris.Setup(libfuzzer_args, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
