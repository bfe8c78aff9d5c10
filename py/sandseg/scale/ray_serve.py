"""`sandseg serve --ray`: the same Starlette app (every route, its hardening, the page) as a Ray
Serve application, one model per replica, behind Ray's HTTP proxy.

Each replica builds the app from a `ReplicaConfig` (paths and settings, no live objects): its
own engine on its own adapter, its own admission (1 on the GPU + the queue), the image cache
(`redis://`: shared by every replica; `memory`: each replica's own, so a click must reach the
replica that has the image). Ray's health check asks the app's own /readyz; on shutdown Ray
stops routing to the replica, lets the requests in flight finish (graceful_shutdown_timeout_s)
and then the replica marks itself draining and closes its engine (FT-3).

Adapters (adapters.py): a replica that Ray gave a GPU (`--gpus-per-replica`) takes the wgpu
adapter of that index among the machine's GPU adapters (`ray.get_gpu_ids()`; Vulkan ignores
CUDA_VISIBLE_DEVICES); otherwise the replica of rank r takes adapter r modulo their number
(lavapipe where there is no GPU). The choice is logged and published in /api/v1/model's
`replicas.adapter` (null under `--runtime onnxruntime`, which takes none).

Autoscaling (`--autoscale MIN:MAX`) targets one request in flight per replica: a replica runs
one job at a time on its device, so a second request already waits a whole job (Ray's default
target, 2, would let every replica's latency double before it adds one).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ray import serve

from ..inputs import InputError
from ..server.api import ApiSettings
from ..server.cache import ImageCache, MemoryCache
from ..server.replica import ReplicaInfo

log = logging.getLogger("sandseg.scale")
APP_NAME = "sandseg"
DEPLOYMENT = "SandsegReplica"
GRACEFUL_SHUTDOWN_S = 25.0  # FT-3: in flight requests finish, exit within 30 s
HEALTH_PERIOD_S = 5.0
PROXY_CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
PROXY_CALLBACK = "sandseg.scale.proxy:proxy_middlewares"
# Ray's defaults but for the target: scale up after 30 s over the target, down after 600 s
# under it (a new replica loads the model and measures it, and memory caches start empty).
AUTOSCALING: dict[str, float] = {"target_ongoing_requests": 1}


@dataclass(frozen=True)
class ReplicaConfig:
    """What every replica needs to build the app; sent to the replicas by Ray (pickled)."""

    bundle: str
    weights: str
    weights_sha256: str
    runtime: str
    hosts: frozenset[str]
    token: str | None
    settings: ApiSettings
    onnx_cache: str
    cache: str = "memory"  # or redis://HOST:PORT/DB
    cache_ttl_s: int = 3600
    cache_images: int = 16
    replicas: int | None = 1  # None: autoscaled
    autoscale: tuple[int, int] | None = None
    threads: int | None = None  # CPU threads per replica (None: the runtimes' default)
    profile_repeat: int = 2  # 0: no start-up measurement (the model's timings read null)
    # Tests only (the CLI never sets it): a folder where a file `unready-<replica id>` makes
    # that replica's /readyz fail, as a wedged replica's would, so that Ray replaces it.
    test_hooks: str | None = None


def make_cache(config: ReplicaConfig) -> ImageCache:
    local = MemoryCache(config.cache_images)
    if config.cache == "memory":
        return local
    from .redis_cache import RedisCache, parse_redis_url

    target = parse_redis_url(config.cache)
    return RedisCache(target, config.weights_sha256, ttl_s=config.cache_ttl_s, local=local)


@serve.ingress()
class SandsegReplica:
    """One replica: the engine, the app, Ray's health check on /readyz."""

    def __init__(self, config: ReplicaConfig) -> None:
        from ..server.app import create_app
        from ..server.engine import Engine
        from ..server.lifecycle import Readiness

        context = serve.get_replica_context()
        adapter = None
        if config.runtime != "onnxruntime":
            adapter = _take_adapter(context.rank.rank if context.rank is not None else 0)
        self.replica = ReplicaInfo(
            f"{context.deployment}-{context.replica_tag}",
            config.replicas,
            config.autoscale,
            adapter,
            None if config.autoscale is None else RunningReplicas(context.deployment),
        )
        cache = make_cache(config)
        warning = getattr(cache, "check_eviction_policy", lambda: None)()
        if warning:
            log.warning("%s", warning)
        self.engine = Engine(
            Path(config.weights),
            cache_images=config.cache_images,
            runtime=config.runtime,
            onnx_cache=Path(config.onnx_cache),
            cache=cache,
        )
        if config.profile_repeat:
            self.engine.profile = self.engine.measure(config.profile_repeat)
        self.readiness = Readiness()
        self.asgi = create_app(
            Path(config.bundle),
            Path(config.weights),
            hosts=config.hosts,
            engine=self.engine,
            settings=config.settings,
            token=config.token,
            readiness=self.readiness,
            replica=self.replica,
        )
        self.probe_host = sorted(config.hosts)[0]
        self.unready_flag = None
        if config.test_hooks is not None:
            self.unready_flag = Path(config.test_hooks) / f"unready-{self.replica.id}"
        self.readiness.mark_ready()

    def __serve_build_asgi_app__(self) -> Any:
        return self.asgi

    async def check_health(self) -> None:
        """Ray's health check is the app's own /readyz (raising marks the replica unhealthy)."""
        if self.unready_flag is not None and self.unready_flag.exists():
            self.readiness.mark_draining()
        status = await _get(self.asgi, "/readyz", self.probe_host)
        if status != 200:
            raise RuntimeError(f"/readyz answered {status}")

    async def __del__(self) -> None:
        # Ray calls this once the requests in flight have finished (or the timeout passed).
        self.readiness.mark_draining()
        self.engine.close()


def application(
    config: ReplicaConfig,
    *,
    gpus_per_replica: float = 0.0,
    max_queued: int = 64,
    autoscaling: dict[str, float] | None = None,
    health_period_s: float = HEALTH_PERIOD_S,
) -> Any:
    """The Ray Serve application of `config` (fixed replicas or autoscaled; `autoscaling`:
    Ray autoscaling_config fields over AUTOSCALING; Ray asks /readyz every `health_period_s`
    and replaces a replica after 3 failures in a row)."""
    options: dict[str, Any] = {
        "name": DEPLOYMENT,
        # Beyond the app's own admission (1 + queue), so that its 503s with Retry-After
        # answer an overload; Ray's queue in front is bounded too (its 503 has Retry-After).
        "max_ongoing_requests": config.settings.queue + 8,
        "max_queued_requests": max_queued,
        "graceful_shutdown_timeout_s": GRACEFUL_SHUTDOWN_S,
        "graceful_shutdown_wait_loop_s": 0.5,
        "health_check_period_s": health_period_s,
        "health_check_timeout_s": 10.0,
        "ray_actor_options": {
            "num_cpus": config.threads or 1,
            "num_gpus": gpus_per_replica,
            "runtime_env": {"env_vars": _thread_env(config.threads)},
        },
    }
    if config.autoscale is not None:
        low, high = config.autoscale
        options["autoscaling_config"] = {
            **AUTOSCALING,
            **(autoscaling or {}),
            "min_replicas": low,
            "max_replicas": high,
        }
    else:
        options["num_replicas"] = config.replicas
    return serve.deployment(**options)(SandsegReplica).bind(config)


def start(
    config: ReplicaConfig,
    *,
    host: str,
    port: int,
    address: str | None = None,
    num_cpus: int | None = None,
    gpus_per_replica: float = 0.0,
    after_init: Callable[[], None] | None = None,
    autoscaling: dict[str, float] | None = None,
    health_period_s: float = HEALTH_PERIOD_S,
) -> None:
    """Connect to (or start) Ray (then call `after_init`), start Serve's proxy on host:port,
    deploy (`wait_running` tells when every replica is ready)."""
    import ray
    from ray.serve.config import HTTPOptions

    # Ray's proxy builds its middlewares from this import path, in its own process, which
    # inherits it from here when Ray starts locally (a cluster's nodes need it set too).
    os.environ.setdefault(PROXY_CALLBACK_ENV, PROXY_CALLBACK)
    if not ray.is_initialized():
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    if after_init is not None:
        after_init()
    serve.start(http_options=HTTPOptions(host=host, port=port))
    app = application(
        config,
        gpus_per_replica=gpus_per_replica,
        autoscaling=autoscaling,
        health_period_s=health_period_s,
    )
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)


class RunningReplicas:
    """How many replicas of `deployment` run now, as Serve's controller reports them (an
    autoscaled deployment's count for /api/v1/model); asked at most every MAX_AGE_S, None
    when Serve cannot say."""

    MAX_AGE_S = 2.0

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment
        self._known: tuple[float, int | None] = (-self.MAX_AGE_S, None)

    def __call__(self) -> int | None:
        asked, count = self._known
        if time.monotonic() - asked < self.MAX_AGE_S:
            return count
        try:
            app = serve.status().applications.get(APP_NAME)
            states = app.deployments[self.deployment].replica_states if app else {}
            # Keys are ReplicaState (a str enum) or, through the controller, plain strings.
            running = (
                n for state, n in states.items() if getattr(state, "value", state) == "RUNNING"
            )
            count = sum(running) or None
        except Exception as exc:  # the controller busy or gone: say nothing rather than fail
            log.warning("could not read the replica count from Serve: %s", exc)
            count = None
        self._known = (time.monotonic(), count)
        return count


def wait_running(abort: Callable[[], bool], timeout_s: float) -> bool:
    """Poll Serve until the application runs (every replica ready): True; False once `abort()`
    or the timeout; a deployment that failed raises InputError with Ray's message."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not abort():
        status = serve.status().applications.get(APP_NAME)
        if status is not None and status.status == "RUNNING":
            return True
        if status is not None and status.status == "DEPLOY_FAILED":
            raise InputError(f"the replicas failed to start: {status.message[-800:]}")
        time.sleep(0.5)
    return False


def stop() -> None:
    """Drain and remove the application (in flight requests finish), then Serve itself."""
    serve.delete(APP_NAME, _blocking=True)
    serve.shutdown()


def with_replicas(config: ReplicaConfig, replicas: int) -> ReplicaConfig:
    return replace(config, replicas=replicas, autoscale=None)


def _thread_env(threads: int | None) -> dict[str, str]:
    if threads is None:
        return {}
    n = str(threads)
    # onnxruntime (runtime/ort_runtime.py), lavapipe, and numpy's BLAS.
    return {"SANDSEG_CPU_THREADS": n, "LP_NUM_THREADS": n, "OMP_NUM_THREADS": n}


def _take_adapter(rank: int) -> dict[str, object]:
    """Install this replica's wgpu device before the engine asks for one -> what it took."""
    import ray
    import wgpu

    from ..gpu import set_device
    from ..gpu.native import NativeDevice
    from .adapters import choose_adapter

    adapters = wgpu.gpu.enumerate_adapters_sync()
    infos = [adapter.info for adapter in adapters]
    choice = choose_adapter(infos, rank, ray.get_gpu_ids())
    info = infos[choice.index]
    log.warning("replica rank %d uses adapter %s (%s)", rank, info["device"], choice.reason)
    set_device(NativeDevice(adapters[choice.index]))
    return {
        "index": choice.index,
        "device": info["device"],
        "type": info["adapter_type"],
        "backend": info["backend_type"],
        "reason": choice.reason,
    }


async def _get(app: Any, path: str, host: str) -> int:
    """GET `path` on the ASGI `app` in process -> the status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", host.encode())],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status
