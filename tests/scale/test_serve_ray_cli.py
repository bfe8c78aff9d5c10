"""`sandseg serve --ray` and `--cache` refuse what they cannot serve before anything starts
(no Ray, no connection to a Redis): in words, naming what to do (issue 16, SC-3)."""

from __future__ import annotations

import pytest

from sandseg.cli import main
from sandseg.scale.redis_cache import PASSWORD_ENV
from sandseg.scale.serve_ray import parse_autoscale


@pytest.fixture
def serve(bundle, converted_weights, capsys):
    def run(*args: str) -> tuple[int, str]:
        argv = ["serve", "--weights", str(converted_weights), "--bundle", str(bundle), *args]
        status = main(argv)
        return status, capsys.readouterr().err

    return run


def test_replicas_and_autoscale_exclude_each_other(serve) -> None:
    status, err = serve("--ray", "--replicas", "2", "--autoscale", "1:3")
    assert status == 2 and "--replicas and --autoscale exclude each other" in err


@pytest.mark.parametrize("text", ["3", "0:2", "3:1", "a:b", "1:"])
def test_autoscale_takes_min_max(text: str) -> None:
    with pytest.raises(Exception, match="MIN:MAX"):
        parse_autoscale(text)
    assert parse_autoscale("1:4") == (1, 4)


@pytest.mark.requirement("SC-3")
@pytest.mark.parametrize("ray", [True, False])
def test_a_remote_redis_without_a_password_refuses_to_start(serve, monkeypatch, ray) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    # A documentation address (TEST-NET-1): refused before any connection is tried.
    status, err = serve(*(["--ray"] if ray else []), "--cache", "redis://192.0.2.1:6379/0")
    assert status == 2 and PASSWORD_ENV in err


def test_a_bad_cache_url_says_the_form(serve) -> None:
    status, err = serve("--cache", "redis://:pw@127.0.0.1/0")
    assert status == 2 and "no password in the URL" in err
    status, err = serve("--cache", "memcached://127.0.0.1/0")
    assert status == 2 and "redis://HOST:PORT/DB" in err


@pytest.mark.requirement("FT-3")
def test_serve_ray_answers_from_both_replicas_and_drains_on_sigterm(
    bundle, converted_weights, redis_server, tmp_path, no_ray_here
) -> None:
    """The issue's "done when": `sandseg serve --ray --replicas 2 --cache redis://...` answers
    the page and the API from both replicas; SIGTERM drains and exits 0."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx2 as httpx

    from .conftest import free_port

    port = free_port()
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "sandseg.cli", "serve", "--ray", "--replicas", "2"]
    command += ["--replica-threads", "1", "--runtime", "onnxruntime", "--port", str(port)]
    command += ["--cache", redis_server.url, "--weights", str(converted_weights)]
    command += ["--bundle", str(bundle)]
    env = {k: v for k, v in os.environ.items() if k != "SANDSEG_TOKEN"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out, env=env)
    try:
        seen: set[str] = set()
        deadline = time.monotonic() + 300
        while len(seen) < 2 and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-2000:]
            try:
                for path in ("/", "/api/v1/model"):
                    r = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
                    if r.status_code == 200:
                        seen.add(r.headers["x-sandseg-replica"])
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert len(seen) == 2, f"replicas seen: {seen}"
        model = httpx.get(f"http://127.0.0.1:{port}/api/v1/model", timeout=10).json()
        assert model["replicas"]["count"] == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()[-2000:]
        assert "stopping: requests in flight finish" in log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
