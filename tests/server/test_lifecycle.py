"""Graceful shutdown (FT-3): readiness goes false at once, in-flight requests finish, the
server exits soon after; in a thread, and as a real process sent SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandseg.server.lifecycle import GracefulServer, Readiness

SLOW_S = 1.0


def test_readiness_starts_false_and_never_returns_after_draining() -> None:
    readiness = Readiness()
    assert (readiness.ready, readiness.draining) == (False, False)
    readiness.mark_ready()
    assert (readiness.ready, readiness.draining) == (True, False)
    readiness.mark_draining()
    assert (readiness.ready, readiness.draining) == (False, True)
    readiness.mark_ready()
    assert readiness.ready is False


def test_graceful_server_needs_a_graceful_timeout() -> None:
    app = Starlette()
    with pytest.raises(ValueError, match="timeout_graceful_shutdown"):
        GracefulServer(uvicorn.Config(app), Readiness())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, timeout_s: float = 10.0) -> tuple[int, dict[str, object]]:
    """One GET over a fresh connection (closed after the answer): status and JSON body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_server_told_to_exit_drains_and_finishes_its_requests() -> None:
    readiness = Readiness()
    entered = threading.Event()

    async def slow(request: Request) -> Response:
        entered.set()
        await asyncio.sleep(SLOW_S)
        return JSONResponse({"ready_at_end": readiness.ready})

    port = free_port()
    config = uvicorn.Config(
        Starlette(routes=[Route("/slow", slow)]),
        host="127.0.0.1",
        port=port,
        log_level="error",
        timeout_graceful_shutdown=5,
    )
    server = GracefulServer(config, readiness)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    readiness.mark_ready()

    answers: list[tuple[int, dict[str, object]]] = []
    client = threading.Thread(target=lambda: answers.append(get(port, "/slow")))
    client.start()
    assert entered.wait(5), "the slow request never reached the app"

    server.handle_exit(signal.SIGTERM, None)
    assert (readiness.ready, readiness.draining) == (False, True)
    stopped = time.monotonic()
    client.join(timeout=10)
    thread.join(timeout=10)
    assert answers == [(200, {"ready_at_end": False})]
    assert not thread.is_alive()
    assert time.monotonic() - stopped < SLOW_S + 3


SCRIPT = """
    import asyncio, sys

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from sandseg.server.lifecycle import GracefulServer, Readiness

    readiness = Readiness()

    async def slow(request):
        print("in flight", flush=True)
        await asyncio.sleep({slow_s})
        return JSONResponse({{"ready_at_end": readiness.ready}})

    app = Starlette(routes=[Route("/slow", slow)])
    config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error",
                            timeout_graceful_shutdown=25)
    readiness.mark_ready()
    GracefulServer(config, readiness).run()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
@pytest.mark.requirement("FT-3")
def test_sigterm_lets_the_request_in_flight_finish_and_exits(tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent(SCRIPT.format(slow_s=SLOW_S)))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "py")}
    with subprocess.Popen(
        [sys.executable, str(script), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        try:
            _wait_until_listening(port, process)
            answers: list[tuple[int, dict[str, object]]] = []
            client = threading.Thread(target=lambda: answers.append(get(port, "/slow")))
            client.start()
            assert process.stdout is not None
            assert select.select([process.stdout], [], [], 5)[0], "no request in flight"
            assert process.stdout.readline() == b"in flight\n"

            process.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            client.join(timeout=10)
            code = process.wait(timeout=10)
            assert answers == [(200, {"ready_at_end": False})]
            # uvicorn re-raises the signal once it has shut down.
            assert code == -signal.SIGTERM
            assert time.monotonic() - stopped < SLOW_S + 3
        finally:
            if process.poll() is None:
                process.kill()
        assert process.stderr is not None
        assert b"Traceback" not in process.stderr.read()


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while True:
        assert process.poll() is None, "the server process exited at start-up"
        assert time.monotonic() < deadline, "the server process did not start listening"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
