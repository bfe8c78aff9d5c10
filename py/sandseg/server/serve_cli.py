"""`sandseg serve`: find or prepare the weights, then run the app with uvicorn."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..predictor import InputError
from ..weights import manifest_path, verify_weights
from ..weights.files import sha256_file
from ..weights.identity import DEMO_NOTICE, is_demo, weights_info
from .conversion import convert_in_subprocess
from .page_weights import page_weights

OFFICIAL_HINT = (
    "no weights: pass --weights mobile_sam.pt (the official MobileSAM checkpoint, from "
    "https://github.com/ChaoningZhang/MobileSAM/tree/master/weights) or a .safetensors made by "
    "`sandseg convert`; converted weights are also picked up from {home}"
)


# The official checkpoint, fetched only when no --weights is given and none were converted
# before; `SANDSEG_WEIGHTS_URL` overrides it. It is used only once it converts (restricted
# reader, exact vit_t layout check): nothing in it is ever executed.
OFFICIAL_URL = "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt"
DOWNLOAD_TIMEOUT_S = 10.0
DOWNLOAD_MAX_BYTES = 100 * 1024 * 1024  # the official file is about 40 MB
_CHUNK = 1 << 20


def sandseg_home() -> Path:
    return Path(os.environ.get("SANDSEG_HOME", Path.home() / ".cache" / "sandseg"))


def resolve_weights(
    weights: str | None, progress: Callable[[str], None], fallback: str | None = None
) -> Path:
    """A .safetensors path to serve: the given file, or a .pt converted once into the cache
    (keyed by its sha256). Without `weights`: the newest weights converted before that are
    not the demo weights, else the official checkpoint downloaded and converted, else (when
    that fails and `fallback` is given) the fallback weights, converted once like a given
    .pt."""
    cache = sandseg_home() / "weights"
    if weights is not None:
        return _given_weights(Path(weights), cache, progress)
    for found in sorted(cache.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)[::-1]:
        # Demo weights converted before (the fallback, or run.sh's old default) do not stand
        # in the way of the official checkpoint.
        if not is_demo(found):
            progress(f"using previously converted weights {found}")
            return found
    try:
        return download_official(cache, progress)
    except InputError as exc:
        if fallback is None:
            raise
        progress(str(exc))
        progress(f"falling back to {fallback}")
        return _given_weights(Path(fallback), cache, progress)


def _given_weights(path: Path, cache: Path, progress: Callable[[str], None]) -> Path:
    if not path.is_file():
        raise InputError(f"weights {path} do not exist")
    if path.suffix != ".pt":
        return path
    digest = sha256_file(path)
    converted = cache / f"{path.stem}-{digest[:16]}.safetensors"
    if not converted.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        progress(f"converting {path} once into {converted}")
        convert_in_subprocess(path, converted, progress)  # SV-8: never unpickle in the server
    return converted


def weights_url() -> str:
    return os.environ.get("SANDSEG_WEIGHTS_URL") or OFFICIAL_URL


def _fetch(url: str, dst: Path, progress: Callable[[str], None]) -> None:
    """Stream `url` into `dst`, refusing more than DOWNLOAD_MAX_BYTES; raise OSError/ValueError."""
    if not url.lower().startswith(("https://", "http://")):
        raise ValueError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "sandseg"})
    try:
        opened = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the open connection
        raise ValueError(f"HTTP {exc.code} {exc.reason}") from None
    with opened as response:
        length_header = response.headers.get("Content-Length")
        total = int(length_header) if length_header and length_header.isdigit() else None
        if total is not None and total > DOWNLOAD_MAX_BYTES:
            raise ValueError(f"the file is {total} bytes, over the {DOWNLOAD_MAX_BYTES} cap")
        done, next_report = 0, 10
        with open(dst, "wb") as out:
            while chunk := response.read(_CHUNK):
                done += len(chunk)
                if done > DOWNLOAD_MAX_BYTES:
                    raise ValueError(f"the file is over the {DOWNLOAD_MAX_BYTES} byte cap")
                out.write(chunk)
                if total:
                    percent = done * 100 // total
                    if percent >= next_report:
                        progress(f"downloaded {percent}% ({done} of {total} bytes)")
                        next_report = percent // 10 * 10 + 10
                elif done >= next_report * _CHUNK:
                    progress(f"downloaded {done} bytes")
                    next_report = done // _CHUNK // 10 * 10 + 10
        if total is not None and done != total:
            raise ValueError(f"got {done} of {total} bytes")


def download_official(cache: Path, progress: Callable[[str], None]) -> Path:
    """Download the official checkpoint into `cache`, verify it by converting it, and return
    the converted .safetensors; on any failure leave nothing behind and raise InputError."""
    hint = OFFICIAL_HINT.format(home=cache)
    url = weights_url()
    cache.mkdir(parents=True, exist_ok=True)
    # A private folder in the cache, so the manifest names the file mobile_sam.pt.
    folder = Path(tempfile.mkdtemp(dir=cache, prefix=".download-"))
    part = folder / "mobile_sam.pt"
    try:
        progress(f"no converted weights yet: downloading {url}")
        try:
            _fetch(url, part, progress)
        except (OSError, ValueError) as exc:  # no network, timeouts, HTTP errors, too big
            raise InputError(f"{hint} (download failed: {exc})") from exc
        digest = sha256_file(part)
        converted = cache / f"mobile_sam-{digest[:16]}.safetensors"
        progress(f"verifying the download by converting it into {converted}")
        try:
            convert_in_subprocess(part, converted, progress)
        except Exception as exc:
            raise InputError(
                f"{hint} (download failed: the downloaded file could not be verified as the "
                f"MobileSAM checkpoint: {exc})"
            ) from exc
        return converted
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_serve(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import uvicorn

    from .api import ApiSettings
    from .app import create_app
    from .engine import Engine
    from .guards import allowed_hosts_for, check_bind
    from .lifecycle import GracefulServer, Readiness

    token = args.token or os.environ.get("SANDSEG_TOKEN") or None
    check_bind(args.host, token)  # SV-5: refuses before any work is done
    bundle = Path(args.bundle)
    if not (bundle / "index.html").is_file():
        raise InputError(f"no web bundle in {bundle}: build it first with `python build.py`")
    weights = resolve_weights(args.weights, progress, args.fallback_weights)
    identity = weights_info(weights, pin_weights(weights, args.weights_sha256))
    if identity["demo"]:
        print(DEMO_NOTICE, flush=True)
    page = page_weights(weights, sandseg_home() / "page-weights")
    progress(f"the page downloads {page.name} ({page.stat().st_size} bytes, float16-stored)")
    hosts = allowed_hosts_for(args.host, args.port) | {h.lower() for h in args.allow_host}
    cache = None
    if args.ray or args.cache != "memory":  # issue 16: sandseg.scale, only when asked for
        from ..scale import serve_ray

        weights_sha = verify_weights(weights, args.weights_sha256)
        if args.ray:
            return serve_ray.run_ray_serve(
                args, bundle, weights, weights_sha, frozenset(hosts), token, progress
            )
        cache = serve_ray.shared_cache(args, weights_sha)
    progress(f"loading {weights.name} (runtime {args.runtime})")
    engine = Engine(
        weights,
        cache_images=args.cache_images,
        runtime=args.runtime,
        onnx_cache=sandseg_home() / "onnx",
        progress=progress,
        cache=cache,
    )
    progress("profiling the encoder stages and the decoder (the planner's server times)")
    engine.profile = engine.measure()
    stages = ", ".join(
        f"{k} {v:.2f} s ({engine.plan.parts[k]})" for k, v in engine.profile.stage_s.items()
    )
    progress(f"server profile: {stages}; decode {engine.profile.decode_s:.2f} s")
    progress(f"runtimes: {engine.plan.reason}")
    readiness = Readiness()
    settings = ApiSettings(queue=args.queue, deadline_s=args.deadline)
    app = create_app(
        bundle,
        weights,
        hosts=allowed_hosts_for(args.host, args.port) | {h.lower() for h in args.allow_host},
        engine=engine,
        settings=settings,
        token=token,
        readiness=readiness,
        page_weights=page,
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = GracefulServer(config, readiness)
    readiness.mark_ready()
    demo = ", the demo weights" if identity["demo"] else ""
    progress(f"serving {bundle} with weights {weights.name} ({identity['name']}{demo})")
    print(f"open http://{_url_host(args.host)}:{args.port}/", flush=True)
    try:
        server.run()
    finally:
        engine.close()
    return 0


# FT-3: in-flight requests get this long to finish after SIGTERM (exit within 30 s).
GRACEFUL_SHUTDOWN_S = 25


def pin_weights(weights: Path, expected_sha256: str | None) -> str:
    """FT-4 / SV-5: serve only weights pinned by sha256, from their manifest or the command
    line; a truncated, flipped or swapped file refuses to start. Returns their sha256."""
    if expected_sha256 is None and not manifest_path(weights).exists():
        raise InputError(
            f"{weights} has no manifest ({manifest_path(weights).name}) to pin its sha256: "
            "pass --weights-sha256, or make it with `sandseg convert`"
        )
    return verify_weights(weights, expected_sha256)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
