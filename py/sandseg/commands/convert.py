"""`sandseg convert IN.pt OUT.safetensors`: the official checkpoint to safetensors + manifest."""

from __future__ import annotations

import argparse

from . import Progress, Subparsers


def register(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "convert", help="official MobileSAM .pt (or a .safetensors) -> .safetensors + manifest"
    )
    parser.add_argument("src", help="checkpoint in the official layout (mobile_sam.pt)")
    parser.add_argument("dst", help="output .safetensors path")
    parser.add_argument(
        "--dtype",
        choices=("float32", "float16"),
        default="float32",
        help="float32 (default): the checkpoint's bytes unchanged; float16: weight matrices "
        "and kernels rounded to float16, half the size (what the page downloads), upcast to "
        "float32 on load",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..weights import convert_checkpoint

    manifest = convert_checkpoint(args.src, args.dst, dtype=args.dtype, progress=progress)
    print(
        f"wrote {args.dst} ({manifest['tensor_count']} tensors, sha256 {manifest['output_sha256']})"
    )
    return 0
