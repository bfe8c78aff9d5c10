"""`sandseg bench load`: throughput, latency and overload behaviour of a live `sandseg serve`
(RELIABILITY.md LD-1, LD-3).

The server runs as its own process on a free loopback port (its event loop and GPU thread do
not share a GIL with the load generator); it profiles the model at start-up, and the run
waits for /readyz. Routes: `predict` (one point, 3 masks, against an image uploaded once)
and `stages/neck` (a float16 boundary tensor in, float16 embeddings out). Phases, each for
every route in turn:

1. unloaded: sequential requests -> p50, the baseline of LD-3;
2. sweep: closed-loop clients at concurrency 1, 2, 4, 8 (a client refused with 503 waits
   its Retry-After) -> successful req/s, p50/p99; saturation = the best req/s of the sweep;
3. sustained: open loop at 0.8x saturation -> p99 against the unloaded p50, non-200 answers,
   the server's RSS (VmRSS) across all routes' sustained runs, the sweep being the warm-up;
4. overload: open loop at 2x saturation -> the share refused, how fast the refusals come,
   whether each carries Retry-After, and whether the accepted requests still succeed.

The load generator (closed and open loops, the HTTP client) is `loadgen.py`. All routes and
phases run against one server; every number is printed as a table and written as JSON and
Markdown with a PASS/FAIL per requirement. The verdicts do not change the exit status.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..inputs import Prompt
from ..offload import messages
from ..predictor import InputError
from .loadgen import Phase, Route, closed_loop, http, open_loop, summarize, timed, write_report

CONCURRENCY = (1, 2, 4, 8)
QUEUE = 4  # passed to `sandseg serve --queue`: 1 request on the GPU + 4 waiting
SUSTAIN_FACTOR = 0.8
OVERLOAD_FACTOR = 2.0
REFUSAL_MS = 50.0  # LD-1: a refusal is answered within this
P99_OVER_P50 = 3.0  # LD-3: sustained p99 <= this x the unloaded p50
MEMORY_MIB = 64.0  # LD-3: RSS growth over the sustained run below this
LD3_SECONDS = 600.0
START_TIMEOUT_S = 300.0  # loading + profiling (3 full encodes) on a software adapter
IMAGE_HW = (768, 1024)  # the synthetic photo uploaded once for `predict`


class LoadBenchError(Exception):
    """The run itself failed (the server did not start, no request succeeded)."""


@dataclass(frozen=True)
class Plan:
    """How long each phase runs, per route."""

    warmup_requests: int  # per route, before the unloaded requests
    unloaded_requests: int
    sweep_requests: int  # per concurrency level, at most
    sweep_seconds: float  # per concurrency level, at most
    sustain_seconds: float
    overload_seconds: float


def plan_for(quick: bool, sustain_seconds: float | None) -> Plan:
    if quick:
        return Plan(1, 5, 8, 2.0, 20.0 if sustain_seconds is None else sustain_seconds, 10.0)
    return Plan(3, 20, 100, 15.0, LD3_SECONDS if sustain_seconds is None else sustain_seconds, 20.0)


# -- the server -----------------------------------------------------------------------------


class ServeProcess:
    """`sandseg serve` in its own process on a free loopback port; its output goes to `log`."""

    def __init__(self, weights: Path, bundle: Path, log: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.log = log
        self.command = [sys.executable, "-m", "sandseg.cli", "serve", "--weights", str(weights)]
        self.command += ["--bundle", str(bundle), "--port", str(self.port), "--queue", str(QUEUE)]
        env = {k: v for k, v in os.environ.items() if k != "SANDSEG_TOKEN"}
        env.setdefault("XDG_RUNTIME_DIR", "/tmp")
        with log.open("wb") as out:
            self.process = subprocess.Popen(self.command, stdout=out, stderr=out, env=env)

    async def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise LoadBenchError(f"`sandseg serve` exited: {self.last_line()}")
            if time.monotonic() > deadline:
                raise LoadBenchError(f"`sandseg serve` was not ready within {timeout_s:g} s")
            try:
                if (await http(self.port, "GET", "/readyz")).status == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.5)

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kib) / 1024

    def last_line(self) -> str:
        lines = self.log.read_text(errors="replace").strip().splitlines()
        return lines[-1].removeprefix("sandseg: error: ") if lines else "no output"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # FT-3: it drains and exits within 30 s
            try:
                self.process.wait(timeout=35)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# -- the run --------------------------------------------------------------------------------


def run_load_bench(
    weights: Path,
    bundle: Path,
    *,
    quick: bool,
    sustain_seconds: float | None,
    json_path: str | None,
    markdown_path: str | None,
    progress: Callable[[str], None],
) -> int:
    if not weights.is_file():
        raise InputError(f"weights {weights} do not exist")
    if not (bundle / "index.html").is_file():
        raise InputError(f"no web bundle in {bundle}: build it with `python build.py`")
    if sustain_seconds is not None and sustain_seconds <= 0:
        raise InputError("--sustain-seconds must be positive")
    plan = plan_for(quick, sustain_seconds)
    with tempfile.TemporaryDirectory(prefix="sandseg-load-") as tmp:
        server = ServeProcess(weights, bundle, Path(tmp) / "serve.log")
        try:
            doc = asyncio.run(_measure(server, plan, progress))
        except LoadBenchError as exc:
            print(f"sandseg: error: {exc}", file=sys.stderr)
            return 2
        finally:
            server.stop()
    doc["plan"] = asdict(plan)
    doc["checks"] = checks(doc)
    text, markdown = report(doc, plan)
    write_report(doc, text, markdown, json_path, markdown_path, progress)
    return 0


async def _measure(
    server: ServeProcess, plan: Plan, progress: Callable[[str], None]
) -> dict[str, Any]:
    started = time.perf_counter()
    progress("starting `sandseg serve` (it loads and profiles the model first)")
    await server.wait_ready(START_TIMEOUT_S)
    startup_s = time.perf_counter() - started
    progress(f"server ready after {startup_s:.1f} s (pid {server.process.pid})")
    model = json.loads((await http(server.port, "GET", "/api/v1/model")).body)
    routes, upload_s = await _routes(server.port, model, progress)
    results: dict[str, dict[str, Any]] = {r.name: {"phases": []} for r in routes}

    def record(phase: Phase) -> None:
        results[phase.route]["phases"].append(asdict(phase))

    for route in routes:
        base = await _unloaded(server.port, route, plan)
        record(base)
        results[route.name]["unloaded_p50_ms"] = base.p50_ms
        progress(f"unloaded {route.name}: p50 {base.p50_ms:.0f} ms of {base.sent} requests")
    for route in routes:
        for level in await _sweep(server.port, route, plan, progress):
            record(level)
        results[route.name]["saturation_rps"] = _saturation(results[route.name]["phases"])
    memory = await _sustained(server, routes, results, plan, record, progress)
    for route in routes:
        rate = OVERLOAD_FACTOR * results[route.name]["saturation_rps"]
        progress(f"overload {route.name}: {rate:.2f} req/s for {plan.overload_seconds:g} s")
        samples, seconds = await open_loop(server.port, route, rate, plan.overload_seconds)
        record(summarize(route.name, "overload", f"{rate:.2f}/s (2x)", samples, seconds))
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "server": {
            "command": "sandseg serve",
            "workers": 1,
            "queue": QUEUE,
            "startup_s": startup_s,
            "stage_seconds": {s["name"]: s["server_seconds"] for s in model["stages"]},
            "decode_seconds": model["profile"]["decode_seconds"],
            "image_upload_s": upload_s,
        },
        "routes": results,
        "memory": memory,
    }


async def _routes(
    port: int, model: dict[str, Any], progress: Callable[[str], None]
) -> tuple[list[Route], float]:
    """predict (against a synthetic photo uploaded once: one full encode) and stages/neck."""
    h, w = IMAGE_HW
    rng = np.random.default_rng(0)
    progress(f"uploading a {w}x{h} image (one full encode)")
    photo = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)  # the encoder's cost is the same
    upload = Route("upload", "/api/v1/images", messages.encode_image(photo.tobytes(), h, w, 3))
    started = time.perf_counter()
    reply = await http(port, "POST", upload.path, upload.body)
    if reply.status != 200:
        raise LoadBenchError(f"the image upload failed with HTTP {reply.status}: {reply.body!r}")
    upload_s = time.perf_counter() - started
    sha = json.loads(reply.body)["image_sha256"]
    prompt = messages.encode_prompt(Prompt.of([[w * 0.4, h * 0.5]], [1]), low_res="best")
    predict = Route("predict", f"/api/v1/images/{sha}/predict", prompt)
    shape = next(tuple(s["input"]["shape"]) for s in model["stages"] if s["name"] == "neck")
    x = rng.standard_normal(shape, dtype=np.float32)
    neck_body = messages.encode_tensor("x", x.tobytes(), shape, "F16")
    neck = Route("stages/neck", "/api/v1/stages/neck?dtype=float16", neck_body)
    return [predict, neck], upload_s


async def _unloaded(port: int, route: Route, plan: Plan) -> Phase:
    """Sequential requests after a warm-up; the time is their sum."""
    for _ in range(plan.warmup_requests):
        await timed(port, route)
    samples = [await timed(port, route) for _ in range(plan.unloaded_requests)]
    phase = summarize(
        route.name, "unloaded", "sequential", samples, sum(s.ms for s in samples) / 1000
    )
    if phase.p50_ms is None:
        raise LoadBenchError(f"{route.name}: no request succeeded (statuses {phase.statuses})")
    return phase


async def _sweep(
    port: int, route: Route, plan: Plan, progress: Callable[[str], None]
) -> list[Phase]:
    levels = []
    for c in CONCURRENCY:
        samples, seconds = await closed_loop(
            port, route, c, plan.sweep_requests, plan.sweep_seconds
        )
        level = summarize(route.name, "sweep", f"c={c}", samples, seconds)
        progress(f"sweep {route.name} c={c}: {level.ok_per_s:.2f} req/s, {level.refused} x 503")
        levels.append(level)
    return levels


def _saturation(phases: list[dict[str, Any]]) -> float:
    best = max(p["ok_per_s"] for p in phases if p["phase"] == "sweep")
    if best <= 0:
        raise LoadBenchError(f"{phases[0]['route']}: no request succeeded in the sweep")
    return float(best)


async def _sustained(
    server: ServeProcess,
    routes: list[Route],
    results: dict[str, dict[str, Any]],
    plan: Plan,
    record: Callable[[Phase], None],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Every route at 0.8x its saturation, one after the other; the server's RSS from the
    first start to the last end (sampled each second for the peak)."""
    start = server.rss_mib()
    samples_mib = [start]
    watch = asyncio.create_task(_watch_rss(server, samples_mib))
    per_route = {}
    for route in routes:
        rate = SUSTAIN_FACTOR * results[route.name]["saturation_rps"]
        progress(f"sustained {route.name}: {rate:.2f} req/s for {plan.sustain_seconds:g} s")
        before = server.rss_mib()
        samples, seconds = await open_loop(server.port, route, rate, plan.sustain_seconds)
        per_route[route.name] = server.rss_mib() - before
        record(summarize(route.name, "sustained", f"{rate:.2f}/s (0.8x)", samples, seconds))
    watch.cancel()
    end = server.rss_mib()
    return {
        "start_mib": start,
        "end_mib": end,
        "peak_mib": max(*samples_mib, end),
        "growth_mib": end - start,
        "per_route_growth_mib": per_route,
    }


async def _watch_rss(server: ServeProcess, samples_mib: list[float]) -> None:
    while True:
        await asyncio.sleep(1.0)
        samples_mib.append(server.rss_mib())


# -- verdicts and tables --------------------------------------------------------------------


def checks(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per requirement and route: what was measured, the limit, pass or fail."""
    rows = []

    def check(req: str, route: str, what: str, measured: str, limit: str, passed: bool) -> None:
        names = ("requirement", "route", "check", "measured", "limit", "passed")
        rows.append(dict(zip(names, (req, route, what, measured, limit, passed), strict=True)))

    for name, result in doc["routes"].items():
        phases = {p["phase"]: p for p in result["phases"]}
        over, held = phases["overload"], phases["sustained"]
        fast = over["refused_p99_ms"]
        shown = "no 503" if fast is None else f"{fast:.1f} ms"
        ok = fast is not None and fast < REFUSAL_MS
        check("LD-1", name, "503 answered fast (p99)", shown, f"< {REFUSAL_MS:g} ms", ok)
        refused, bare = over["refused"], over["refused_without_retry_after"]
        shown = f"{refused - bare} of {refused}"
        check("LD-1", name, "every 503 has Retry-After", shown, "all", refused > 0 and not bare)
        shown = f"{over['errors']} of {over['sent'] - refused}"
        check("LD-1", name, "accepted requests that fail", shown, "0", over["errors"] == 0)
        ratio = held["p99_ms"] / result["unloaded_p50_ms"] if held["p99_ms"] else math.inf
        ok = ratio <= P99_OVER_P50
        check(
            "LD-3",
            name,
            "sustained p99 / unloaded p50",
            f"{ratio:.2f}x",
            f"<= {P99_OVER_P50:g}x",
            ok,
        )
        bad = held["sent"] - held["ok"]
        check("LD-3", name, "sustained non-200 answers", f"{bad} of {held['sent']}", "0", bad == 0)
    growth = doc["memory"]["growth_mib"]
    shown, limit = f"{growth:+.1f} MiB", f"< {MEMORY_MIB:g} MiB"
    check("LD-3", "all", "server RSS growth, sustained", shown, limit, growth < MEMORY_MIB)
    return rows


PHASE_HEAD = ["route", "phase", "load", "sent", "ok/s", "p50 ms", "p99 ms", "503s"]
PHASE_HEAD += ["503 p50/p99 ms", "errors"]
CHECK_HEAD = ["requirement", "route", "check", "measured", "limit", "verdict"]


def report(doc: dict[str, Any], plan: Plan) -> tuple[str, str]:
    """The results as a text table and as Markdown: phases, notes, then the verdicts."""
    title = (
        f"sandseg bench load: `sandseg serve` on 127.0.0.1 (1 GPU worker, queue {QUEUE}); "
        f"{doc['cpu_count']} CPUs; {doc['platform']}; {doc['date']}"
    )
    phases = [_phase_row(p) for r in doc["routes"].values() for p in r["phases"]]
    verdicts = [
        [*(str(c[k]) for k in CHECK_HEAD[:-1]), "PASS" if c["passed"] else "FAIL"]
        for c in doc["checks"]
    ]
    notes = _notes(doc, plan)
    text = [title, *_text(PHASE_HEAD, phases), *notes, "", *_text(CHECK_HEAD, verdicts)]
    markdown = [f"# {title}", "", *_markdown(PHASE_HEAD, phases), ""]
    markdown += [*(f"- {n}" for n in notes), "", *_markdown(CHECK_HEAD, verdicts), ""]
    return "\n".join(text), "\n".join(markdown)


def _phase_row(p: dict[str, Any]) -> list[str]:
    refusals = f"{_ms(p['refused_p50_ms'])}/{_ms(p['refused_p99_ms'])}"
    counts = [str(p["sent"]), f"{p['ok_per_s']:.2f}", _ms(p["p50_ms"]), _ms(p["p99_ms"])]
    return [
        p["route"],
        p["phase"],
        p["load"],
        *counts,
        str(p["refused"]),
        refusals,
        str(p["errors"]),
    ]


def _notes(doc: dict[str, Any], plan: Plan) -> list[str]:
    server, memory = doc["server"], doc["memory"]
    saturation = (f"{name} {r['saturation_rps']:.2f} req/s" for name, r in doc["routes"].items())
    lag = max(p["lag_p99_ms"] for r in doc["routes"].values() for p in r["phases"])
    notes = [
        f"server start-up (load + profile) {server['startup_s']:.1f} s; "
        f"image upload (one full encode) {server['image_upload_s']:.1f} s",
        f"saturation: {', '.join(saturation)}",
        f"server RSS over the sustained runs: {memory['start_mib']:.1f} -> "
        f"{memory['end_mib']:.1f} MiB (growth {memory['growth_mib']:+.1f}, "
        f"peak {memory['peak_mib']:.1f})",
        f"load generator lag (p99, worst phase): {lag:.1f} ms",
    ]
    if plan.sustain_seconds < LD3_SECONDS:
        notes.append(f"sustained {plan.sustain_seconds:g} s per route; LD-3 asks {LD3_SECONDS:g} s")
    return notes


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _text(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *rows]
    ]
    return [lines[0], "-" * len(lines[0]), *lines[1:]]


def _markdown(head: list[str], rows: list[list[str]]) -> list[str]:
    return [f"| {' | '.join(r)} |" for r in [head, ["---"] * len(head), *rows]]
