"""`sandseg bench offload`: client vs server offload, every mode, under emulated networks.

One headless Chromium page (WebGPU on SwiftShader where there is no GPU) talks to the app on
127.0.0.1 (the model natively on wgpu-py). Networks are emulated with the DevTools
protocol's network conditions, which throttle the worker's requests too. Every measured
image is a fresh variant of the photo (mirrored, shifted), so the server's image cache never
answers for it. Protocol:

1. a learning pass on loopback (not with --quick): every mode once, so the page's planner
   has measured this device's stages (as it would have in use);
2. per network profile: `auto` once (its requests teach the planner the network; its plan
   is the prediction for every mode), then every mode on `repeat` fresh images, `auto`
   last. A mode the planner predicts at over SKIP_FACTOR x the best is not measured on
   that profile (reported as skipped, with its prediction): on slow 3G some uploads take
   minutes.

Per mode: time to the first mask (encode + first click), further clicks, bytes up and
down, server compute seconds, and from them the server cost per 1,000 images and clicks.
The server runs on `--server-runtime` (default auto, as `sandseg serve`); its start-up
profile gives every server runtime's seconds and cost per image and per click side by side.
The page runs on each client runtime of `--client-runtime` in turn (default webgpu,wasm):
one page boot per runtime (`?runtime=`) in the same Chromium, against the same server, so
each page's planner learns its own runtime from scratch and the rows compare side by side.
With --quick, the runtimes after the first measure loopback only.
"""

from __future__ import annotations

import base64
import io
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..offload.session import SPLIT_STAGES
from ..server.thread import ServerThread
from .browser import CHROMIUM, boot_page, launch_chromium
from .offload_report import write_reports

MODES = ["client", *(f"split:{s}" for s in SPLIT_STAGES), "split:image", "server", "auto"]
QUICK_MODES = ["split:layers.1", "split:image", "server", "auto"]
CLIENT_RUNTIMES = ("auto", "webgpu", "wasm")
# The client runtime in force (null: none could run), why, and the WebGPU adapter.
CLIENT = """() => {
  const client = window.sandseg.getClient();
  return {runtime: client.runtime?.runtime ?? null, reason: client.runtime?.reason ?? "",
          adapter: client.adapter || null};
}"""
SKIP_FACTOR = 3.0

SET_IMAGE = """async (b64) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return await window.sandseg.getClient().setImage(new Blob([bytes], {type: "image/jpeg"}));
}"""
PREDICT = """async (p) => {
  const r = await window.sandseg.predict(p);
  return {decoderMs: r.decoderMs, mode: r.mode, uploadBytes: r.uploadBytes,
          downloadBytes: r.downloadBytes, serverMs: r.serverMs, runtime: r.runtime};
}"""


@dataclass(frozen=True)
class NetworkProfile:
    name: str
    down_mbit: float | None  # None: no emulation (loopback)
    up_mbit: float | None
    latency_ms: float

    def conditions(self) -> dict[str, Any]:
        """Network.emulateNetworkConditions parameters (bytes per second; -1: unthrottled)."""

        def rate(mbit: float | None) -> float:
            return -1 if mbit is None else mbit * 1e6 / 8

        return {
            "offline": False,
            "latency": self.latency_ms,
            "downloadThroughput": rate(self.down_mbit),
            "uploadThroughput": rate(self.up_mbit),
        }


PROFILES = [
    NetworkProfile("loopback", None, None, 0),
    NetworkProfile("lan", 1000, 1000, 1),
    NetworkProfile("wifi", 50, 50, 20),
    NetworkProfile("4g", 10, 5, 60),
    NetworkProfile("slow-3g", 1.6, 0.75, 150),
]
QUICK_PROFILES = ["loopback", "4g"]


@dataclass
class Measured:
    """One mode on one profile on one client runtime: medians over its images (None when
    skipped). `ran_on`: per image, the client runtime the page's results say ran (None: nothing
    ran in the page, as in server mode)."""

    profile: str
    mode: str
    predicted_first_mask_s: float | None
    ran_as: list[str] = field(default_factory=list)
    client_runtime: str = "auto"  # the page's runtime as asked (?runtime=)
    ran_on: list[str | None] = field(default_factory=list)
    first_mask_s: float | None = None
    click_s: float | None = None
    upload_bytes: float | None = None
    download_bytes: float | None = None
    server_image_s: float | None = None
    server_click_s: float | None = None
    skipped: str | None = None


@dataclass
class Run:
    adapter: str
    profiles: list[str]
    modes: list[str]
    repeat: int
    clicks: int
    price_per_gpu_hour: float
    # Profile -> the planner's reason, on the first client runtime (per runtime: below).
    plans: dict[str, str] = field(default_factory=dict)
    results: list[Measured] = field(default_factory=list)
    server_runtime: str = "auto"
    # The first of client_runtimes, as asked for (?runtime=); `adapter` says what ran.
    client_runtime: str = "auto"
    client_runtimes: list[str] = field(default_factory=list)  # as asked, in measuring order
    # Client runtime as asked -> {"runtime" (in force; None: none), "reason", "adapter" (the
    # page's WebGPU adapter as it names it, "none" on wasm), "ran" (the adapter, "wasm", or
    # "none: why")}.
    clients: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # Client runtime as asked -> profile -> the planner's reason.
    plans_by_client_runtime: dict[str, dict[str, str]] = field(default_factory=dict)
    # Server runtime (each one measured, and the one serving) -> {"image_s", "click_s"}.
    server_runtimes: dict[str, dict[str, float]] = field(default_factory=dict)
    server_plan: dict[str, str] = field(default_factory=dict)  # part -> runtime serving it


class Progress:
    """A one-line progress bar on stderr: [#####.....] 12/45 what."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.monotonic()

    def step(self, what: str) -> None:
        self.done += 1
        filled = int(30 * self.done / max(self.total, 1))
        elapsed = time.monotonic() - self.start
        bar = "#" * filled + "." * (30 - filled)
        print(f"[{bar}] {self.done}/{self.total} {elapsed:5.0f} s  {what}", file=sys.stderr)


def image_variants(photo: Path) -> Iterator[bytes]:
    """Endless distinct JPEGs of `photo` (mirrored and shifted by a pixel more each time)."""
    from PIL import Image, ImageChops

    with Image.open(photo) as opened:
        base = opened.convert("RGB")
    i = 0
    while True:
        image = base.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i % 2 else base
        out = io.BytesIO()
        ImageChops.offset(image, i // 2, 0).save(out, "JPEG", quality=90)
        yield out.getvalue()
        i += 1


def parse_client_runtimes(text: str) -> list[str]:
    """`--client-runtime`'s comma-separated list (each of auto, webgpu, wasm), in order."""
    runtimes = [r.strip() for r in text.split(",")]
    wrong = [r for r in runtimes if r not in CLIENT_RUNTIMES]
    if wrong or len(set(runtimes)) != len(runtimes):
        what = f"{wrong[0]!r} is not a client runtime" if wrong else "a runtime is repeated"
        raise ValueError(
            f"--client-runtime {text!r}: {what}; give one or more of "
            f"{', '.join(CLIENT_RUNTIMES)}, comma-separated (e.g. webgpu,wasm)"
        )
    return runtimes


def run_offload_bench(
    weights: Path,
    bundle: Path,
    photo: Path,
    out_dir: Path,
    quick: bool,
    repeat: int,
    clicks: int,
    price_per_gpu_hour: float,
    progress: Callable[[str], None],
    server_runtime: str = "auto",
    client_runtimes: list[str] | None = None,
) -> int:
    from ..server.engine import Engine

    if not Path(CHROMIUM).is_file():
        raise FileNotFoundError(f"no chromium at {CHROMIUM}: apt-get install chromium")
    if not (bundle / "index.html").is_file():
        raise FileNotFoundError(f"no web bundle in {bundle}: run `python build.py` first")
    if not photo.is_file():
        raise FileNotFoundError(f"no image at {photo}")
    profiles = [p for p in PROFILES if not quick or p.name in QUICK_PROFILES]
    modes = QUICK_MODES if quick else MODES
    repeat = 1 if quick else repeat
    clicks = 2 if quick else clicks
    run = Run("", [p.name for p in profiles], modes, repeat, clicks, price_per_gpu_hour)
    run.client_runtimes = client_runtimes or ["webgpu", "wasm"]
    run.client_runtime = run.client_runtimes[0]
    progress(f"loading the model on the server (runtime {server_runtime}) and profiling it")
    engine = Engine(weights, runtime=server_runtime, progress=progress)
    engine.profile = engine.measure(repeat=1 if quick else 2)
    run.server_runtime, run.server_plan = server_runtime, dict(engine.plan.parts)
    for name, profile in [*engine.runtime_profiles.items(), ("serving", engine.profile)]:
        image_s = profile.preprocess_s + sum(profile.stage_s.values())
        run.server_runtimes[name] = {"image_s": image_s, "click_s": profile.decode_s}
    try:
        with ServerThread(bundle, weights, engine=engine) as server, launch_chromium() as browser:
            _measure_runtimes(browser, server.url, run, profiles, quick, photo, progress)
    finally:
        engine.close()
    for path in write_reports(run, out_dir):
        progress(f"wrote {path}")
    return 0


def _measure_runtimes(
    browser: Any,
    url: str,
    run: Run,
    profiles: list[NetworkProfile],
    quick: bool,
    photo: Path,
    progress: Callable[[str], None],
) -> None:
    """Each client runtime on a page of its own (booted at ?runtime=, closed before the next:
    its worker holds a GPU device). With --quick, the runtimes after the first measure
    loopback only."""
    # The quick run skips the learning pass: the planner starts from its probe.
    learning = [] if quick else [m for m in run.modes if m != "auto"]
    plan = [
        (r, profiles if i == 0 or not quick else profiles[:1])
        for i, r in enumerate(run.client_runtimes)
    ]
    per_profile = 1 + len(run.modes) * run.repeat
    bar = Progress(sum(len(learning) + len(p) * per_profile for _, p in plan))
    images = image_variants(photo)
    for runtime, measured_profiles in plan:
        page = browser.new_page()
        try:
            progress(f"booting the page on {runtime} (Pyodide, package, weights, pipelines)")
            boot_page(page, url, f"?runtime={runtime}")
            run.clients[runtime] = _client(page.evaluate(CLIENT))
            run.adapter = run.adapter or _adapter_line(run.clients[runtime])
            for mode in learning:
                bar.step(f"{runtime}: learning pass on loopback: {mode}")
                _run_image(page, mode, next(images), 1)
            _measure(page, run, runtime, measured_profiles, images, bar)
        finally:
            page.close()
    run.plans = run.plans_by_client_runtime.get(run.client_runtime, {})


def _client(state: dict[str, Any]) -> dict[str, str | None]:
    """The page's client runtime state, with what ran: WebGPU's adapter, "wasm", or why none."""
    runtime = state["runtime"]
    ran = {"webgpu": state["adapter"], "wasm": "wasm"}.get(runtime) or f"none: {state['reason']}"
    return {**state, "ran": ran}


def _adapter_line(client: dict[str, str | None]) -> str:
    """What the report's first line said before there were several client runtimes."""
    return f"client runtime {client['runtime'] or 'none'}, WebGPU {client['adapter'] or 'none'}"


def _measure(
    page: Any,
    run: Run,
    runtime: str,
    profiles: list[NetworkProfile],
    images: Iterator[bytes],
    bar: Progress,
) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    plans = run.plans_by_client_runtime.setdefault(runtime, {})
    for profile in profiles:
        cdp.send("Network.emulateNetworkConditions", profile.conditions())
        bar.step(f"{runtime}, {profile.name}: auto, to learn the network and plan")
        _run_image(page, "auto", next(images), 1)
        modes_state = page.evaluate("() => window.sandseg.modes")
        plans[profile.name] = modes_state["plan"]
        predicted = {e["mode"]: e["firstMaskS"] for e in modes_state["estimates"]}
        best = min(predicted.values())
        for mode in [m for m in run.modes if m != "auto"] + ["auto"]:
            guess = predicted.get(mode)
            measured = Measured(profile.name, mode, guess, client_runtime=runtime)
            what = f"{runtime}, {profile.name}: {mode}"
            if mode != "auto" and guess is not None and guess > SKIP_FACTOR * best:
                measured.skipped = f"predicted {guess:.1f} s, over {SKIP_FACTOR:g}x the best"
                for _ in range(run.repeat):
                    bar.step(f"{what} skipped ({measured.skipped})")
            else:
                samples = []
                for i in range(run.repeat):
                    bar.step(f"{what} ({i + 1}/{run.repeat})")
                    samples.append(_run_image(page, mode, next(images), run.clicks))
                _summarise(measured, samples)
                if mode == "auto" and measured.ran_as:
                    measured.predicted_first_mask_s = predicted.get(measured.ran_as[0])
            run.results.append(measured)
    cdp.send("Network.emulateNetworkConditions", PROFILES[0].conditions())


def _run_image(page: Any, mode: str, jpeg: bytes, clicks: int) -> dict[str, Any]:
    page.evaluate("(m) => window.sandseg.setMode(m)", mode)
    image = page.evaluate(SET_IMAGE, base64.b64encode(jpeg).decode("ascii"))
    width, height = image["width"], image["height"]
    times, server_clicks = [], []
    up, down = image["uploadBytes"], image["downloadBytes"]
    ran_on = image["runtime"]
    for k in range(clicks):
        point = [width * (0.3 + 0.4 * k / max(clicks, 1)), height * 0.5]
        prompt = {"points": [point], "labels": [1], "box": None, "multimask": True}
        click = page.evaluate(PREDICT, prompt)
        times.append(click["decoderMs"] / 1000)
        server_clicks.append(click["serverMs"] / 1000)
        if k == 0:
            # split:image's encode ran on the server; its clicks ran here.
            ran_on = ran_on or click["runtime"]
            up += click["uploadBytes"]
            down += click["downloadBytes"]
    return {
        "ran_as": image["mode"],
        "ran_on": ran_on,
        "first_mask_s": image["encoderMs"] / 1000 + times[0],
        "click_s": statistics.median(times[1:]) if len(times) > 1 else times[0],
        "upload_bytes": up,
        "download_bytes": down,
        "server_image_s": image["serverMs"] / 1000 + server_clicks[0],
        "server_click_s": statistics.median(server_clicks[1:] or server_clicks),
    }


def _summarise(measured: Measured, samples: list[dict[str, Any]]) -> None:
    def median(key: str) -> float:
        return float(statistics.median(s[key] for s in samples))

    measured.ran_as = [s["ran_as"] for s in samples]
    measured.ran_on = [s["ran_on"] for s in samples]
    measured.first_mask_s = median("first_mask_s")
    measured.click_s = median("click_s")
    measured.upload_bytes = median("upload_bytes")
    measured.download_bytes = median("download_bytes")
    measured.server_image_s = median("server_image_s")
    measured.server_click_s = median("server_click_s")
