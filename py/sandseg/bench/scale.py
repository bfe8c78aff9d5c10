"""`sandseg bench load --ray --replicas 1,2`: the Ray Serve tier against the single process, in
one run (issue 16's targets).

Setups, each a `sandseg serve` of its own on a free loopback port, one after the other, all on
onnxruntime with one CPU thread per model (`SANDSEG_CPU_THREADS=1`, `--replica-threads 1`) and
all on one redis-server of this run (`--cache redis://`): the single process, then `--ray
--replicas N` for every N asked. Per setup, on `predict` (one point, 3 masks, against an image
uploaded once): unloaded sequential requests (p50: Ray's added latency is the Ray setup's
minus the single process's, each request's time outside the app: the client's total minus the
queue and compute the app reports in Server-Timing), then closed-loop clients
at concurrency 1, 2, 4, 8 (saturation = the best successful req/s; p50/p99 at that level).
Prints a table, writes JSON (and Markdown), with the targets' verdicts: N=2 >= 1.6x N=1's
throughput with p99 within 1.5x, Ray's added p50 <= 15 ms.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..offload import messages
from ..predictor import InputError
from .loadgen import Route, closed_loop, http, percentile, summarize, timed, write_report

CONCURRENCY = (1, 2, 4, 8)
START_TIMEOUT_S = 600.0
SPEEDUP = 1.6
P99_RATIO = 1.5
ADDED_MS = 15.0
IMAGE_HW = (480, 640)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Redis:
    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise InputError("redis-server is not installed: bash scripts/setup.sh")
        self.port = _free_port()
        command = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        command += ["--dir", str(folder), "--maxmemory", "256mb"]
        command += ["--maxmemory-policy", "allkeys-lru"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Server:
    """One `sandseg serve` setup in its own process (its own Ray instance with --ray)."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.command = [sys.executable, "-m", "sandseg.cli", "serve", *args]
        self.command += ["--port", str(self.port)]
        env = {k: v for k, v in os.environ.items() if k != "SANDSEG_TOKEN"}
        env["SANDSEG_CPU_THREADS"] = "1"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                self.command, stdout=out, stderr=out, env=env, start_new_session=True
            )

    async def wait_ready(self) -> float:
        started = time.monotonic()
        while time.monotonic() - started < START_TIMEOUT_S:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-600:]
                raise InputError(f"{self.name}: sandseg serve exited: {tail}")
            try:
                if (await http(self.port, "GET", "/readyz")).status == 200:
                    return time.monotonic() - started
            except (OSError, ConnectionError):
                pass
            await asyncio.sleep(1.0)
        raise InputError(f"{self.name}: not ready within {START_TIMEOUT_S:g} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


async def _measure(server: Server, replicas: int, requests: int, seconds: float) -> dict[str, Any]:
    startup_s = await server.wait_ready()
    # /readyz answers once one replica is up: wait until every replica has answered.
    seen = await _replicas_seen(server, replicas)
    h, w = IMAGE_HW
    photo = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    body = messages.encode_image(photo.tobytes(), h, w, 3)
    reply = await http(server.port, "POST", "/api/v1/images", body)
    if reply.status != 200:
        raise InputError(f"{server.name}: the upload failed with HTTP {reply.status}")
    sha = json.loads(reply.body)["image_sha256"]
    prompt = _prompt(w * 0.4, h * 0.5)
    route = Route("predict", f"/api/v1/images/{sha}/predict", prompt)
    for _ in range(3):
        await timed(server.port, route)
    samples = [await timed(server.port, route) for _ in range(requests)]
    unloaded = summarize("predict", "unloaded", "sequential", samples, 1.0)
    outside = [await _outside_ms(server.port, route) for _ in range(requests)]
    levels = []
    for c in CONCURRENCY:
        found, spent = await closed_loop(server.port, route, c, requests * 4, seconds)
        levels.append(asdict(summarize("predict", "sweep", f"c={c}", found, spent)))
    best = max(levels, key=lambda p: p["ok_per_s"])
    return {
        "setup": server.name,
        "command": " ".join(server.command[2:]),
        "startup_s": startup_s,
        "replicas_seen": len(seen),
        "unloaded_p50_ms": unloaded.p50_ms,
        "unloaded_p99_ms": unloaded.p99_ms,
        "outside_app_p50_ms": percentile(outside, 50),
        "saturation_rps": best["ok_per_s"],
        "saturation_load": best["load"],
        "saturation_p50_ms": best["p50_ms"],
        "saturation_p99_ms": best["p99_ms"],
        "sweep": levels,
    }


async def _replicas_seen(server: Server, replicas: int) -> set[str]:
    started, seen = time.monotonic(), set[str]()
    while len(seen) < replicas and time.monotonic() - started < START_TIMEOUT_S:
        seen.add((await http(server.port, "GET", "/healthz")).headers["x-sandseg-replica"])
        await asyncio.sleep(0.05)
    return seen


async def _outside_ms(port: int, route: Route) -> float:
    """One request's time outside the app's own work: the client's total minus the queue and
    compute the app reports (Server-Timing). What Ray adds (its proxy, the hop to the replica)
    shows here without the model's time, which on a shared machine varies far more."""
    started = time.perf_counter()
    reply = await http(port, "POST", route.path, route.body)
    total = (time.perf_counter() - started) * 1000
    if reply.status != 200:
        raise InputError(f"predict answered HTTP {reply.status}")
    inside = 0.0
    for entry in reply.headers["server-timing"].split(","):
        for param in entry.split(";")[1:]:
            if param.strip().startswith("dur="):
                inside += float(param.strip().removeprefix("dur="))
    return total - inside


def _prompt(x: float, y: float) -> bytes:
    from ..weights.safetensors import dump_safetensors
    from ..weights.tensor import HostTensor

    tensors = {
        "point_coords": HostTensor("F32", (1, 2), np.array([x, y], "<f4").tobytes()),
        "point_labels": HostTensor("I32", (1,), np.array([1], "<i4").tobytes()),
    }
    return dump_safetensors(tensors, {"multimask_output": "true", "low_res": "best"})


def run_scale_bench(
    weights: Path,
    bundle: Path,
    replica_counts: list[int],
    *,
    requests: int,
    seconds: float,
    json_path: str | None,
    markdown_path: str | None,
    progress: Callable[[str], None],
) -> int:
    if not (bundle / "index.html").is_file():
        raise InputError(f"no web bundle in {bundle}: build it with `python build.py`")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sandseg-scale-") as tmp:
        redis = Redis(Path(tmp))
        cache = f"redis://127.0.0.1:{redis.port}/0"
        common = ["--weights", str(weights), "--bundle", str(bundle), "--runtime", "onnxruntime"]
        common += ["--cache", cache]
        setups = [("single process", 1, common)]
        for n in replica_counts:
            ray_args = ["--ray", "--replicas", str(n), "--replica-threads", "1"]
            setups.append((f"ray, {n} replica{'s' if n > 1 else ''}", n, [*common, *ray_args]))
        try:
            for name, count, args in setups:
                progress(f"starting {name}")
                server = Server(name, args, Path(tmp) / f"serve-{len(results)}.log")
                try:
                    results.append(asyncio.run(_measure(server, count, requests, seconds)))
                finally:
                    server.stop()
                r = results[-1]
                progress(
                    f"{name}: {r['saturation_rps']:.2f} req/s at {r['saturation_load']}, "
                    f"unloaded p50 {r['unloaded_p50_ms']:.1f} ms"
                )
        finally:
            redis.stop()
    doc = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "setups": results,
        "checks": _checks(results, replica_counts),
    }
    text, markdown = _report(doc)
    write_report(doc, text, markdown, json_path, markdown_path, progress)
    return 0


def _checks(results: list[dict[str, Any]], counts: list[int]) -> list[dict[str, Any]]:
    single, by_count = results[0], dict(zip(counts, results[1:], strict=True))
    checks = []
    if 1 in by_count:
        added = by_count[1]["outside_app_p50_ms"] - single["outside_app_p50_ms"]
        checks.append(
            {
                "check": "Ray's added latency, predict p50 outside the app (ray 1 - single)",
                "measured": f"{added:.1f} ms",
                "limit": f"<= {ADDED_MS:g} ms",
                "passed": added <= ADDED_MS,
            }
        )
    if 1 in by_count and 2 in by_count:
        one, two = by_count[1], by_count[2]
        speedup = two["saturation_rps"] / one["saturation_rps"]
        checks.append(
            {
                "check": "2 replicas' saturation throughput / 1 replica's",
                "measured": f"{speedup:.2f}x",
                "limit": f">= {SPEEDUP:g}x",
                "passed": speedup >= SPEEDUP,
            }
        )
        ratio = two["saturation_p99_ms"] / one["saturation_p99_ms"]
        checks.append(
            {
                "check": "2 replicas' p99 at saturation / 1 replica's",
                "measured": f"{ratio:.2f}x",
                "limit": f"<= {P99_RATIO:g}x",
                "passed": ratio <= P99_RATIO,
            }
        )
    return checks


def _report(doc: dict[str, Any]) -> tuple[str, str]:
    head = ["setup", "replicas seen", "unloaded p50 ms", "outside app p50 ms", "saturation req/s"]
    head += ["at", "p50 ms"]
    head += ["p99 ms", "start-up s"]
    rows = [
        [
            r["setup"],
            str(r["replicas_seen"]),
            f"{r['unloaded_p50_ms']:.1f}",
            f"{r['outside_app_p50_ms']:.1f}",
            f"{r['saturation_rps']:.2f}",
            r["saturation_load"],
            f"{r['saturation_p50_ms']:.1f}",
            f"{r['saturation_p99_ms']:.1f}",
            f"{r['startup_s']:.0f}",
        ]
        for r in doc["setups"]
    ]
    checks = [
        [c["check"], c["measured"], c["limit"], "PASS" if c["passed"] else "FAIL"]
        for c in doc["checks"]
    ]
    title = (
        f"sandseg bench load --ray: predict on onnxruntime, 1 CPU thread per model, Redis "
        f"cache; {doc['cpu_count']} CPUs; {doc['platform']}; {doc['date']}"
    )
    check_head = ["check", "measured", "limit", "verdict"]
    text = [title, *_text(head, rows), "", *_text(check_head, checks)]
    markdown = [f"# {title}", "", *_markdown(head, rows), "", *_markdown(check_head, checks)]
    return "\n".join(text), "\n".join(markdown) + "\n"


def _text(head: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    return [lines[0], "-" * len(lines[0]), *lines[1:]]


def _markdown(head: list[str], rows: list[list[str]]) -> list[str]:
    return [f"| {' | '.join(r)} |" for r in [head, ["---"] * len(head), *rows]]
