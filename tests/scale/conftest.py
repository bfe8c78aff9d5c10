"""Fixtures of the scale-out tests: a redis-server of their own on loopback, the converted
weights' sha256, the single-process reference they are held to, and one Ray for the session's
in-process deployments (issue 16).

A missing redis-server or Ray fails the tests, saying how to install them: never a skip."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sandseg.server.api import ApiSettings
from sandseg.weights.convert import verify_weights

from .helpers import JPEG, OCTETS, clicks

READY_S = 15.0
START_S = 300.0  # every replica of a deployment ready within this
METRIC_PUSH_ENV = (
    "RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S",
    "RAY_SERVE_REPLICA_AUTOSCALING_METRIC_PUSH_INTERVAL_S",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """redis-server on 127.0.0.1, no persistence (a restart empties it), 64 MB, LRU."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is not installed: run `bash scripts/setup.sh` (Debian: "
                "apt-get install redis-server)",
                pytrace=False,
            )
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.command = [binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        self.command += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
        self.command += ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]
        self.log = folder / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=out)
        deadline = time.monotonic() + READY_S
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start: {self.log.read_text()[-500:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bundle(tmp_path_factory) -> Path:
    """A minimal web bundle: these tests need the app, not the page."""
    root = tmp_path_factory.mktemp("bundle")
    (root / "index.html").write_text("<!doctype html><title>sandseg</title>")
    return root


@pytest.fixture(scope="session")
def weights_sha(converted_weights) -> str:
    return verify_weights(converted_weights)


@pytest.fixture(scope="session")
def photo() -> bytes:
    """A small JPEG of a real photo (the encoder's cost does not depend on its size)."""
    path = Path(__file__).resolve().parents[2].parent / "shared" / "images" / "dogs.jpg"
    if not path.is_file():
        pytest.fail(f"{path} is missing: the scale tests upload it", pytrace=False)
    return path.read_bytes()


@pytest.fixture(scope="session", autouse=True)
def one_thread_per_engine():
    """Every engine of these tests (the replicas' and the single process's) runs onnxruntime
    on one thread: the same numerics everywhere, and two replicas fit two cores."""
    import os

    from sandseg.runtime.ort_runtime import THREADS_ENV

    before = os.environ.get(THREADS_ENV)
    os.environ[THREADS_ENV] = "1"
    yield
    if before is None:
        os.environ.pop(THREADS_ENV, None)
    else:
        os.environ[THREADS_ENV] = before


@pytest.fixture(scope="session")
def single_process(bundle, converted_weights, tmp_path_factory):
    """The single process to hold replicas to: the app on an onnxruntime engine with the
    memory cache; call it with the ApiSettings to use."""
    from starlette.testclient import TestClient

    from sandseg.server.app import create_app
    from sandseg.server.engine import Engine

    engine = Engine(
        converted_weights, runtime="onnxruntime", onnx_cache=tmp_path_factory.mktemp("onnx")
    )

    def make(settings):
        app = create_app(
            bundle, converted_weights, hosts={"testserver"}, engine=engine, settings=settings
        )
        return TestClient(app, raise_server_exceptions=False)

    yield make
    engine.close()


@pytest.fixture(scope="session")
def reference(single_process, photo):
    """The photo's sha and 20 clicks with the single process's answers."""
    single = single_process(ApiSettings())
    info = single.post("/api/v1/images", content=photo, headers=JPEG).json()
    bodies = clicks(20, info["width"], info["height"])
    answers = []
    for body in bodies:
        response = single.post(
            f"/api/v1/images/{info['image_sha256']}/predict", content=body, headers=OCTETS
        )
        assert response.status_code == 200, response.text
        answers.append(response.content)
    return info["image_sha256"], list(zip(bodies, answers, strict=True))


@pytest.fixture(scope="session")
def ray_cluster():
    """sandseg.scale.ray_serve, over one Ray on loopback (2 CPUs, no dashboard) that the first
    deployment starts and every later one in this process reuses (a Ray start costs seconds);
    shut down at the end of the session, or before a test that starts its own (no_ray_here).

    Ray's proxy reports the requests in flight every second instead of every 10 s, so that an
    autoscaled deployment reacts within seconds (a Ray process reads it when it starts)."""
    monkeypatch = pytest.MonkeyPatch()
    for name in METRIC_PUSH_ENV:
        monkeypatch.setenv(name, "1")
    try:
        import ray

        from sandseg.scale import ray_serve
    except ImportError as exc:
        pytest.fail(
            f"Ray Serve is not installed ({exc}): run `bash scripts/setup.sh` or "
            "pip install -e '.[scale]'",
            pytrace=False,
        )
    yield ray_serve
    ray.shutdown()
    monkeypatch.undo()


@pytest.fixture
def no_ray_here() -> None:
    """The test starts a Ray of its own (a `sandseg serve --ray` process): the session's goes
    first, so that two never share the cores (a later deployment starts it again)."""
    import ray

    ray.shutdown()


@pytest.fixture(scope="session")
def replica_config(ray_cluster, bundle, converted_weights, weights_sha):
    """-> make(port, **fields): a ReplicaConfig of the test weights served on 127.0.0.1:`port`
    with onnxruntime on one thread, starting fast (one profiling run); `fields` replace any
    of its settings."""

    def make(port: int, **fields: Any):
        base = {
            "bundle": str(bundle),
            "weights": str(converted_weights),
            "weights_sha256": weights_sha,
            "runtime": "onnxruntime",
            "hosts": frozenset({f"127.0.0.1:{port}"}),
            "token": None,
            "settings": ApiSettings(),
            "onnx_cache": str(converted_weights.parent / "onnx"),
            "threads": 1,
            "profile_repeat": 1,
        }
        return ray_cluster.ReplicaConfig(**{**base, **fields})

    return make


@contextmanager
def deployed(ray_serve: Any, config, port: int, **options) -> Iterator[str]:
    """Deploy `config` on the session's Ray (`options`: ray_serve.start's) -> its base URL
    once every replica is ready; deleted again on the way out."""
    ray_serve.start(config, host="127.0.0.1", port=port, num_cpus=2, **options)
    try:
        assert ray_serve.wait_running(lambda: False, START_S), "the replicas did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        if serve_running():
            ray_serve.stop()


def serve_running() -> bool:
    from ray import serve

    from sandseg.scale.ray_serve import APP_NAME

    try:
        return APP_NAME in serve.status().applications
    except Exception:
        return False
