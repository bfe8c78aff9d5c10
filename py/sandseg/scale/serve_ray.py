"""`sandseg serve --ray`: check everything here, then deploy and wait for a signal.

Refusals happen before Ray starts (SV-5's bind check, the weights' pin, the cache URL and its
password). Ray runs locally (`ray.init` with this machine's CPUs, no dashboard) unless
`--ray-address` names a cluster. SIGTERM or Ctrl-C: the application is deleted (Ray stops
routing to it, requests in flight finish within the graceful timeout), then Serve stops."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..inputs import InputError
from ..server.api import ApiSettings
from ..server.cache import ImageCache, MemoryCache

READY_TIMEOUT_S = 900.0


def parse_autoscale(text: str) -> tuple[int, int]:
    low, sep, high = text.partition(":")
    if not sep or not low.isdigit() or not high.isdigit() or not 1 <= int(low) <= int(high):
        raise InputError(f"--autoscale {text!r}: use MIN:MAX with 1 <= MIN <= MAX, e.g. 1:4")
    return int(low), int(high)


def check_cache(url: str) -> None:
    """Refuse a bad --cache before Ray starts (the replicas would each fail later)."""
    if url == "memory":
        return
    from .redis_cache import parse_redis_url, password_for

    password_for(parse_redis_url(url))


def shared_cache(args: argparse.Namespace, weights_sha256: str) -> ImageCache:
    """The single process's `--cache redis://...` (it survives the process's restarts)."""
    from .redis_cache import RedisCache, parse_redis_url

    local = MemoryCache(args.cache_images)
    target = parse_redis_url(args.cache)
    return RedisCache(target, weights_sha256, ttl_s=args.cache_ttl, local=local)


def run_ray_serve(
    args: argparse.Namespace,
    bundle: Path,
    weights: Path,
    weights_sha256: str,
    hosts: frozenset[str],
    token: str | None,
    progress: Callable[[str], None],
) -> int:
    if args.replicas is not None and args.autoscale is not None:
        raise InputError("--replicas and --autoscale exclude each other: choose one")
    autoscale = parse_autoscale(args.autoscale) if args.autoscale else None
    replicas = None if autoscale else (args.replicas or 1)
    if replicas is not None and replicas < 1:
        raise InputError("--replicas must be at least 1")
    check_cache(args.cache)
    if args.cache == "memory" and (replicas or 2) > 1:
        progress(
            "warning: --cache memory with several replicas: a click must reach the replica "
            "that encoded its image (others answer 404, clients upload again); use "
            "--cache redis://127.0.0.1:6379/0 to share"
        )
    from ..server.serve_cli import sandseg_home
    from . import ray_serve  # Ray itself, only now

    config = ray_serve.ReplicaConfig(
        bundle=str(bundle.resolve()),
        weights=str(weights.resolve()),
        weights_sha256=weights_sha256,
        runtime=args.runtime,
        hosts=hosts,
        token=token,
        settings=ApiSettings(queue=args.queue, deadline_s=args.deadline),
        onnx_cache=str(sandseg_home() / "onnx"),
        cache=args.cache,
        cache_ttl_s=args.cache_ttl,
        cache_images=args.cache_images,
        replicas=replicas,
        autoscale=autoscale,
        threads=args.replica_threads,
    )
    stop = threading.Event()
    shown = f"{replicas} replicas" if autoscale is None else "{}..{} replicas".format(*autoscale)
    progress(f"starting Ray Serve ({shown}, cache {args.cache}); each replica loads the model")
    ray_serve.start(
        config,
        host=args.host,
        port=args.port,
        address=args.ray_address,
        gpus_per_replica=args.gpus_per_replica,
        after_init=lambda: _drain_on_signals(stop),
    )
    started = time.monotonic()
    if not ray_serve.wait_running(lambda: stop.is_set(), READY_TIMEOUT_S):
        if stop.is_set():  # a signal while the replicas were starting: drain all the same
            progress("stopping: requests in flight finish, new ones are refused")
            ray_serve.stop()
            return 0
        ray_serve.stop()
        raise InputError(f"the replicas were not ready within {READY_TIMEOUT_S:g} s")
    progress(f"replicas ready after {time.monotonic() - started:.0f} s")
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"open http://{host}:{args.port}/", flush=True)
    stop.wait()
    progress("stopping: requests in flight finish, new ones are refused")
    ray_serve.stop()
    return 0


def _drain_on_signals(stop: threading.Event) -> None:
    """Right after ray.init, whose core installs a SIGTERM handler that kills the process
    without draining: ours replaces it (FT-3 through Ray)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
