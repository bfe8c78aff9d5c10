"""Replicas that come and go on Ray Serve (issue 16): `--autoscale 1:2` adds the second replica
under load, and a replica whose /readyz fails Ray's health check is replaced; every answer held
byte for byte to the single process's, none later than its deadline. One autoscaled deployment
for the module on the session's Ray (conftest's ray_cluster): single-thread onnxruntime
replicas sharing the session's redis-server."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest

from .conftest import START_S, deployed, free_port
from .helpers import JPEG, REQUEST_S, click_until_answered, replica_actors, running_replicas

# Ray 2.60 uses pydantic APIs that pydantic 2 deprecates (warnings are errors in this suite).
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    # A look-back shorter than `metrics_interval_s`, a field Ray deprecates (the proxy reports
    # as often as its environment says: conftest's ray_cluster).
    pytest.mark.filterwarnings("ignore:`look_back_period_s`:FutureWarning"),
]
# Ray's autoscaler, made to react within seconds: it adds a replica as soon as the mean of
# requests in flight per replica over 2 s (Ray's proxy reports them every second in these
# tests: conftest's ray_cluster) is over the target (1); it removes none within the module.
FAST = {"upscale_delay_s": 1.0, "look_back_period_s": 2.0, "downscale_delay_s": 600.0}
# Ray asks every replica's /readyz each second (5 s when served): a replica whose /readyz fails
# is replaced after 3 s.
HEALTH_PERIOD_S = 1.0
# Three clients on one replica: one request runs, two wait in its queue (the app's default,
# 4): three in flight, over the target of one.
CLIENTS = 3


@dataclass(frozen=True)
class Autoscaled:
    url: str
    hooks: Path  # ReplicaConfig.test_hooks: `unready-<replica id>` fails that one's /readyz


@pytest.fixture(scope="module")
def autoscaled(ray_cluster, replica_config, redis_server, tmp_path_factory):
    port = free_port()
    hooks = tmp_path_factory.mktemp("hooks")
    config = replica_config(
        port,
        cache=redis_server.url,
        replicas=None,
        autoscale=(1, 2),
        test_hooks=str(hooks),
        profile_repeat=0,  # a new replica answers sooner
    )
    options = {"autoscaling": FAST, "health_period_s": HEALTH_PERIOD_S}
    with deployed(ray_cluster, config, port, **options) as url:
        yield Autoscaled(url, hooks)


class Load:
    """`clients` threads clicking through the ingress, each click until answered (as the page
    does), until the block ends; every answer is kept with its time and the expected mask."""

    def __init__(self, url: str, reference, photo: bytes, clients: int) -> None:
        self.url, self.reference, self.photo = url, reference, photo
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        # (when answered, replica, mask, expected mask, seconds taken)
        self.results: list[tuple[float, str, bytes, bytes, float]] = []
        self.pool = ThreadPoolExecutor(clients)
        self.clients = [self.pool.submit(self._client, 7 * i) for i in range(clients)]

    def __enter__(self) -> Load:
        return self

    def __exit__(self, failure: type[BaseException] | None, *_: object) -> None:
        self.stopping.set()
        self.pool.shutdown()
        if failure is None:
            for client in self.clients:
                client.result()  # raises what failed a client

    def _client(self, offset: int) -> None:
        sha, cases = self.reference
        with httpx.Client(base_url=self.url, timeout=REQUEST_S) as client:
            for i in itertools.count(offset):
                if self.stopping.is_set():
                    return
                body, expected = cases[i % len(cases)]
                started = time.monotonic()
                _status, replica, mask = click_until_answered(client, sha, body, self.photo)[-1]
                now = time.monotonic()
                with self.lock:
                    self.results.append((now, replica, mask, expected, now - started))

    def replicas(self, since: float = 0.0) -> set[str]:
        with self.lock:
            return {replica for when, replica, *_ in self.results if when >= since}

    def wait_for(self, condition: Callable[[], bool], timeout_s: float, what: str) -> float:
        """Poll `condition` until it holds -> the seconds it took; a client that failed (a
        wrong status, no answer in time) fails the test at once."""
        started = time.monotonic()
        while not condition():
            for client in self.clients:
                if client.done():
                    client.result()  # raises what failed the client
            if time.monotonic() - started > timeout_s:
                pytest.fail(f"{what}: not within {timeout_s:g} s")
            time.sleep(0.2)
        return time.monotonic() - started

    def summary(self) -> tuple[int, int, float]:
        """-> (clicks answered, wrong masks, slowest click in seconds)."""
        with self.lock:
            wrong = sum(mask != expected for _, _, mask, expected, _ in self.results)
            slowest = max((seconds for *_, seconds in self.results), default=0.0)
            return len(self.results), wrong, slowest


def upload_and_describe(url: str, photo: bytes) -> dict:
    """Upload the photo (to Redis, for every replica) -> /api/v1/model's `replicas`."""
    with httpx.Client(base_url=url, timeout=REQUEST_S) as client:
        response = client.post("/api/v1/images", content=photo, headers=JPEG)
        assert response.status_code == 200, response.text
        return client.get("/api/v1/model").json()["replicas"]


def test_autoscaling_adds_the_second_replica_under_load(autoscaled, reference, photo) -> None:
    replicas = upload_and_describe(autoscaled.url, photo)
    assert replicas["count"] == 1 and replicas["autoscale"] == {"min": 1, "max": 2}, replicas
    assert running_replicas() == 1, "an autoscaled deployment starts at its minimum"
    with Load(autoscaled.url, reference, photo, CLIENTS) as load:
        took = load.wait_for(lambda: len(load.replicas()) == 2, START_S, "a second replica")
        # Answers from both replicas, not just the first one from the new replica.
        answered = len(load.results)
        load.wait_for(lambda: len(load.results) >= answered + 4, REQUEST_S, "more answers")
    clicks, wrong, slowest = load.summary()
    print(f"autoscaled 1 -> 2 replicas in {took:.1f} s under {CLIENTS} clients: {clicks} clicks")
    assert wrong == 0, f"{wrong} of {clicks} masks differ from the single process's"
    assert slowest < REQUEST_S
    assert running_replicas() == 2
    # /api/v1/model follows: every replica reports the count Ray has now (cached for 2 s).
    with httpx.Client(base_url=autoscaled.url, timeout=REQUEST_S) as client:
        deadline = time.monotonic() + REQUEST_S
        counts: set[int | None] = set()
        while counts != {2} and time.monotonic() < deadline:
            counts = {client.get("/api/v1/model").json()["replicas"]["count"] for _ in range(4)}
        assert counts == {2}, f"/api/v1/model's replica counts: {counts}"


@pytest.mark.requirement("SC-1")
def test_a_replica_failing_its_health_check_is_replaced(
    autoscaled, reference, photo, evidence
) -> None:
    upload_and_describe(autoscaled.url, photo)
    with Load(autoscaled.url, reference, photo, CLIENTS) as load:
        # Run alone, this test scales up first, as the one before shows.
        load.wait_for(lambda: len(load.replicas()) == 2, START_S, "two replicas answering")
        before = load.replicas()
        sick = sorted(before)[0]
        (autoscaled.hooks / f"unready-{sick}").touch()
        flagged = time.monotonic()
        took = load.wait_for(
            lambda: bool(load.replicas(since=flagged) - before) and sick not in replica_actors(),
            START_S,
            f"Ray to replace {sick}, whose /readyz fails",
        )
    clicks, wrong, slowest = load.summary()
    new = sorted(load.replicas(since=flagged) - before)
    evidence(
        "SC-1",
        f"replica {sick} failed its /readyz under {CLIENTS} clients: Ray replaced it by "
        f"{new[0]} in {took:.0f} s; {clicks} clicks, {wrong} wrong masks, slowest {slowest:.1f} s",
    )
    assert wrong == 0 and slowest < REQUEST_S
