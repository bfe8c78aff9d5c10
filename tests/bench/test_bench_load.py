"""`sandseg bench load`: the load generator's pure parts against numpy and a stub server, then
one quick run against a real `sandseg serve` (GPU tier)."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sandseg.bench.loadgen import (
    Route,
    Sample,
    arrival_times,
    closed_loop,
    open_loop,
    percentile,
    summarize,
)
from sandseg.cli import main
from tests.reliability import LONG, quick_or_long

# -- percentiles and arrivals -----------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 7, 100, 1001])
def test_percentile_matches_numpy(rng, count) -> None:
    values = rng.exponential(300.0, count).tolist()
    for q in (0, 1, 25, 50, 90, 99, 99.9, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q), rel=1e-12)


def test_percentile_does_not_reorder_its_input() -> None:
    values = [3.0, 1.0, 2.0]
    assert percentile(values, 50) == 2.0
    assert values == [3.0, 1.0, 2.0]


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 100.5)])
def test_percentile_refuses_no_values_or_a_bad_q(values, q) -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile(values, q)


def test_arrivals_are_evenly_spaced_from_zero_and_stop_before_the_end() -> None:
    assert arrival_times(2.5, 4.0) == pytest.approx([i * 0.4 for i in range(10)])
    assert arrival_times(3.0, 1.0) == pytest.approx([0.0, 1 / 3, 2 / 3])
    assert arrival_times(0.5, 1.0) == [0.0]


@pytest.mark.parametrize("rate", [0.8, 1.92, 2.69, 3.0, 7.3, 10.0])
@pytest.mark.parametrize("seconds", [1.0, 10.0, 20.0, 120.0])
def test_arrivals_keep_the_rate(rate, seconds) -> None:
    times = arrival_times(rate, seconds)
    assert len(times) == math.ceil(rate * seconds - 1e-9)
    assert times[-1] < seconds
    gaps = np.diff(times)
    assert np.allclose(gaps, 1 / rate) if len(gaps) else True


@pytest.mark.parametrize(("rate", "seconds"), [(0, 1), (-1, 1), (1, 0)])
def test_arrivals_need_a_positive_rate_and_duration(rate, seconds) -> None:
    with pytest.raises(ValueError, match="positive"):
        arrival_times(rate, seconds)


def test_summary_times_successes_from_the_schedule_and_refusals_from_the_send() -> None:
    samples = [
        Sample(200, 300.0, 0.0, 0.0, None),
        Sample(200, 500.0, 100.0, 0.0, None),
        Sample(503, 40.0, 30.0, 0.0, "2"),  # answered 10 ms after it left, 30 ms late
        Sample(503, 12.0, 0.0, 0.0, None),  # no Retry-After
        Sample(504, 9.0, 0.0, 0.0, None),
        Sample(0, 1.0, 0.0, 0.0, None),
    ]
    phase = summarize("predict", "overload", "2/s", samples, 2.0)
    assert (phase.sent, phase.ok, phase.refused, phase.errors) == (6, 2, 2, 2)
    assert phase.ok_per_s == 1.0
    assert (phase.p50_ms, phase.refused_p50_ms) == (400.0, 11.0)
    assert phase.refused_without_retry_after == 1
    assert phase.statuses == {"0": 1, "200": 2, "503": 2, "504": 1}


# -- the loops against a stub server ----------------------------------------------------------


def serve_stub(status_for: Callable[[int], int], body: bytes = b"{}"):
    """A loopback HTTP server answering the n-th request with status_for(n); -> (start, seen)."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        seen.append(await reader.readexactly(length))
        status = status_for(len(seen))
        extra = b"Retry-After: 0\r\n" if status == 503 else b""
        writer.write(
            b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), extra, body)
        )
        await writer.drain()
        writer.close()

    async def start() -> asyncio.Server:
        return await asyncio.start_server(handle, "127.0.0.1", 0)

    return start, seen


def test_open_loop_sends_on_schedule_whatever_the_answers() -> None:
    start, seen = serve_stub(lambda n: 503 if n % 3 == 0 else 200)

    async def scenario() -> tuple[list[Sample], float]:
        async with await start() as server:
            port = server.sockets[0].getsockname()[1]
            return await open_loop(port, Route("r", "/x", b"abc"), rate=40.0, seconds=0.5)

    samples, seconds = asyncio.run(scenario())
    assert len(samples) == len(seen) == 20
    assert seen == [b"abc"] * 20
    assert [s.status for s in samples].count(503) == 6
    assert all(s.retry_after == "0" for s in samples if s.status == 503)
    assert 0.45 < seconds < 2.0
    assert all(s.ms >= s.lag_ms >= 0 for s in samples)


def test_closed_loop_stops_at_its_request_count_and_retries_after_a_refusal() -> None:
    start, seen = serve_stub(lambda n: 503 if n == 1 else 200)

    async def scenario() -> tuple[list[Sample], float]:
        async with await start() as server:
            port = server.sockets[0].getsockname()[1]
            route = Route("r", "/x", b"body")
            return await closed_loop(port, route, concurrency=3, max_requests=7, seconds=30)

    samples, seconds = asyncio.run(scenario())
    assert len(samples) == len(seen) == 7
    assert sorted(s.status for s in samples) == [200] * 6 + [503]
    assert seconds < 5


def test_a_refused_connection_is_an_error_not_a_crash() -> None:
    start, _ = serve_stub(lambda n: 200)

    async def scenario() -> tuple[list[Sample], float]:
        server = await start()
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await closed_loop(port, Route("r", "/x", b""), 1, 2, 5)

    samples, _ = asyncio.run(scenario())
    assert [s.status for s in samples] == [0, 0]
    assert summarize("r", "sweep", "c=1", samples, 1.0).errors == 2


# -- a real server ------------------------------------------------------------------------------


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>sandseg</title>")
    return root


def test_a_missing_bundle_is_a_one_line_error(capsys, tmp_path, converted_weights) -> None:
    code = main(["bench", "load", "--weights", str(converted_weights), "--bundle", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("sandseg: error: no web bundle") and err.count("\n") == 1


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.requirement("LD-3")
def test_quick_load_run_against_a_real_server(
    tmp_path, bundle, converted_weights, evidence
) -> None:
    """`sandseg bench load --quick` (the long form: 10 minutes sustained at 0.8x saturation)"""
    out_json, out_md = tmp_path / "load.json", tmp_path / "load.md"
    argv = ["bench", "load", "--weights", str(converted_weights), "--bundle", str(bundle)]
    argv += [*quick_or_long(["--quick"], []), "--json", str(out_json), "--markdown", str(out_md)]
    assert main(argv) == 0
    doc = json.loads(out_json.read_text())
    assert doc["cpu_count"] >= 1 and doc["platform"] and doc["date"]
    assert set(doc["routes"]) == {"predict", "stages/neck"}
    for name, route in doc["routes"].items():
        phases = [p["phase"] for p in route["phases"]]
        assert phases == ["unloaded", "sweep", "sweep", "sweep", "sweep", "sustained", "overload"]
        assert route["saturation_rps"] > 0, name
        for phase in route["phases"]:
            if phase["ok"]:
                assert phase["p99_ms"] >= phase["p50_ms"] > 0, (name, phase)
        overload = route["phases"][-1]
        # The quick overload is 10 s at 2x a noisy saturation estimate: the queue does not
        # always fill. Refusals themselves are tested exactly in tests/server (LD-1).
        assert overload["sent"] > 0, f"{name}: no overload was sent"
        assert overload["refused_without_retry_after"] == 0
        assert overload["ok"] > 0
    for name, route in doc["routes"].items():
        sustained = next(p for p in route["phases"] if p["phase"] == "sustained")
        evidence(
            "LD-3",
            f"{name}: saturation {route['saturation_rps']:.2f} req/s, unloaded p50 "
            f"{route['unloaded_p50_ms']:.0f} ms, sustained p99 {sustained['p99_ms']:.0f} ms",
        )
    verdicts = [f"{c['check']} {c['measured']}" for c in doc["checks"] if c["route"] == "all"]
    evidence("LD-3", "; ".join(verdicts))
    if LONG:  # the real LD-3 run: every verdict must hold
        assert all(c["passed"] for c in doc["checks"]), doc["checks"]
    else:
        # The quick form sustains seconds, not LD-3's 10 minutes: it cannot show the
        # requirement, so it reads GAP, with the verdicts it missed (a busy machine misses
        # p99 <= 3x the unloaded p50 by far: 14x was measured beside other test runs).
        missed = [
            f"{c['route']} {c['check']} {c['measured']} (limit {c['limit']})"
            for c in doc["checks"]
            if c["requirement"] == "LD-3" and not c["passed"]
        ]
        evidence.gap(
            "LD-3",
            "quick form: a short sustained run, not 10 minutes (python -m tests.reliability "
            f"--long runs it); {'missed: ' + '; '.join(missed) if missed else 'no verdict missed'}",
        )
    memory = doc["memory"]
    assert memory["start_mib"] > 0 and memory["end_mib"] > 0 and memory["peak_mib"] > 0
    assert memory["growth_mib"] == pytest.approx(memory["end_mib"] - memory["start_mib"])
    assert {c["requirement"] for c in doc["checks"]} == {"LD-1", "LD-3"}
    markdown = out_md.read_text()
    assert "| route | phase |" in markdown and "| requirement |" in markdown
    assert "PASS" in markdown or "FAIL" in markdown


def test_a_server_that_refuses_to_start_is_a_one_line_error(capsys, tmp_path, bundle) -> None:
    weights = tmp_path / "unpinned.safetensors"
    weights.write_bytes(b"not weights")  # no manifest: serve refuses before loading anything
    code = main(["bench", "load", "--weights", str(weights), "--bundle", str(bundle), "--quick"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[-1].startswith("sandseg: error: `sandseg serve` exited: ")
    assert "has no manifest" in err[-1]
