"""`sandseg export-onnx`: the MobileSAM graph as ONNX files (needs the `onnx` extra)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import Progress, Subparsers, positive_int


def register(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "export-onnx", help="the MobileSAM graph as ONNX files (image encoder; prompt decoder)"
    )
    parser.add_argument("--weights", required=True, help=".safetensors (or .pt) weights")
    parser.add_argument(
        "--out",
        required=True,
        help="output folder for mobile_sam_encoder.onnx and mobile_sam_decoder.onnx",
    )
    parser.add_argument(
        "--num-points",
        type=positive_int,
        metavar="N",
        help="fix the decoder's prompt point count (default: dynamic, as SAM's own export)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    try:
        from ..export import export_onnx
    except ModuleNotFoundError as exc:  # the optional `onnx` extra is not installed
        print(
            f"sandseg: error: export-onnx needs the {exc.name!r} package: "
            "pip install 'sandseg[onnx]'",
            file=sys.stderr,
        )
        return 2
    export_onnx(Path(args.weights), Path(args.out), args.num_points, progress=progress)
    return 0
