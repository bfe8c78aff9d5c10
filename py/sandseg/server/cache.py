"""Where encoded images live between their upload and the clicks on them.

`ImageCache` is what the engine asks: `get(key)` an encoded image (or None: the client is
told to upload it again), `put(key, state)` after an encode, `health()` for /readyz's body.
Keys are the sha256 of the uploaded bytes. `MemoryCache` (the default) is this process's
bounded LRU; `sandseg serve --cache redis://HOST:PORT/DB` swaps in `sandseg.scale.redis_cache`
(shared by every replica), imported only then.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .engine import EncodedImage

DEFAULT_CACHE_IMAGES = 16
# The cache's bytes (embeddings, 4 MiB an image, and the uploads kept for `everything`) are
# bounded too: beyond this the oldest images go, the newest always stays.
DEFAULT_CACHE_BYTES = 512 * 1024 * 1024


class ImageCache(Protocol):
    # Whether other processes see the same images (then /readyz reports its health).
    shared: bool

    def get(self, key: str, source: bool = False) -> EncodedImage | None:
        """The image encoded under `key`, or None. `source`: the caller needs the upload
        too (`everything`); a backend that keeps it apart fetches it only then."""
        ...

    def put(self, key: str, state: EncodedImage) -> None: ...

    def health(self) -> dict[str, object]:
        """{"backend": ..., "ok": bool, "detail": words}: shown in /readyz's body."""
        ...


class MemoryCache:
    """This process's images, least recently used first out, bounded in count and bytes."""

    shared = False

    def __init__(
        self, images: int = DEFAULT_CACHE_IMAGES, max_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        self._images: OrderedDict[str, EncodedImage] = OrderedDict()
        self._max_images = images
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, key: str, source: bool = False) -> EncodedImage | None:
        with self._lock:
            state = self._images.get(key)
            if state is not None:
                self._images.move_to_end(key)
            return state

    def put(self, key: str, state: EncodedImage) -> None:
        with self._lock:
            self._images[key] = state
            self._images.move_to_end(key)
            while len(self._images) > self._max_images or (
                len(self._images) > 1 and self._total_bytes() > self._max_bytes
            ):
                self._images.popitem(last=False)

    def health(self) -> dict[str, object]:
        return {"backend": "memory", "ok": True, "detail": "this process's own LRU"}

    def _total_bytes(self) -> int:
        return sum(
            len(state.embeddings) + (len(state.source.data) if state.source else 0)
            for state in self._images.values()
        )
