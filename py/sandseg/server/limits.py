"""Bounds on what one request may cost: body size and arrival time, media type, admission to
the GPU, end-to-end deadlines (RELIABILITY.md SV-1, SV-2, LD-1, LD-2, FT-2).

Every refusal is an ApiError; a client that goes away while we read is ClientGone."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request

from .http_errors import ApiError

# Content-Length values longer than this are over any cap (and int() refuses > 4300 digits).
_MAX_LENGTH_DIGITS = 18


class ClientGone(Exception):
    """The client disconnected before its request was handled: there is no one to answer."""


async def read_body(request: Request, max_bytes: int, timeout_s: float) -> bytes:
    """The request body, at most `max_bytes`, all of it arriving within `timeout_s`.

    Refuses: a bad Content-Length (400), a body over the cap or longer than its
    Content-Length (413, without reading on), a body shorter than its Content-Length (400),
    a body still arriving after `timeout_s` (408). While reading, memory holds at most
    `max_bytes` plus the chunk in hand; the final join may copy it once."""
    declared = _content_length(request)
    if declared is not None and declared > max_bytes:
        raise _too_large(max_bytes)
    limit = max_bytes if declared is None else declared
    chunks: list[bytes] = []
    received = 0
    try:
        async with asyncio.timeout(timeout_s), contextlib.aclosing(request.stream()) as stream:
            async for chunk in stream:
                received += len(chunk)
                if received > limit:
                    if received <= max_bytes:
                        raise _refuse(413, "the request body is longer than its Content-Length")
                    raise _too_large(max_bytes)
                chunks.append(chunk)
    except TimeoutError:
        raise _refuse(408, f"the request body did not arrive within {timeout_s:g} s") from None
    except ClientDisconnect:
        raise ClientGone() from None
    if declared is not None and received < declared:
        raise _refuse(
            400, f"the request body ended after {received} of its {declared} declared bytes"
        )
    return b"".join(chunks)


async def discard_body(request: Request, max_bytes: int, timeout_s: float) -> None:
    """Read and drop what the client is still sending, at most `max_bytes` for at most
    `timeout_s`, so that an answer given before the body (a 503) reaches it. A server that
    answers and closes while a body is still arriving makes the client's TCP stack see a
    reset, and most clients then report a connection error instead of the answer: measured
    with `sandseg bench load`, every refused 5 MB neck body ended that way."""
    declared = _content_length(request)
    if declared is not None and declared > max_bytes:
        return
    received = 0
    with contextlib.suppress(TimeoutError, ClientDisconnect):
        async with asyncio.timeout(timeout_s), contextlib.aclosing(request.stream()) as stream:
            async for chunk in stream:
                received += len(chunk)
                if received > max_bytes:
                    return


def require_content_type(request: Request, allowed: tuple[str, ...]) -> str:
    """The request's media type (lower case, parameters dropped), if it is one of `allowed`
    (lower case); otherwise (a missing header too) 415."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in allowed:
        raise ApiError(415, f"send the body with Content-Type {' or '.join(allowed)}")
    return media_type


class Admission:
    """At most `workers` requests run; at most `queue` more wait, first come first served,
    each for at most `queue_timeout_s`. Beyond that: 503 with Retry-After, at once (LD-1)."""

    def __init__(
        self,
        workers: int = 1,
        queue: int = 4,
        queue_timeout_s: float = 30.0,
        retry_after_s: int = 2,
    ) -> None:
        if workers < 1 or queue < 0 or queue_timeout_s <= 0 or retry_after_s < 0:
            raise ValueError("Admission needs workers >= 1, queue >= 0, positive timeouts")
        self.workers = workers
        self.queue = queue
        self.queue_timeout_s = queue_timeout_s
        self.retry_after_s = retry_after_s
        self._in_flight = 0
        # One future per waiter; a released slot passes straight to the oldest live one.
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @property
    def capacity(self) -> int:
        return self.workers + self.queue

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the `workers` slots for the body of the `async with`."""
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    def check(self) -> None:
        """Refuse at once (503) if a request arriving now could not even queue: called before
        reading a body, so that refusals stay fast whatever the body costs to read."""
        if self._in_flight + len(self._waiters) >= self.capacity:
            raise self._busy("the server is busy")

    async def _acquire(self) -> None:
        self.check()
        if self._in_flight < self.workers and not self._waiters:
            self._in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.queue_timeout_s):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                # The slot was handed over just as we gave up: pass it on.
                self._release()
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise self._busy(
                    f"the server is busy: no worker became free within {self.queue_timeout_s:g} s"
                ) from None
            raise

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a cancelled waiter never takes the slot
                waiter.set_result(None)
                return
        self._in_flight -= 1

    def _busy(self, message: str) -> ApiError:
        return ApiError(
            503,
            f"{message}; retry after {self.retry_after_s} s",
            {"Retry-After": str(self.retry_after_s)},
        )


async def until_disconnected(request: Request) -> None:
    """Return once the client has gone. Only after the body has been read: any body still
    unread is consumed and dropped."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class Deadline:
    """A point `seconds` from now, on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self._end


def _content_length(request: Request) -> int | None:
    values = set(request.headers.getlist("content-length"))
    if not values:
        return None
    text = values.pop().strip()
    if values or not (text.isascii() and text.isdigit()):
        raise _refuse(400, "the Content-Length header is not a non-negative integer")
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_LENGTH_DIGITS else 10**_MAX_LENGTH_DIGITS


def _too_large(max_bytes: int) -> ApiError:
    return _refuse(
        413, f"the request body is over the {_size(max_bytes)} limit: send a smaller body"
    )


def _refuse(status: int, message: str) -> ApiError:
    # A refused body may still be on its way: close the connection rather than drain it.
    return ApiError(status, message, {"Connection": "close"})


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"
