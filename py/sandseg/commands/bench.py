"""`sandseg bench kernels | gpu | model | offload | load | everything | wasm`: benchmarks that
print a table and write JSON (speed is measured here, never in timed tests)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..runtime import RUNTIMES
from . import Progress, Subparsers


def register(sub: Subparsers) -> None:
    bench = sub.add_parser("bench", help="benchmarks that print a table and write JSON")
    benches = bench.add_subparsers(dest="bench", required=True)
    for add in (_kernels, _gpu, _model, _offload, _load, _everything, _wasm):
        add(benches)


def _kernels(sub: Subparsers) -> None:
    parser = sub.add_parser("kernels", help="every kernel at MobileSAM shapes vs numpy")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    parser.add_argument("--only", metavar="KERNEL", action="append", help="only these kernels")
    parser.set_defaults(handler=run_kernels)


def run_kernels(args: argparse.Namespace, progress: Progress) -> int:
    from ..bench.kernels import run_kernel_bench

    return run_kernel_bench(json_path=args.json, repeat=args.repeat, only=args.only)


def _gpu(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "gpu", help="matmul variants, conv, attention (and the encoder) vs the adapter's peak"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    parser.add_argument(
        "--all-variants",
        action="store_true",
        help="every matmul variant, not only the tuned one and the register-blocked one "
        "(slow on CPU adapters, where the workgroup-memory ones are ~10x slower)",
    )
    parser.add_argument("--weights", help="also time the encoder with these weights")
    parser.add_argument("--image", help="the image the encoder runs on (with --weights)")
    parser.add_argument("--quick", action="store_true", help="one matmul shape: a smoke run")
    parser.set_defaults(handler=run_gpu)


def run_gpu(args: argparse.Namespace, progress: Progress) -> int:
    from ..bench.gpu import run_gpu_bench

    return run_gpu_bench(
        json_path=args.json,
        repeat=args.repeat,
        all_variants=args.all_variants,
        weights=args.weights,
        image=args.image,
        quick=args.quick,
    )


def _model(sub: Subparsers) -> None:
    parser = sub.add_parser("model", help="encoder stages and decoder, natively, vs the kernels")
    parser.add_argument("--weights", required=True, help=".safetensors (or .pt) weights")
    parser.add_argument("--image", required=True, help="image file to encode")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per part (median)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--browser",
        nargs="?",
        const="web/dist",
        metavar="BUNDLE",
        help="also run the page in chromium (bundle from build.py, default web/dist)",
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="also run onnxruntime on the ONNX export of the same weights: CPU natively, "
        "and with --browser onnxruntime-web's WebGPU EP in the same chromium",
    )
    parser.add_argument(
        "--onnx-repeat",
        type=int,
        default=1,
        help="timed onnxruntime-web encoder runs (minutes each on SwiftShader)",
    )
    parser.set_defaults(handler=run_model)


def run_model(args: argparse.Namespace, progress: Progress) -> int:
    from ..bench.model import run_model_bench

    return run_model_bench(
        args.weights,
        args.image,
        repeat=args.repeat,
        json_path=args.json,
        progress=progress,
        browser_bundle=args.browser,
        onnx=args.onnx,
        onnx_repeat=args.onnx_repeat,
    )


def _offload(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "offload", help="every offload mode in the browser, under emulated networks"
    )
    parser.add_argument("--weights", required=True, help=".safetensors weights (with manifest)")
    parser.add_argument("--bundle", default="web/dist", help="the built web bundle")
    parser.add_argument(
        "--image", default="../shared/images/picture1.jpg", help="the photo (fresh variants)"
    )
    parser.add_argument("--out", default="out/bench-offload", help="folder for JSON, MD, PNG")
    parser.add_argument("--repeat", type=int, default=1, help="images per mode (median)")
    parser.add_argument("--clicks", type=int, default=3, help="clicks per image")
    parser.add_argument(
        "--price-per-gpu-hour", type=float, default=2.50, help="for the cost columns ($)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="2 profiles (loopback only for the client runtimes after the first), 4 modes, "
        "1 image: a smoke run",
    )
    parser.add_argument(
        "--server-runtime",
        choices=["auto", *RUNTIMES],
        default="auto",
        help="the server's runtime, as sandseg serve --runtime (default auto: every runtime "
        "is profiled and reported side by side)",
    )
    parser.add_argument(
        "--client-runtime",
        type=_client_runtimes,
        default="webgpu,wasm",
        metavar="R[,R...]",
        help="the page's client runtimes, each as its ?runtime= (auto, webgpu, wasm: "
        "onnxruntime-web on the CPU), measured one after the other in the same run and "
        "reported side by side (default webgpu,wasm: every one)",
    )
    parser.set_defaults(handler=run_offload)


def _client_runtimes(text: str) -> list[str]:
    from ..bench.offload import parse_client_runtimes

    try:
        return parse_client_runtimes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_offload(args: argparse.Namespace, progress: Progress) -> int:
    from ..bench.offload import run_offload_bench

    return run_offload_bench(
        Path(args.weights),
        Path(args.bundle),
        Path(args.image),
        Path(args.out),
        quick=args.quick,
        repeat=args.repeat,
        clicks=args.clicks,
        price_per_gpu_hour=args.price_per_gpu_hour,
        progress=progress,
        server_runtime=args.server_runtime,
        client_runtimes=args.client_runtime,
    )


def _load(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "load", help="a live server under load: saturation, latency, overload (LD-1, LD-3)"
    )
    parser.add_argument("--weights", required=True, help=".safetensors weights (with manifest)")
    parser.add_argument("--bundle", default="web/dist", help="the built web bundle")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write the tables as Markdown")
    parser.add_argument(
        "--sustain-seconds",
        type=float,
        metavar="N",
        help="seconds of the sustained run per route (default 600; 20 with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="short phases: the whole run in about 2 minutes"
    )
    parser.add_argument(
        "--ray",
        action="store_true",
        help="instead: the single process beside `serve --ray` with --replicas of each count, "
        "on one Redis, 1 CPU thread per model (issue 16's targets)",
    )
    parser.add_argument(
        "--replicas", default="1,2", metavar="N,N", help="with --ray: replica counts (1,2)"
    )
    parser.set_defaults(handler=run_load)


def run_load(args: argparse.Namespace, progress: Progress) -> int:
    from ..bench.load import run_load_bench

    if args.ray:
        from ..bench.scale import run_scale_bench

        return run_scale_bench(
            Path(args.weights),
            Path(args.bundle),
            [int(n) for n in args.replicas.split(",")],
            requests=10 if args.quick else 30,
            seconds=8.0 if args.quick else 20.0,
            json_path=args.json,
            markdown_path=args.markdown,
            progress=progress,
        )

    return run_load_bench(
        Path(args.weights),
        Path(args.bundle),
        quick=args.quick,
        sustain_seconds=args.sustain_seconds,
        json_path=args.json,
        markdown_path=args.markdown,
        progress=progress,
    )


def _everything(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "everything", help="the mask generator: decoder prompts/s, seconds per image"
    )
    parser.add_argument("--weights", required=True, help=".safetensors (or .pt) weights")
    parser.add_argument("--image", required=True, help="image file")
    parser.add_argument("--points-per-side", type=int, default=16, help="generator grid (16)")
    parser.add_argument("--batch", type=int, default=16, help="prompts per decoder timing (16)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per path (median)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.set_defaults(handler=run_everything)


def run_everything(args: argparse.Namespace, progress: Progress) -> int:
    from ..bench.everything import run_everything_bench

    return run_everything_bench(
        args.weights,
        args.image,
        points_per_side=args.points_per_side,
        batch=args.batch,
        repeat=args.repeat,
        json_path=args.json,
        progress=progress,
    )


def _wasm(sub: Subparsers) -> None:
    parser = sub.add_parser(
        "wasm", help="the browser's client runtimes (wasm, webgpu) side by side in one Chromium"
    )
    parser.add_argument("--weights", required=True, help=".safetensors weights")
    parser.add_argument("--image", required=True, help="image file")
    parser.add_argument("--bundle", default="web/dist", help="the bundle (python build.py)")
    parser.add_argument("--repeat", type=int, default=3, help="timed images per runtime")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.set_defaults(handler=run_wasm)


def run_wasm(args: argparse.Namespace, progress: Progress) -> int:
    from ..bench.wasm import run_wasm_bench

    return run_wasm_bench(
        args.weights, args.image, args.bundle, args.repeat, args.json, progress=progress
    )
