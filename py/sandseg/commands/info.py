"""`sandseg info`: the WebGPU adapter sandseg would use."""

from __future__ import annotations

import argparse

from . import Progress, Subparsers


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("info", help="show the WebGPU adapter sandseg would use")
    parser.add_argument("--adapter", action="store_true", help="print only the adapter's name")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..gpu import get_device

    device = get_device()
    if args.adapter:
        print(device.adapter_name)
    else:
        print(f"adapter: {device.adapter_name}")
        print(f"optional features: {', '.join(sorted(device.features)) or 'none'}")
    return 0
