"""The `sandseg` command: info, bench, and (as they land) convert, segment, serve."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sandseg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="show the WebGPU adapter sandseg would use")
    info.add_argument("--adapter", action="store_true", help="print only the adapter's name")

    bench = sub.add_parser("bench", help="benchmarks that print a table and write JSON")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    kernels = bench_sub.add_parser("kernels", help="every kernel at MobileSAM shapes vs numpy")
    kernels.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    kernels.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    kernels.add_argument("--only", metavar="KERNEL", action="append", help="only these kernels")

    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            return _info(args)
        if args.command == "bench" and args.bench == "kernels":
            from .bench.kernels import run_kernel_bench

            return run_kernel_bench(json_path=args.json, repeat=args.repeat, only=args.only)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI reports errors in words, never as a traceback
        from .errors import UserFacingError

        if isinstance(exc, UserFacingError):
            print(f"sandseg: error: {exc}", file=sys.stderr)
            return 2
        raise
    parser.error("unknown command")
    return 2


def _info(args: argparse.Namespace) -> int:
    from .gpu import get_device

    device = get_device()
    if args.adapter:
        print(device.adapter_name)
    else:
        print(f"adapter: {device.adapter_name}")
        print(f"optional features: {', '.join(sorted(device.features)) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
