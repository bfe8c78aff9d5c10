"""The shared embedding cache (RELIABILITY.md SC-2, SC-3): two replicas of the app in this
process, each with its own engine and its own RedisCache on one redis-server, held to a third
app on the memory cache (the single process). Every answer is compared byte for byte."""

from __future__ import annotations

import re

import pytest
import redis
from starlette.testclient import TestClient

from sandseg.inputs import InputError
from sandseg.scale.redis_cache import (
    PASSWORD_ENV,
    RedisCache,
    parse_redis_url,
    password_for,
)
from sandseg.server.api import ApiSettings
from sandseg.server.app import create_app
from sandseg.server.engine import Engine
from sandseg.server.replica import ReplicaInfo

from .helpers import JPEG, OCTETS, clicks

KEY = re.compile(r"sandseg:v1:[0-9a-f]{64}:(embeddings|source)")


def _app(bundle, weights, engine: Engine, name: str) -> TestClient:
    replica = ReplicaInfo(name, 2)
    app = create_app(bundle, weights, hosts={"testserver"}, engine=engine, replica=replica)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def engines(converted_weights, weights_sha, redis_server, tmp_path_factory):
    """{"a", "b"}: two engines (onnxruntime), each with its RedisCache on one Redis, emptied
    first (the Ray tests share it: an image they left would be no encode of a's own here)."""
    redis_server.restart()
    onnx = tmp_path_factory.mktemp("onnx")
    engines = {}
    caches = {}
    for name in ("a", "b"):
        caches[name] = RedisCache(parse_redis_url(redis_server.url), weights_sha)
        engines[name] = Engine(
            converted_weights, runtime="onnxruntime", onnx_cache=onnx, cache=caches[name]
        )
    yield engines
    for engine in engines.values():
        engine.close()
    for cache in caches.values():
        cache.close()


@pytest.fixture(scope="module")
def replicas(bundle, converted_weights, engines, single_process) -> dict[str, TestClient]:
    """The two replicas and "single", the single process (the memory cache)."""
    clients = {name: _app(bundle, converted_weights, e, name) for name, e in engines.items()}
    return {**clients, "single": single_process(ApiSettings())}


@pytest.fixture(scope="module")
def uploaded(replicas, photo):
    """The photo uploaded to the single process and to replica a: (sha, reference answers)."""
    sha = replicas["single"].post("/api/v1/images", content=photo, headers=JPEG).json()
    response = replicas["a"].post("/api/v1/images", content=photo, headers=JPEG)
    assert response.status_code == 200, response.text
    same = ("image_sha256", "height", "width")  # "cached" depends on what ran before
    assert {k: response.json()[k] for k in same} == {k: sha[k] for k in same}
    bodies = clicks(4, sha["width"], sha["height"])
    reference = [_predict(replicas["single"], sha["image_sha256"], b).content for b in bodies]
    return sha["image_sha256"], list(zip(bodies, reference, strict=True))


def _predict(client: TestClient, sha: str, body: bytes):
    response = client.post(f"/api/v1/images/{sha}/predict", content=body, headers=OCTETS)
    assert response.status_code in (200, 404), response.text
    return response


@pytest.mark.requirement("SC-2")
def test_a_click_on_either_replica_equals_the_single_process(replicas, uploaded) -> None:
    sha, cases = uploaded
    for i, (body, expected) in enumerate(cases):
        name = "ab"[i % 2]
        response = _predict(replicas[name], sha, body)
        assert response.status_code == 200
        assert response.headers["x-sandseg-replica"] == name
        assert response.content == expected, f"click {i} on replica {name} differs"


@pytest.mark.requirement("SC-2")
def test_the_upload_is_shared_for_segment_everything(engines, uploaded, photo) -> None:
    sha, _ = uploaded
    shared = engines["b"].cached(sha, True)
    assert shared is not None and shared.source is not None
    assert shared.source.data == photo and shared.source.media_type == "image/jpeg"


@pytest.mark.requirement("SC-2")
def test_an_evicted_image_is_answered_404_and_a_reupload_restores_it(
    replicas, uploaded, redis_server, photo
) -> None:
    sha, cases = uploaded
    redis_server.restart()  # no persistence: every entry is gone, as after an eviction
    response = _predict(replicas["b"], sha, cases[0][0])
    assert response.status_code == 404
    assert "upload it again" in response.json()["error"]
    # What the client does on a 404: upload again (here to b, which never encoded it).
    again = replicas["b"].post("/api/v1/images", content=photo, headers=JPEG)
    assert again.status_code == 200 and again.json()["image_sha256"] == sha
    for name in "ab":
        for body, expected in cases[:2]:
            assert _predict(replicas[name], sha, body).content == expected


@pytest.mark.requirement("SC-2")
def test_the_replica_that_encoded_an_image_refills_redis_after_a_restart(
    replicas, uploaded, redis_server
) -> None:
    sha, cases = uploaded
    redis_server.restart()
    body, expected = cases[1]
    assert _predict(replicas["a"], sha, body).content == expected  # a's own copy, no encode
    assert _predict(replicas["b"], sha, body).content == expected  # from Redis again


@pytest.mark.requirement("SC-2")
def test_with_redis_down_replicas_serve_what_they_can_and_say_so(
    replicas, uploaded, redis_server, photo
) -> None:
    sha, cases = uploaded
    redis_server.stop()
    try:
        ready = replicas["b"].get("/readyz")
        assert ready.status_code == 200
        cache = ready.json()["cache"]
        assert cache["ok"] is False and "unreachable" in cache["detail"]
        body, expected = cases[2]
        assert _predict(replicas["a"], sha, body).content == expected  # a's own copy
        # b never encoded it: 404, never a 500; its own upload then serves it.
        assert _predict(replicas["b"], sha, body).status_code in (200, 404)
        again = replicas["b"].post("/api/v1/images", content=photo, headers=JPEG)
        assert again.status_code == 200
        assert _predict(replicas["b"], sha, body).content == expected
    finally:
        redis_server.start()
    assert replicas["b"].get("/readyz").json()["cache"]["ok"] is True


@pytest.mark.requirement("SC-3")
def test_keys_come_from_the_two_hashes_only(replicas, uploaded, redis_server, weights_sha) -> None:
    sha, cases = uploaded
    assert _predict(replicas["a"], sha, cases[0][0]).status_code == 200  # in Redis now
    for hostile in ["*", "x" * 64, "A" * 64, "%0d%0aFLUSHALL%0d%0a", sha[:-1], sha + "0"]:
        response = _predict(replicas["b"], hostile, cases[0][0])
        assert response.status_code == 404, hostile
    client = redis.Redis(port=redis_server.port)
    keys = [k.decode() for k in client.keys("*")]
    assert keys and all(KEY.fullmatch(k) for k in keys), keys
    cache = RedisCache(parse_redis_url(redis_server.url), weights_sha)
    assert cache.key("*", "embeddings") is None
    assert cache.key(sha, "embeddings") in keys
    assert sha not in " ".join(keys) and weights_sha not in " ".join(keys)
    cache.close()
    client.close()


@pytest.mark.requirement("SC-3")
def test_a_redis_beyond_loopback_needs_a_password_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    assert password_for(parse_redis_url("redis://127.0.0.1:6379/0")) is None
    assert password_for(parse_redis_url("redis://localhost/1")) is None
    with pytest.raises(InputError, match=PASSWORD_ENV):
        password_for(parse_redis_url("redis://10.1.2.3:6379/0"))
    with pytest.raises(InputError, match="no password in the URL"):
        parse_redis_url("redis://:secret@127.0.0.1:6379/0")
    for bad in ["http://127.0.0.1/0", "redis://127.0.0.1:x/0", "redis://127.0.0.1/0?a=b"]:
        with pytest.raises(InputError, match="redis://HOST:PORT/DB"):
            parse_redis_url(bad)
    monkeypatch.setenv(PASSWORD_ENV, "from-the-environment")
    assert password_for(parse_redis_url("redis://10.1.2.3:6379/0")) == "from-the-environment"


def test_redis_that_would_not_evict_is_named(redis_server, weights_sha) -> None:
    cache = RedisCache(parse_redis_url(redis_server.url), weights_sha)
    assert cache.check_eviction_policy() is None
    client = redis.Redis(port=redis_server.port)
    client.config_set("maxmemory-policy", "noeviction")
    try:
        assert "allkeys-lru" in (cache.check_eviction_policy() or "")
    finally:
        client.config_set("maxmemory-policy", "allkeys-lru")
        client.close()
        cache.close()
