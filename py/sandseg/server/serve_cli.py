"""`sandseg serve`: find or prepare the weights, then run the app with uvicorn."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from ..predictor import InputError
from ..weights import convert_checkpoint
from ..weights.files import sha256_file

OFFICIAL_HINT = (
    "no weights: pass --weights mobile_sam.pt (the official MobileSAM checkpoint, from "
    "https://github.com/ChaoningZhang/MobileSAM/tree/master/weights) or a .safetensors made by "
    "`sandseg convert`; converted weights are also picked up from {home}"
)


def sandseg_home() -> Path:
    return Path(os.environ.get("SANDSEG_HOME", Path.home() / ".cache" / "sandseg"))


def resolve_weights(weights: str | None, progress: Callable[[str], None]) -> Path:
    """A .safetensors path to serve: the given file, a .pt converted once into the cache
    (keyed by its sha256), or the newest weights converted before."""
    cache = sandseg_home() / "weights"
    if weights is None:
        found = sorted(cache.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise InputError(OFFICIAL_HINT.format(home=cache))
        progress(f"using previously converted weights {found[-1]}")
        return found[-1]
    path = Path(weights)
    if not path.is_file():
        raise InputError(f"weights {path} do not exist")
    if path.suffix != ".pt":
        return path
    digest = sha256_file(path)
    converted = cache / f"{path.stem}-{digest[:16]}.safetensors"
    if not converted.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        progress(f"converting {path} once into {converted}")
        convert_checkpoint(path, converted, progress=progress)
    return converted


def run_serve(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import uvicorn

    from .app import create_app

    bundle = Path(args.bundle)
    if not (bundle / "index.html").is_file():
        raise InputError(f"no web bundle in {bundle}: build it first with `python build.py`")
    weights = resolve_weights(args.weights, progress)
    app = create_app(bundle, weights)
    progress(f"serving {bundle} with weights {weights.name}")
    print(f"open http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
