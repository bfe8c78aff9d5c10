"""`sandseg serve`: the web app and the offload API (the server itself: `server/serve_cli.py`)."""

from __future__ import annotations

import argparse

from ..runtime import RUNTIMES
from . import Progress, Subparsers


def register(sub: Subparsers) -> None:
    parser = sub.add_parser("serve", help="serve the web app (build it first: python build.py)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--weights",
        help=".pt (converted once, cached) or .safetensors; default: the weights converted "
        "last (not the demo weights), else the official mobile_sam.pt downloaded once",
    )
    parser.add_argument(
        "--fallback-weights",
        metavar="PATH",
        help="without --weights, serve these (.pt or .safetensors) when there are no converted "
        "weights and the official download fails (scripts/run.sh: the demo weights)",
    )
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
        choices=["auto", *RUNTIMES],
        default="auto",
        help="where the model runs: auto (default) measures every available runtime per stage "
        "at start-up and uses the fastest for each; wgpu (the WGSL kernels); onnxruntime",
    )
    _add_scale_out(parser)
    parser.set_defaults(handler=run)


def _add_scale_out(parser: argparse.ArgumentParser) -> None:
    scale = parser.add_argument_group(
        "scale-out (issue 16; needs the scale extra: pip install 'sandseg[scale]')"
    )
    scale.add_argument(
        "--ray",
        action="store_true",
        help="serve through Ray Serve: the same app in replicas, one model each, behind Ray's "
        "HTTP proxy on --host/--port",
    )
    scale.add_argument("--replicas", type=int, help="with --ray: this many replicas (default 1)")
    scale.add_argument(
        "--autoscale", metavar="MIN:MAX", help="with --ray: autoscale between MIN and MAX replicas"
    )
    scale.add_argument(
        "--ray-address", help="with --ray: a running Ray cluster (default: start Ray here)"
    )
    scale.add_argument(
        "--replica-threads",
        type=int,
        help="with --ray: CPU threads (and Ray CPUs) per replica (default: the runtime's own)",
    )
    scale.add_argument(
        "--gpus-per-replica",
        type=float,
        default=0.0,
        help="with --ray: GPUs Ray reserves per replica; each replica then takes the wgpu "
        "adapter of its Ray GPU id (default 0: adapter = replica rank modulo adapters)",
    )
    scale.add_argument(
        "--cache",
        default="memory",
        metavar="memory|redis://HOST:PORT/DB",
        help="where encoded images are kept: this process's memory (default) or a Redis "
        "shared by every replica (password from SANDSEG_REDIS_PASSWORD; needed off loopback)",
    )
    scale.add_argument(
        "--cache-ttl",
        type=int,
        default=3600,
        help="seconds an image stays in Redis (default 3600)",
    )


def run(args: argparse.Namespace, progress: Progress) -> int:
    from ..server.serve_cli import run_serve

    return run_serve(args, progress)
