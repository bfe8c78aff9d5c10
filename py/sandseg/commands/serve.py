"""`sandseg serve`: the web app and the offload API (the server itself: `server/serve_cli.py`)."""

from __future__ import annotations

import argparse

from . import Progress, Subparsers


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("serve", help="serve the web app (build it first: python build.py)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--weights", help=".pt (converted once, cached) or .safetensors")
    parser.add_argument("--bundle", default="web/dist", help="the built web bundle")
    parser.add_argument(
        "--weights-sha256", help="pin the weights to this sha256 (default: their manifest)"
    )
    parser.add_argument(
        "--token",
        help="API token, required for a non-loopback --host (or set SANDSEG_TOKEN); the page "
        "takes it as #token=... in its URL",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="another Host name clients use (a public name behind a proxy); repeatable",
    )
    parser.add_argument(
        "--queue", type=int, default=4, help="requests that may wait for the GPU (default 4)"
    )
    parser.add_argument(
        "--deadline", type=float, default=120.0, help="seconds a request may take (default 120)"
    )
    parser.add_argument(
        "--cache-images", type=int, default=16, help="encoded images kept (default 16)"
    )
    parser.add_argument(
        "--runtime",
        choices=["auto", "wgpu", "onnxruntime"],
        default="auto",
        help="where the model runs: auto (default) measures every available runtime per stage "
        "at start-up and uses the fastest for each; wgpu (the WGSL kernels); onnxruntime",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..server.serve_cli import run_serve

    return run_serve(args, progress)
