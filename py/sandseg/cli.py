"""The `sandseg` command: info, convert, segment, serve, export-onnx, bench."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sandseg", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="show the WebGPU adapter sandseg would use")
    info.add_argument("--adapter", action="store_true", help="print only the adapter's name")

    convert = sub.add_parser("convert", help="official MobileSAM .pt -> .safetensors + manifest")
    convert.add_argument("src", help="checkpoint in the official layout (mobile_sam.pt)")
    convert.add_argument("dst", help="output .safetensors path")

    segment = sub.add_parser("segment", help="segment an image from point and box prompts")
    segment.add_argument("--weights", required=True, help=".safetensors (or .pt) weights")
    segment.add_argument("--image", required=True, help="image file (JPEG, PNG, ...)")
    segment.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y,LABEL",
        help="a point in image pixels; LABEL 1 foreground, 0 background",
    )
    segment.add_argument("--box", metavar="X0,Y0,X1,Y1", help="a box in image pixels")
    segment.add_argument(
        "--mask-input",
        metavar="LOWRES.npy",
        help="previous low-res logits (1x256x256 or 256x256 float32) to refine",
    )
    segment.add_argument("--multimask", action="store_true", help="return 3 masks instead of 1")
    segment.add_argument("--out", required=True, help="output .npz path")
    segment.add_argument("--overlay", metavar="PNG", help="also write the best mask over the image")

    serve = sub.add_parser("serve", help="serve the web app (build it first: python build.py)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--weights", help=".pt (converted once, cached) or .safetensors")
    serve.add_argument("--bundle", default="web/dist", help="the built web bundle")
    serve.add_argument(
        "--weights-sha256", help="pin the weights to this sha256 (default: their manifest)"
    )
    serve.add_argument(
        "--token",
        help="API token, required for a non-loopback --host (or set SANDSEG_TOKEN); the page "
        "takes it as #token=... in its URL",
    )
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="another Host name clients use (a public name behind a proxy); repeatable",
    )
    serve.add_argument(
        "--queue", type=int, default=4, help="requests that may wait for the GPU (default 4)"
    )
    serve.add_argument(
        "--deadline", type=float, default=120.0, help="seconds a request may take (default 120)"
    )
    serve.add_argument(
        "--cache-images", type=int, default=16, help="encoded images kept (default 16)"
    )

    export = sub.add_parser(
        "export-onnx", help="the MobileSAM graph as ONNX files (image encoder; prompt decoder)"
    )
    export.add_argument("--weights", required=True, help=".safetensors (or .pt) weights")
    export.add_argument(
        "--out",
        required=True,
        help="output folder for mobile_sam_encoder.onnx and mobile_sam_decoder.onnx",
    )
    export.add_argument(
        "--num-points",
        type=_positive_int,
        metavar="N",
        help="fix the decoder's prompt point count (default: dynamic, as SAM's own export)",
    )

    bench = sub.add_parser("bench", help="benchmarks that print a table and write JSON")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    kernels = bench_sub.add_parser("kernels", help="every kernel at MobileSAM shapes vs numpy")
    kernels.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    kernels.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    kernels.add_argument("--only", metavar="KERNEL", action="append", help="only these kernels")

    model = bench_sub.add_parser(
        "model", help="encoder stages and decoder, natively, vs the kernels"
    )
    model.add_argument("--weights", required=True, help=".safetensors (or .pt) weights")
    model.add_argument("--image", required=True, help="image file to encode")
    model.add_argument("--repeat", type=int, default=3, help="timed runs per part (median)")
    model.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    model.add_argument(
        "--browser",
        nargs="?",
        const="web/dist",
        metavar="BUNDLE",
        help="also run the page in chromium (bundle from build.py, default web/dist)",
    )
    model.add_argument(
        "--onnx",
        action="store_true",
        help="also run onnxruntime on the ONNX export of the same weights: CPU natively, "
        "and with --browser onnxruntime-web's WebGPU EP in the same chromium",
    )
    model.add_argument(
        "--onnx-repeat",
        type=int,
        default=1,
        help="timed onnxruntime-web encoder runs (minutes each on SwiftShader)",
    )

    offload = bench_sub.add_parser(
        "offload", help="every offload mode in the browser, under emulated networks"
    )
    offload.add_argument("--weights", required=True, help=".safetensors weights (with manifest)")
    offload.add_argument("--bundle", default="web/dist", help="the built web bundle")
    offload.add_argument(
        "--image", default="../shared/images/picture1.jpg", help="the photo (fresh variants)"
    )
    offload.add_argument("--out", default="out/bench-offload", help="folder for JSON, MD, PNG")
    offload.add_argument("--repeat", type=int, default=1, help="images per mode (median)")
    offload.add_argument("--clicks", type=int, default=3, help="clicks per image")
    offload.add_argument(
        "--price-per-gpu-hour", type=float, default=2.50, help="for the cost columns ($)"
    )
    offload.add_argument(
        "--quick", action="store_true", help="2 profiles, 4 modes, 1 image: a smoke run"
    )

    load = bench_sub.add_parser(
        "load", help="a live server under load: saturation, latency, overload (LD-1, LD-3)"
    )
    load.add_argument("--weights", required=True, help=".safetensors weights (with manifest)")
    load.add_argument("--bundle", default="web/dist", help="the built web bundle")
    load.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    load.add_argument("--markdown", metavar="PATH", help="also write the tables as Markdown")
    load.add_argument(
        "--sustain-seconds",
        type=float,
        metavar="N",
        help="seconds of the sustained run per route (default 600; 20 with --quick)",
    )
    load.add_argument(
        "--quick", action="store_true", help="short phases: the whole run in about 2 minutes"
    )

    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            return _info(args)
        if args.command == "convert":
            from .weights import convert_checkpoint

            manifest = convert_checkpoint(args.src, args.dst, progress=_progress)
            print(
                f"wrote {args.dst} ({manifest['tensor_count']} tensors, "
                f"sha256 {manifest['output_sha256']})"
            )
            return 0
        if args.command == "serve":
            from .server.serve_cli import run_serve

            return run_serve(args, _progress)
        if args.command == "segment":
            from .segment_cli import run_segment

            return run_segment(args, _progress)
        if args.command == "export-onnx":
            return _export_onnx(args)
        if args.command == "bench" and args.bench == "kernels":
            from .bench.kernels import run_kernel_bench

            return run_kernel_bench(json_path=args.json, repeat=args.repeat, only=args.only)
        if args.command == "bench" and args.bench == "model":
            from .bench.model import run_model_bench

            return run_model_bench(
                args.weights,
                args.image,
                repeat=args.repeat,
                json_path=args.json,
                progress=_progress,
                browser_bundle=args.browser,
                onnx=args.onnx,
                onnx_repeat=args.onnx_repeat,
            )
        if args.command == "bench" and args.bench == "offload":
            from pathlib import Path

            from .bench.offload import run_offload_bench

            return run_offload_bench(
                Path(args.weights),
                Path(args.bundle),
                Path(args.image),
                Path(args.out),
                quick=args.quick,
                repeat=args.repeat,
                clicks=args.clicks,
                price_per_gpu_hour=args.price_per_gpu_hour,
                progress=_progress,
            )
        if args.command == "bench" and args.bench == "load":
            from pathlib import Path

            from .bench.load import run_load_bench

            return run_load_bench(
                Path(args.weights),
                Path(args.bundle),
                quick=args.quick,
                sustain_seconds=args.sustain_seconds,
                json_path=args.json,
                markdown_path=args.markdown,
                progress=_progress,
            )
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


def _progress(message: str) -> None:
    print(f"sandseg: {message}", file=sys.stderr, flush=True)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _export_onnx(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        from .export import export_onnx
    except ModuleNotFoundError as exc:  # the optional `onnx` extra is not installed
        print(
            f"sandseg: error: export-onnx needs the {exc.name!r} package: "
            "pip install 'sandseg[onnx]'",
            file=sys.stderr,
        )
        return 2
    export_onnx(Path(args.weights), Path(args.out), args.num_points, progress=_progress)
    return 0


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
