"""Body cap and deadline, media type, bounded admission, disconnect watch, deadlines
(SV-1, SV-2, LD-1, LD-2, FT-2): scripted ASGI clients, TestClient, and a live uvicorn."""

from __future__ import annotations

import asyncio
import itertools
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message

from sandseg.server.http_errors import ApiError
from sandseg.server.limits import (
    Admission,
    ClientGone,
    Deadline,
    read_body,
    require_content_type,
    until_disconnected,
)

MiB = 1 << 20
OCTETS = "application/octet-stream"


# -- a scripted client: the ASGI messages it sends, and how often it was asked -------------


class ScriptedClient:
    def __init__(self, messages: Iterable[Message], delay_s: float = 0.0) -> None:
        self.messages = iter(messages)
        self.delay_s = delay_s
        self.calls = 0

    async def receive(self) -> Message:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        return next(self.messages)

    def request(self, headers: dict[str, str] | None = None) -> Request:
        raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        scope = {"type": "http", "method": "POST", "path": "/", "headers": raw}
        return Request(scope, self.receive)


def body(*parts: bytes) -> list[Message]:
    """A body sent in `parts`, the last one ending it."""
    return [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
        for i, p in enumerate(parts)
    ]


def endless(part: bytes) -> Iterator[Message]:
    return itertools.repeat({"type": "http.request", "body": part, "more_body": True})


def read(
    client: ScriptedClient,
    headers: dict[str, str] | None = None,
    max_bytes: int = 1000,
    timeout_s: float = 5.0,
) -> bytes:
    return asyncio.run(read_body(client.request(headers), max_bytes, timeout_s))


def refused(call: Callable[[], object]) -> ApiError:
    with pytest.raises(ApiError) as info:
        call()
    return info.value


# -- read_body ----------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False])
def test_read_body_returns_the_body_sent_in_chunks(declared: bool) -> None:
    client = ScriptedClient(body(b"ab", b"", b"cde", b"f"))
    headers = {"content-length": "6"} if declared else {}
    assert read(client, headers) == b"abcdef"


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    client = ScriptedClient(endless(b"x"))
    error = refused(lambda: read(client, {"content-length": str(64 * MiB + 1)}, 64 * MiB))
    assert error.status == 413
    assert "over the 64 MiB limit" in error.message
    assert error.headers == {"Connection": "close"}
    assert client.calls == 0


@pytest.mark.parametrize(
    "value", ["abc", "-1", "1.5", "", "+3", "0x10", "\u0661\u0662", "99999999999999999999x"]
)
def test_a_content_length_that_is_not_a_non_negative_integer_is_refused(value: str) -> None:
    error = refused(lambda: read(ScriptedClient(body(b"abc")), {"content-length": value}))
    assert error.status == 400
    assert "Content-Length" in error.message


def test_conflicting_content_lengths_are_refused() -> None:
    client = ScriptedClient(body(b"abc"))
    raw = [(b"content-length", b"3"), (b"content-length", b"4")]
    request = Request(
        {"type": "http", "method": "POST", "path": "/", "headers": raw}, client.receive
    )
    error = refused(lambda: asyncio.run(read_body(request, 1000, 5)))
    assert error.status == 400


def test_a_huge_content_length_is_over_the_cap_not_a_crash() -> None:
    error = refused(lambda: read(ScriptedClient(body(b"")), {"content-length": "9" * 5000}))
    assert error.status == 413


def test_a_streamed_body_over_the_cap_stops_the_read_at_the_chunk_that_crosses_it() -> None:
    client = ScriptedClient(endless(b"x" * 400))
    error = refused(lambda: read(client, max_bytes=1000))
    assert error.status == 413
    assert "over the 1000 bytes limit" in error.message
    assert client.calls == 3  # 400, 800, 1200: nothing read past the crossing chunk


def test_a_body_longer_than_its_content_length_is_refused_as_it_crosses_it() -> None:
    client = ScriptedClient(endless(b"x" * 8))
    error = refused(lambda: read(client, {"content-length": "10"}))
    assert error.status == 413
    assert "longer than its Content-Length" in error.message
    assert client.calls == 2


def test_a_body_shorter_than_its_content_length_is_refused() -> None:
    error = refused(lambda: read(ScriptedClient(body(b"abcd")), {"content-length": "10"}))
    assert error.status == 400
    assert "4 of its 10 declared bytes" in error.message


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(st.integers(0, 300), max_size=12),
    max_bytes=st.integers(0, 1500),
    declared=st.booleans(),
)
def test_read_body_accepts_exactly_the_bodies_within_the_cap(
    parts: list[int], max_bytes: int, declared: bool
) -> None:
    chunks = [bytes([i % 256]) * n for i, n in enumerate(parts)] or [b""]
    whole = b"".join(chunks)
    client = ScriptedClient(body(*chunks))
    headers = {"content-length": str(len(whole))} if declared else {}
    if len(whole) <= max_bytes:
        assert read(client, headers, max_bytes) == whole
        return
    assert refused(lambda: read(client, headers, max_bytes)).status == 413
    if declared:
        assert client.calls == 0
    else:  # stopped at the first chunk that crossed the cap
        sizes = itertools.accumulate(len(c) for c in chunks)
        assert client.calls == next(i for i, s in enumerate(sizes, 1) if s > max_bytes)


def test_a_body_that_trickles_in_past_the_timeout_is_refused() -> None:
    client = ScriptedClient(endless(b"x"), delay_s=0.05)
    start = time.monotonic()
    error = refused(lambda: read(client, timeout_s=0.3))
    elapsed = time.monotonic() - start
    assert error.status == 408
    assert error.message == "the request body did not arrive within 0.3 s"
    assert 0.25 < elapsed < 1.5


def test_a_body_that_stalls_is_refused_after_the_timeout() -> None:
    client = ScriptedClient(body(b"ab", b"cd"), delay_s=3600)
    error = refused(lambda: read(client, {"content-length": "4"}, timeout_s=0.2))
    assert error.status == 408


def test_a_client_that_disconnects_mid_body_is_gone() -> None:
    more = {"type": "http.request", "body": b"ab", "more_body": True}
    client = ScriptedClient([more, {"type": "http.disconnect"}])
    with pytest.raises(ClientGone):
        read(client)


# -- a tiny app, as the API uses these pieces ---------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)


async def _upload(request: Request) -> Response:
    media_type = require_content_type(request, (OCTETS, "image/png"))
    data = await read_body(request, max_bytes=1024, timeout_s=0.5)
    return JSONResponse({"bytes": len(data), "media_type": media_type})


def tiny_app(*routes: Route, gone: list[str] | None = None) -> Starlette:
    async def client_gone(request: Request, exc: Exception) -> Response:
        (gone if gone is not None else []).append(request.url.path)
        return Response(status_code=400)

    return Starlette(
        routes=[Route("/upload", _upload, methods=["POST"]), *routes],
        exception_handlers={ApiError: _api_error, ClientGone: client_gone},
    )


def test_the_app_reads_a_body_with_content_length() -> None:
    with TestClient(tiny_app()) as client:
        response = client.post("/upload", content=b"x" * 1024, headers={"content-type": OCTETS})
    assert response.status_code == 200
    assert response.json() == {"bytes": 1024, "media_type": OCTETS}


def test_the_app_refuses_a_chunked_body_over_the_cap() -> None:
    def chunks() -> Iterator[bytes]:
        yield from [b"x" * 600] * 2

    with TestClient(tiny_app()) as client:
        response = client.post("/upload", content=chunks(), headers={"content-type": OCTETS})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.headers["connection"] == "close"
    assert response.json() == {
        "error": "the request body is over the 1 KiB limit: send a smaller body"
    }


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (OCTETS, OCTETS),
        ("Application/Octet-Stream; charset=binary", OCTETS),
        ("image/PNG", "image/png"),
    ],
)
@pytest.mark.requirement("SV-1")
def test_accepted_media_types(content_type: str, expected: str) -> None:
    with TestClient(tiny_app()) as client:
        response = client.post("/upload", content=b"ab", headers={"content-type": content_type})
    assert response.status_code == 200
    assert response.json()["media_type"] == expected


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/octet-streamx",
        "text/plain",
        "image/png+x",
    ],
)
@pytest.mark.requirement("SV-1")
def test_other_media_types_are_refused(content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    with TestClient(tiny_app()) as client:
        response = client.post("/upload", content=b"ab", headers=headers)
    assert response.status_code == 415
    assert response.json() == {
        "error": "send the body with Content-Type application/octet-stream or image/png"
    }


# -- Admission ----------------------------------------------------------------------------


async def _hold(admission: Admission, release: asyncio.Event) -> None:
    async with admission.slot():
        await release.wait()


@pytest.mark.requirement("LD-1")
def test_a_hundred_concurrent_requests_admit_exactly_workers_plus_queue() -> None:
    async def scenario() -> None:
        admission = Admission(workers=1, queue=4, retry_after_s=2)
        release = asyncio.Event()
        refusals: list[float] = []

        async def attempt() -> None:
            start = time.perf_counter()
            try:
                await _hold(admission, release)
            except ApiError as exc:
                assert exc.status == 503
                assert exc.headers == {"Retry-After": "2"}
                assert exc.message.startswith("the server is busy")
                refusals.append(time.perf_counter() - start)

        tasks = [asyncio.create_task(attempt()) for _ in range(100)]
        # Until every attempt is refused, running or queued (each takes one step of the loop).
        deadline = time.monotonic() + 10
        while len(refusals) + admission.in_flight + admission.queued < 100:
            assert time.monotonic() < deadline, "attempts neither refused nor admitted"
            await asyncio.sleep(0)
        assert len(refusals) == 95
        assert max(refusals) < 0.05
        assert (admission.in_flight, admission.queued, admission.capacity) == (1, 4, 5)
        release.set()
        await asyncio.gather(*tasks)
        assert (admission.in_flight, admission.queued) == (0, 0)

    asyncio.run(scenario())


def test_waiters_are_admitted_first_come_first_served() -> None:
    async def scenario() -> list[int]:
        admission = Admission(workers=1, queue=5)
        release = asyncio.Event()
        order: list[int] = []

        async def waiter(i: int) -> None:
            async with admission.slot():
                order.append(i)
                await asyncio.sleep(0.01)

        holder = asyncio.create_task(_hold(admission, release))
        await asyncio.sleep(0)
        waiters = []
        for i in range(5):
            waiters.append(asyncio.create_task(waiter(i)))
            await asyncio.sleep(0)
        assert admission.queued == 5
        release.set()
        await asyncio.gather(holder, *waiters)
        return order

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


@pytest.mark.requirement("LD-2")
def test_a_waiter_gives_up_after_the_queue_timeout() -> None:
    async def scenario() -> None:
        admission = Admission(workers=1, queue=1, queue_timeout_s=0.2, retry_after_s=7)
        release = asyncio.Event()
        holder = asyncio.create_task(_hold(admission, release))
        await asyncio.sleep(0)
        start = time.monotonic()
        with pytest.raises(ApiError) as info:
            async with admission.slot():
                pytest.fail("admitted while the only worker was busy")
        assert 0.15 < time.monotonic() - start < 1.0
        assert info.value.status == 503
        assert info.value.headers == {"Retry-After": "7"}
        assert "within 0.2 s" in info.value.message
        assert admission.queued == 0
        release.set()
        await holder
        assert admission.in_flight == 0

    asyncio.run(scenario())


def test_a_cancelled_waiter_leaves_the_queue_and_never_takes_a_slot() -> None:
    async def scenario() -> None:
        admission = Admission(workers=1, queue=1)
        release = asyncio.Event()
        entered: list[str] = []
        holder = asyncio.create_task(_hold(admission, release))
        await asyncio.sleep(0)

        async def gone() -> None:
            async with admission.slot():
                entered.append("gone")

        waiter = asyncio.create_task(gone())
        await asyncio.sleep(0)
        assert admission.queued == 1
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        assert admission.queued == 0
        # Its queue place is free again: a new waiter is let in and gets the slot.
        late = asyncio.create_task(_hold(admission, release))
        await asyncio.sleep(0)
        assert admission.queued == 1
        release.set()
        await asyncio.gather(holder, late)
        assert entered == []
        assert (admission.in_flight, admission.queued) == (0, 0)

    asyncio.run(scenario())


def test_a_slot_handed_to_a_waiter_cancelled_at_that_moment_passes_on() -> None:
    async def scenario() -> None:
        admission = Admission(workers=1, queue=2)
        entered: list[int] = []

        async def waiter(i: int) -> None:
            async with admission.slot():
                entered.append(i)

        async with admission.slot():
            first = asyncio.create_task(waiter(1))
            second = asyncio.create_task(waiter(2))
            await asyncio.sleep(0)
        first.cancel()  # the slot was just handed to it; it has not run yet
        await asyncio.gather(first, second, return_exceptions=True)
        assert entered == [2]
        assert (admission.in_flight, admission.queued) == (0, 0)

    asyncio.run(scenario())


def test_a_waiter_cancelled_just_before_the_release_is_skipped() -> None:
    async def scenario() -> None:
        admission = Admission(workers=1, queue=2)
        entered: list[int] = []

        async def waiter(i: int) -> None:
            async with admission.slot():
                entered.append(i)

        async with admission.slot():
            first = asyncio.create_task(waiter(1))
            second = asyncio.create_task(waiter(2))
            await asyncio.sleep(0)
            first.cancel()  # still in the queue when the slot is released
        await asyncio.gather(first, second, return_exceptions=True)
        assert entered == [2]
        assert (admission.in_flight, admission.queued) == (0, 0)

    asyncio.run(scenario())


def test_the_slot_is_released_when_the_work_fails() -> None:
    async def scenario() -> None:
        admission = Admission(workers=1, queue=0)
        with pytest.raises(RuntimeError):
            async with admission.slot():
                raise RuntimeError("injected fault")
        assert admission.in_flight == 0
        async with admission.slot():
            assert admission.in_flight == 1

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "kwargs", [{"workers": 0}, {"queue": -1}, {"queue_timeout_s": 0}, {"retry_after_s": -1}]
)
def test_admission_refuses_nonsense_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Admission(**kwargs)  # type: ignore[arg-type]


# -- until_disconnected and Deadline --------------------------------------------------------


def test_until_disconnected_returns_once_the_client_is_gone() -> None:
    client = ScriptedClient([*body(b"late"), {"type": "http.disconnect"}])
    asyncio.run(until_disconnected(client.request()))
    assert client.calls == 2


def test_until_disconnected_waits_while_the_client_is_there() -> None:
    client = ScriptedClient([{"type": "http.disconnect"}], delay_s=3600)

    async def wait_briefly() -> None:
        await asyncio.wait_for(until_disconnected(client.request()), 0.1)

    with pytest.raises(TimeoutError):
        asyncio.run(wait_briefly())


def test_deadline_counts_down_to_zero() -> None:
    deadline = Deadline(0.2)
    assert 0.1 < deadline.remaining() <= 0.2
    assert not deadline.expired
    time.sleep(0.25)
    assert deadline.remaining() == 0.0
    assert deadline.expired
    assert Deadline(0).expired


# -- live: uvicorn on 127.0.0.1, raw sockets ------------------------------------------------

ADMISSION = Admission(workers=1, queue=0)


async def _compute(request: Request) -> Response:
    """As the API runs a job: under a slot, stopped when the client goes (FT-2)."""
    await read_body(request, 1024, 5.0)
    async with ADMISSION.slot():
        work = asyncio.ensure_future(asyncio.sleep(30))
        gone = asyncio.ensure_future(until_disconnected(request))
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        for task in (work, gone):
            task.cancel()
        await asyncio.gather(work, gone, return_exceptions=True)
    return PlainTextResponse("done")


GONE: list[str] = []


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    app = tiny_app(Route("/compute", _compute, methods=["POST"]), gone=GONE)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free, log_level="error", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield free
    server.should_exit = True
    thread.join(timeout=10)


def head(port: int, path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Type: {OCTETS}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exchange(port: int, first: bytes, parts: Iterable[bytes] = (), pause_s: float = 0.0):
    """Send `first`, then `parts` every `pause_s` until the server answers; the answer's
    status, JSON error text and the seconds from the first byte to the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        start = time.monotonic()
        sock.sendall(first)
        for part in parts:
            if select.select([sock], [], [], pause_s)[0]:
                break  # answered already: stop sending
            sock.sendall(part)
        raw = _read_response(sock)
        elapsed = time.monotonic() - start
    status_line, _, rest = raw.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode(), elapsed


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or pytest.fail(f"connection closed after {data!r}")
    header, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in header.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += sock.recv(65536) or pytest.fail("connection closed mid-body")
    return header + b"\r\n\r\n" + rest


def test_live_a_content_length_that_promises_more_than_arrives_times_out(port: int) -> None:
    status, error, elapsed = exchange(port, head(port, "/upload", content_length="100") + b"x" * 10)
    assert status == 408
    assert "did not arrive within 0.5 s" in error
    assert 0.4 < elapsed < 3.0


@pytest.mark.requirement("LD-2")
def test_live_a_slow_chunked_body_times_out(port: int) -> None:
    first = head(port, "/upload", transfer_encoding="chunked")
    status, error, elapsed = exchange(port, first, [b"1\r\nx\r\n"] * 50, pause_s=0.1)
    assert status == 408
    assert "did not arrive within 0.5 s" in error
    assert 0.4 < elapsed < 3.0


@pytest.mark.requirement("SV-2")
def test_live_a_chunked_body_over_the_cap_is_refused(port: int) -> None:
    first = head(port, "/upload", transfer_encoding="chunked")
    status, error, _ = exchange(port, first, [b"200\r\n" + b"x" * 512 + b"\r\n"] * 8, 0.02)
    assert status == 413
    assert "over the 1 KiB limit" in error


@pytest.mark.requirement("SV-2")
def test_live_a_declared_length_over_the_cap_is_refused_at_once(port: int) -> None:
    status, _, elapsed = exchange(port, head(port, "/upload", content_length=str(64 * MiB)))
    assert status == 413
    assert elapsed < 0.5


@pytest.mark.requirement("FT-2")
def test_live_a_client_gone_mid_upload_is_dropped(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head(port, "/upload", content_length="100") + b"x" * 10)
        time.sleep(0.1)
    _wait_for(lambda: GONE == ["/upload"], 2.0, "the upload was not dropped as ClientGone")


@pytest.mark.requirement("FT-2")
def test_live_a_client_gone_mid_compute_frees_its_slot_within_a_second(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head(port, "/compute", content_length="3") + b"abc")
        _wait_for(lambda: ADMISSION.in_flight == 1, 5.0, "the compute never took its slot")
    start = time.monotonic()
    _wait_for(lambda: ADMISSION.in_flight == 0, 1.0, "the slot was not freed within 1 s")
    assert time.monotonic() - start < 1.0


def _wait_for(condition: Callable[[], bool], timeout_s: float, failure: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.01)
