"""The `sandseg` subcommands: one module each, with `register(subparsers)` adding its parser
and setting `handler`, the function that runs it (`handler(args, progress) -> exit code`).

Modules import their heavy dependencies inside the handler, so `sandseg --help` stays fast
and a command whose optional extra is missing fails with a message, not at start-up."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Progress = Callable[[str], None]
Handler = Callable[[argparse.Namespace, Progress], int]
Subparsers = argparse._SubParsersAction  # the type argparse gives add_subparsers()


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
