"""The `sandseg` command: info, convert, segment, everything, serve, export-onnx, tune, bench.

Each subcommand is a module of `sandseg.commands` that registers its parser and handler;
this module only dispatches and turns user-facing errors into one line and exit code 2."""

from __future__ import annotations

import argparse
import sys

from .amg import cli as everything
from .commands import bench, convert, export_onnx, info, segment, serve, tune

COMMANDS = (info, convert, segment, everything, serve, export_onnx, tune, bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sandseg", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args, _progress))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI reports errors in words, never as a traceback
        from .errors import UserFacingError

        if isinstance(exc, UserFacingError):
            print(f"sandseg: error: {exc}", file=sys.stderr)
            return 2
        raise


def _progress(message: str) -> None:
    print(f"sandseg: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
