"""The load generator of `sandseg bench load`: closed and open loops over a tiny HTTP client.

The client is a few lines of asyncio, one connection per request (`Connection: close`): no
dependency, little CPU next to the server on a small machine. Open loop means a fixed arrival
rate whatever the answers; its latency counts from the scheduled arrival, so a generator that
falls behind cannot hide queueing (no coordinated omission), and how late it was is kept.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..offload.wire import MEDIA_TYPE

REQUEST_TIMEOUT_S = 150.0  # beyond the server's own 120 s deadline


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolating linearly between order statistics (as
    numpy's default)."""
    if not values or not 0 <= q <= 100:
        raise ValueError("percentile needs values and 0 <= q <= 100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def arrival_times(rate: float, seconds: float) -> list[float]:
    """Open-loop arrivals at a fixed `rate` per second: offsets 0, 1/rate, 2/rate, ... below
    `seconds`."""
    if rate <= 0 or seconds <= 0:
        raise ValueError("arrival_times needs a positive rate and duration")
    offsets = (i / rate for i in range(math.ceil(rate * seconds) + 1))
    return [t for t in offsets if t < seconds]


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    body: bytes
    content_type: str = MEDIA_TYPE


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Sample:
    status: int  # 0: no HTTP answer (connection refused or cut, a short reply, a timeout)
    ms: float  # from the start (open loop: the scheduled arrival) to the whole answer
    lag_ms: float  # how late the request left (open loop), included in `ms`
    end: float  # perf_counter at the answer
    retry_after: str | None


async def http(
    port: int, method: str, path: str, body: bytes = b"", content_type: str = MEDIA_TYPE
) -> Reply:
    """One HTTP/1.1 request to 127.0.0.1:`port` on its own connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        if method == "POST":
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode("ascii") + b"\r\n")
        writer.write(body)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    status_head, _, payload = raw.partition(b"\r\n\r\n")
    lines = status_head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    status = lines[0].split()
    if len(status) < 2 or len(payload) != int(headers.get("content-length", -1)):
        raise ConnectionError(f"a cut or malformed reply to {method} {path}")
    return Reply(int(status[1]), headers, payload)


async def timed(port: int, route: Route, scheduled: float | None = None) -> Sample:
    """POST `route` once; latency from `scheduled` (a perf_counter time) when given."""
    sent = time.perf_counter()
    start = sent if scheduled is None else scheduled
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            reply = await http(port, "POST", route.path, route.body, route.content_type)
        status, retry_after = reply.status, reply.headers.get("retry-after")
    except (OSError, TimeoutError, ValueError):  # ValueError: a garbled status line
        status, retry_after = 0, None
    end = time.perf_counter()
    return Sample(status, (end - start) * 1000, (sent - start) * 1000, end, retry_after)


async def closed_loop(
    port: int, route: Route, concurrency: int, max_requests: int, seconds: float
) -> tuple[list[Sample], float]:
    """`concurrency` clients, each sending its next request once the last is answered (after
    its Retry-After when refused), until `max_requests` are sent or `seconds` pass.
    -> the samples and the seconds from the start to the last answer."""
    start = time.perf_counter()
    stop = start + seconds
    samples: list[Sample] = []
    sent = 0

    async def client() -> None:
        nonlocal sent
        while sent < max_requests and time.perf_counter() < stop:
            sent += 1
            sample = await timed(port, route)
            samples.append(sample)
            if sample.status == 503:
                wait = _seconds(sample.retry_after)
                await asyncio.sleep(min(wait, max(0.0, stop - time.perf_counter())))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return samples, max((s.end for s in samples), default=start) - start


async def open_loop(
    port: int, route: Route, rate: float, seconds: float
) -> tuple[list[Sample], float]:
    """Requests at `rate` per second for `seconds`, whatever the answers.
    -> the samples and the seconds from the start to the last answer."""
    start = time.perf_counter()
    tasks = []
    for offset in arrival_times(rate, seconds):
        await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
        tasks.append(asyncio.create_task(timed(port, route, scheduled=start + offset)))
    samples = list(await asyncio.gather(*tasks))
    return samples, max((s.end for s in samples), default=start) - start


def _seconds(retry_after: str | None) -> float:
    """A Retry-After in seconds (1 when missing or given as a date)."""
    try:
        return max(0.0, float(retry_after or 1))
    except ValueError:
        return 1.0


@dataclass
class Phase:
    """One route under one load. Successes (200) are timed from the (scheduled) start; refusals
    (503) from when they were sent: LD-1 is about how fast the server answers them."""

    route: str
    phase: str
    load: str
    seconds: float
    sent: int
    ok: int
    ok_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    refused: int
    refused_p50_ms: float | None
    refused_p99_ms: float | None
    refused_without_retry_after: int
    errors: int  # neither 200 nor 503
    lag_p99_ms: float  # how late the generator sent (open loop)
    statuses: dict[str, int] = field(default_factory=dict)


def summarize(route: str, phase: str, load: str, samples: list[Sample], seconds: float) -> Phase:
    ok = [s.ms for s in samples if s.status == 200]
    refused = [s for s in samples if s.status == 503]
    refused_ms = [s.ms - s.lag_ms for s in refused]
    return Phase(
        route=route,
        phase=phase,
        load=load,
        seconds=seconds,
        sent=len(samples),
        ok=len(ok),
        ok_per_s=len(ok) / seconds if seconds > 0 else 0.0,
        p50_ms=percentile(ok, 50) if ok else None,
        p99_ms=percentile(ok, 99) if ok else None,
        refused=len(refused),
        refused_p50_ms=percentile(refused_ms, 50) if refused else None,
        refused_p99_ms=percentile(refused_ms, 99) if refused else None,
        refused_without_retry_after=sum(1 for s in refused if not s.retry_after),
        errors=len(samples) - len(ok) - len(refused),
        lag_p99_ms=percentile([s.lag_ms for s in samples], 99) if samples else 0.0,
        statuses={str(k): v for k, v in sorted(Counter(s.status for s in samples).items())},
    )


def write_report(
    doc: dict[str, Any],
    text: str,
    markdown: str,
    json_path: str | None,
    markdown_path: str | None,
    progress: Callable[[str], None],
) -> None:
    """Print a load benchmark's table; write its JSON and Markdown where asked."""
    print(text)
    if json_path:
        Path(json_path).write_text(json.dumps(doc, indent=2), encoding="utf-8")
        progress(f"wrote {json_path}")
    if markdown_path:
        Path(markdown_path).write_text(markdown, encoding="utf-8")
        progress(f"wrote {markdown_path}")
