"""The Ray Serve tier (issue 16; RELIABILITY.md SC-1, SC-2, FT-3 through Ray): on the session's
Ray (conftest's ray_cluster: loopback, 2 CPUs, no dashboard), two single-thread replicas on
onnxruntime sharing the session's redis-server, held byte for byte to the single process."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import numpy as np
import pytest

from sandseg.offload import messages
from sandseg.server.api import ApiSettings

from .conftest import START_S, deployed, free_port
from .helpers import (
    JPEG,
    OCTETS,
    REQUEST_S,
    click,
    click_until_answered,
    replica_actors,
    running_replicas,
)

# Ray 2.60 uses pydantic APIs that pydantic 2 deprecates (warnings are errors in this suite).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
# queue 0: one request per replica at a time, so that an overload is easy to make (503s);
# a 1 MiB body cap, so that a 413 needs no 64 MiB upload.
SETTINGS = ApiSettings(queue=0, max_body_bytes=1 << 20, deadline_s=60.0)


@pytest.fixture(scope="module")
def ray_app(ray_cluster, replica_config, redis_server):
    port = free_port()
    config = replica_config(port, settings=SETTINGS, cache=redis_server.url, replicas=2)
    with deployed(ray_cluster, config, port) as url:
        yield url


@pytest.fixture(scope="module")
def single(bundle, converted_weights, single_process):
    return single_process(SETTINGS)


@pytest.mark.requirement("SC-2")
def test_twenty_clicks_through_ray_equal_the_single_process(ray_app, reference, photo) -> None:
    sha, cases = reference
    with httpx.Client(base_url=ray_app, timeout=REQUEST_S) as client:
        up = client.post("/api/v1/images", content=photo, headers=JPEG)
        assert up.status_code == 200 and up.json()["image_sha256"] == sha
        seen = set()
        for i, (body, expected) in enumerate(cases):
            answers = click_until_answered(client, sha, body, photo)
            _status, replica, content = answers[-1]
            assert content == expected, f"click {i} (replica {replica}) differs"
            seen.add(replica)
        assert len(seen) == 2, f"one replica answered every click: {seen}"
        model = client.get("/api/v1/model").json()
        assert model["replicas"]["count"] == 2
        assert model["replicas"]["this"] in seen
        page = client.get("/")
        assert page.status_code == 200 and page.headers["x-sandseg-replica"] in seen


def _hostile(client, sha: str) -> dict[str, tuple[int, str]]:
    """The same hostile requests against either server -> {case: (status, error words)}."""
    huge = np.zeros(600_000, np.uint8).tobytes() * 2  # 1.2 MB: over the 1 MiB cap
    bad_prompt = messages.encode_image(b"\0" * 12, 2, 2, 3)  # an image where a prompt goes
    cases = {
        "415": client.post("/api/v1/images", content=b"x", headers={"Content-Type": "text/plain"}),
        "413": client.post("/api/v1/images", content=huge, headers=OCTETS),
        "422": client.post(f"/api/v1/images/{sha}/predict", content=bad_prompt, headers=OCTETS),
        "403": client.get("/api/v1/model", headers={"Origin": "http://evil.example"}),
        "404": client.post(
            f"/api/v1/images/{'0' * 64}/predict", content=click(1, 1), headers=OCTETS
        ),
    }
    return {name: (r.status_code, r.json()["error"]) for name, r in cases.items()}


@pytest.mark.requirement("SC-1")
def test_hostile_requests_get_the_single_process_answers(ray_app, single, reference) -> None:
    sha, _ = reference
    with httpx.Client(base_url=ray_app, timeout=REQUEST_S) as client:
        through_ray = _hostile(client, sha)
        # 503: more uploads at once than replicas (queue 0): the extra ones are refused.
        images = [messages.encode_image(bytes([i]) * (64 * 64 * 3), 64, 64, 3) for i in range(4)]
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(lambda b: client.post("/api/v1/images", content=b, headers=OCTETS), images)
            )
    alone = _hostile(single, sha)
    assert all(name == str(status) for name, (status, _) in through_ray.items()), through_ray
    # The same words, but for 403's, which name the host the server is reached by.
    assert {k: v for k, v in through_ray.items() if k != "403"} == {
        k: v for k, v in alone.items() if k != "403"
    }
    assert alone["403"][0] == 403
    refused = [r for r in answers if r.status_code == 503]
    assert refused and all(r.headers.get("retry-after") for r in refused)
    assert all(r.status_code in (200, 503) for r in answers)
    assert all("x-sandseg-replica" in r.headers for r in answers)


@pytest.mark.requirement("SC-1")
def test_a_replica_killed_mid_load_loses_no_answer(ray_app, reference, photo, evidence) -> None:
    import ray

    sha, cases = reference
    killed: list[str] = []
    results: list[list] = []
    lock = threading.Lock()

    def load(offset: int) -> None:
        with httpx.Client(base_url=ray_app, timeout=REQUEST_S) as client:
            for i in range(8):
                body, expected = cases[(offset + i) % len(cases)]
                started = time.monotonic()
                answers = click_until_answered(client, sha, body, photo)
                with lock:
                    results.append([*answers, time.monotonic() - started, expected])
                if offset == 0 and i == 1:
                    killed.append(answers[-1][1])
                    _kill_replica(ray, answers[-1][1])

    before = set(replica_actors())
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(load, [0, 10]))
    assert killed, "no replica was killed"
    wrong = sum(r[-3][2] != r[-1] for r in results)
    refused = sum(1 for r in results for status, *_ in r[:-2] if status == 503)
    slowest = max(r[-2] for r in results)
    evidence(
        "SC-1",
        f"replica {killed[0]} killed under 2 clients: {len(results)} clicks, {wrong} wrong "
        f"masks, {refused} answered 503 + Retry-After and retried, slowest {slowest:.1f} s",
    )
    assert wrong == 0 and slowest < REQUEST_S
    _wait_for_replicas(2, before)


def _kill_replica(ray, replica: str) -> None:
    actors = replica_actors()
    assert replica in actors, f"{replica} is not among {sorted(actors)}"
    ray.kill(ray.get_actor(actors[replica], namespace="serve"), no_restart=True)


def _wait_for_replicas(count: int, before: set[str]) -> None:
    """Ray replaces the killed replica: `count` replicas run, one of them new."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if running_replicas() == count and set(replica_actors()) - before:
            return
        time.sleep(0.5)
    pytest.fail(f"Ray did not bring back {count} replicas within {START_S:g} s")


@pytest.mark.requirement("SC-2")
def test_redis_restarted_mid_session_then_reuploads_give_the_right_masks(
    ray_app, reference, photo, redis_server
) -> None:
    sha, cases = reference
    redis_server.restart()
    with httpx.Client(base_url=ray_app, timeout=REQUEST_S) as client:
        for body, expected in cases[:6]:
            answers = click_until_answered(client, sha, body, photo)
            assert answers[-1][2] == expected


@pytest.mark.requirement("FT-3")
def test_shutdown_finishes_requests_in_flight_and_refuses_new_ones(ray_app) -> None:
    from sandseg.scale import ray_serve

    image = messages.encode_image(bytes(range(256)) * (96 * 96 * 3 // 256), 96, 96, 3)
    with ThreadPoolExecutor(2) as pool, httpx.Client(base_url=ray_app, timeout=REQUEST_S) as c:
        in_flight = pool.submit(c.post, "/api/v1/images", content=image, headers=OCTETS)
        time.sleep(0.5)  # the upload is on its way: the encode takes seconds
        stopping = pool.submit(ray_serve.stop)
        assert in_flight.result().status_code == 200
        stopping.result(timeout=60)
        started = time.monotonic()
        try:
            status = c.get("/readyz", timeout=10).status_code
        except httpx.TransportError:
            status = 0  # the proxy is gone: refused at connect
        assert status != 200 and time.monotonic() - started < 10
