"""The shared embedding cache in Redis: an image encoded by one replica serves clicks on any.

An entry is a safetensors file: the (64, 64, 256) float32 embeddings, with the image's sizes
and both hashes in its metadata (checked on every read). Float32, not the issue's float16:
float16 embeddings change about 80 mask pixels per click against the single process's on the
conformance weights, and the masks must equal its own byte for byte. The upload itself (for
`everything`) is a second entry, read only by that route.

Keys are derived from the weights' and the image's sha256 only (the image's checked to be 64
hex digits first): `sandseg:v1:<sha256(weights sha256 ":" image sha256)>:<part>`, so no Redis
command carries request data (SC-3). Redis bounds the memory (`maxmemory`, `allkeys-lru`);
every entry also has a TTL. An entry Redis evicted is a miss: the route answers 404, which the
page and OffloadPredictor answer by uploading the image again (SC-2).

Redis is the authority while it answers. What this replica encoded itself is also kept in a
small local LRU: it refills Redis after an eviction or a restart (no encode again), and while
Redis is down it is what the replica serves from; a miss there is the same 404. /readyz's body
says whether Redis answers.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import threading
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..inputs import InputError
from ..model import ImageInfo
from ..server.cache import MemoryCache
from ..server.engine import EncodedImage, SourceImage
from ..weights.safetensors import dump_safetensors, load_safetensors
from ..weights.tensor import HostTensor

log = logging.getLogger("sandseg.scale")
PASSWORD_ENV = "SANDSEG_REDIS_PASSWORD"
DEFAULT_TTL_S = 3600
TIMEOUT_S = 1.0  # a Redis that does not answer within this is down for this request
EMBEDDINGS_SHAPE = (64, 64, 256)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LRU_POLICIES = ("allkeys-lru", "allkeys-lfu")


@dataclass(frozen=True)
class RedisTarget:
    host: str
    port: int
    db: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{host}:{self.port}/{self.db}"

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_redis_url(url: str) -> RedisTarget:
    """`redis://HOST:PORT/DB` -> its parts; anything else is refused in words."""
    parts = urlsplit(url)
    form = "use redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0"
    if parts.scheme != "redis":
        raise InputError(f"--cache {url!r}: not a redis:// URL; {form}")
    if parts.username or parts.password:
        raise InputError(
            f"--cache: put no password in the URL (command lines are visible to every user of "
            f"the machine); set {PASSWORD_ENV} instead"
        )
    if parts.query or parts.fragment or not parts.hostname:
        raise InputError(f"--cache {url!r}: {form}")
    try:
        port = parts.port or 6379
        db = int(parts.path.strip("/") or "0")
    except ValueError:
        raise InputError(f"--cache {url!r}: the port and DB must be numbers; {form}") from None
    return RedisTarget(parts.hostname, port, db)


def password_for(target: RedisTarget) -> str | None:
    """SC-3: a Redis beyond loopback needs a password, from the environment only."""
    password = os.environ.get(PASSWORD_ENV) or None
    if password is None and not target.loopback:
        raise InputError(
            f"--cache {target}: a Redis that is not on loopback needs a password: set "
            f"{PASSWORD_ENV} (and `requirepass` in its redis.conf)"
        )
    return password


class RedisCache:
    """ImageCache in Redis, shared by every replica that serves the same weights."""

    shared = True

    def __init__(
        self,
        target: RedisTarget,
        weights_sha256: str,
        *,
        ttl_s: int = DEFAULT_TTL_S,
        local: MemoryCache | None = None,
    ) -> None:
        if not _SHA256.fullmatch(weights_sha256):
            raise ValueError("RedisCache needs the weights' sha256 (64 hex digits)")
        self.target = target
        self.weights_sha256 = weights_sha256
        self.ttl_s = ttl_s
        self._local = local if local is not None else MemoryCache()
        self._client = redis.Redis(
            host=target.host,
            port=target.port,
            db=target.db,
            password=password_for(target),
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            # No retries with backoff: a Redis that is down costs a click one refused
            # connection, not seconds (the replica answers from what it has).
            retry=Retry(NoBackoff(), 0),
        )
        self._problem: str | None = None
        self._lock = threading.Lock()

    def key(self, image_sha256: str, part: str) -> str | None:
        """The Redis key of an image's `part` ("embeddings" or "source"); None for anything
        that is not a sha256 (it cannot be in the cache)."""
        if not _SHA256.fullmatch(image_sha256):
            return None
        digest = hashlib.sha256(f"{self.weights_sha256}:{image_sha256}".encode()).hexdigest()
        return f"sandseg:v1:{digest}:{part}"

    def get(self, key: str, source: bool = False) -> EncodedImage | None:
        embeddings_key, source_key = self.key(key, "embeddings"), self.key(key, "source")
        if embeddings_key is None or source_key is None:
            return None
        try:
            # Replies are bytes: the client does not decode them (decode_responses=False).
            blob = cast("bytes | None", self._client.get(embeddings_key))
            upload = cast("bytes | None", self._client.get(source_key) if source and blob else None)
        except redis.RedisError as exc:
            self._went_down(exc)
            return self._local.get(key, source)
        self._came_back()
        if blob is None:
            # Evicted, expired or never here. What this replica encoded goes back (no encode).
            mine = self._local.get(key, source)
            if mine is not None:
                self._store(key, mine)
            return mine
        return self._decode(key, blob, upload)

    def put(self, key: str, state: EncodedImage) -> None:
        self._local.put(key, state)
        self._store(key, state)

    def health(self) -> dict[str, object]:
        try:
            self._client.ping()
        except redis.RedisError as exc:
            self._went_down(exc)
        else:
            self._came_back()
        if self._problem is None:
            detail = "shared by every replica"
        else:
            detail = (
                f"unreachable ({self._problem}): this replica serves the images it encoded "
                "itself; others are answered 404 so that clients upload them again"
            )
        return {"backend": str(self.target), "ok": self._problem is None, "detail": detail}

    def check_eviction_policy(self) -> str | None:
        """A warning in words when Redis would refuse writes instead of evicting, else None."""
        try:
            policy = self._client.config_get("maxmemory-policy").get("maxmemory-policy")
            maxmemory = int(str(self._client.config_get("maxmemory").get("maxmemory", 0)))
        except redis.RedisError as exc:  # CONFIG may be disabled (managed Redis)
            return f"could not read Redis's memory policy ({_words(exc)}); make sure it evicts"
        if maxmemory == 0 or policy not in _LRU_POLICIES:
            return (
                f"Redis at {self.target} has maxmemory {maxmemory} and policy {policy}: set "
                "maxmemory (e.g. 1gb) and maxmemory-policy allkeys-lru, or it grows unbounded "
                "or refuses new images"
            )
        return None

    def close(self) -> None:
        self._client.close()

    # -- entries ----------------------------------------------------------------------------

    def _store(self, key: str, state: EncodedImage) -> None:
        embeddings_key, source_key = self.key(key, "embeddings"), self.key(key, "source")
        if embeddings_key is None or source_key is None:
            return
        h, w = state.info.original
        rh, rw = state.info.resized
        metadata = {
            "weights_sha256": self.weights_sha256,
            "image_sha256": key,
            "original": f"{h},{w}",
            "resized": f"{rh},{rw}",
        }
        tensors = {"embeddings": HostTensor("F32", EMBEDDINGS_SHAPE, state.embeddings)}
        try:
            with self._client.pipeline(transaction=False) as pipe:
                if state.source is not None:
                    data = state.source.data
                    upload = {"source": HostTensor("U8", (len(data),), data)}
                    media = {"media_type": state.source.media_type, "image_sha256": key}
                    pipe.set(source_key, dump_safetensors(upload, media), ex=self.ttl_s)
                pipe.set(embeddings_key, dump_safetensors(tensors, metadata), ex=self.ttl_s)
                pipe.execute()
        except redis.RedisError as exc:
            self._went_down(exc)
        else:
            self._came_back()

    def _decode(self, key: str, blob: bytes, upload: bytes | None) -> EncodedImage | None:
        tensors, metadata = load_safetensors(blob)
        embeddings = tensors.get("embeddings")
        # Never a wrong mask: the entry must say it is this image under these weights.
        if (
            metadata.get("weights_sha256") != self.weights_sha256
            or metadata.get("image_sha256") != key
            or embeddings is None
            or embeddings.dtype != "F32"
            or tuple(embeddings.shape) != EMBEDDINGS_SHAPE
        ):
            log.warning("a Redis entry for image %s did not match its key: ignored", key[:12])
            return None
        h, w = (int(v) for v in metadata["original"].split(","))
        rh, rw = (int(v) for v in metadata["resized"].split(","))
        source = None
        if upload is not None:
            parts, meta = load_safetensors(upload)
            if meta.get("image_sha256") == key and "source" in parts:
                source = SourceImage(parts["source"].data, meta["media_type"])
        return EncodedImage(embeddings.data, ImageInfo((h, w), (rh, rw)), source)

    def _went_down(self, exc: Exception) -> None:
        with self._lock:
            if self._problem is None:
                log.warning("the Redis cache at %s is unreachable: %s", self.target, _words(exc))
            self._problem = _words(exc)

    def _came_back(self) -> None:
        with self._lock:
            if self._problem is not None:
                log.warning("the Redis cache at %s answers again", self.target)
            self._problem = None


def _words(exc: Exception) -> str:
    # redis-py's messages name the address and the failure; no password is in them.
    return f"{type(exc).__name__}: {exc}"[:200]
