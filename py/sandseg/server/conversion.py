"""A `.pt` checkpoint converted by a child process, never by the server (RELIABILITY.md SV-8).

The server never unpickles: `sandseg serve --weights X.pt` (and the official download) runs
`sandseg convert` in a subprocess, relays its progress, and then loads only the
`.safetensors` it wrote. The child's restricted reader stands between the pickle and the
server; whatever the file does to the child, the server process never parses it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..predictor import InputError

# What the command line prints before its progress lines and its one-line errors (cli.py).
_PREFIX = "sandseg: "
_ERROR = "sandseg: error: "


def convert_in_subprocess(src: Path, dst: Path, progress: Callable[[str], None]) -> None:
    """`sandseg convert SRC DST` in a child process; its progress goes to `progress`. Raises
    InputError with the child's own error message if it fails (nothing is written then)."""
    command = [sys.executable, "-m", "sandseg.cli", "convert", str(src), str(dst)]
    progress(f"converting in a subprocess: sandseg convert {src.name} {dst.name}")
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as child:
        assert child.stdout is not None
        errors, other = [], []
        for line in child.stdout:
            line = line.rstrip("\n")
            if line.startswith(_ERROR):
                errors.append(line.removeprefix(_ERROR))
            elif line.startswith(_PREFIX):
                progress(f"convert: {line.removeprefix(_PREFIX)}")
            elif line:
                other.append(line)
        code = child.wait()
    if code != 0:
        # A one-line error from the CLI; else the end of whatever it printed (a crash).
        why = "; ".join(errors) or " / ".join(other[-3:]) or "no output"
        raise InputError(f"converting {src.name} failed (exit {code}): {why}")
    for line in other:
        progress(f"convert: {line}")
