"""Fixtures of the scale-out tests: a redis-server of their own on loopback, the converted
weights' sha256, and the single-process reference they are held to (issue 16).

A missing redis-server or Ray fails the tests, saying how to install them: never a skip."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from sandseg.weights.convert import verify_weights

READY_S = 15.0


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
