"""The browser tier: the real bundle (build.py), the real server (create_app + uvicorn on
127.0.0.1), Debian's chromium driven by Playwright, WebGPU on SwiftShader.

Session fixtures build once and boot the page once; every test here carries the `browser`
marker. A missing chromium fails the tier loudly, saying how to install it; it never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest

from sandseg.bench.browser import CHROMIUM_ARGS
from sandseg.server.thread import ServerThread as Server

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = ROOT.parent / "shared" / "conformance"
CHROMIUM = os.environ.get("SANDSEG_CHROMIUM", "/usr/bin/chromium")
# SwiftShader is slow: booting takes ~10-30 s, one full-size encoder pass up to a minute.
BOOT_TIMEOUT_MS = 240_000
RUN_TIMEOUT_MS = 300_000
# Records the page's securitypolicyviolation events (the worker reports its own to client.js,
# in window.sandseg.cspViolations) and main-thread long tasks (PY-1).
PAGE_PROBES = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push({directive: e.effectiveDirective, blocked: e.blockedURI}));
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push({start: e.startTime, ms: e.duration});
}).observe({type: "longtask", buffered: true});
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this tier `browser` and run it last: once started, pytest-playwright's sync API
    keeps an event loop running in the main thread until the session ends, and the other
    tiers call asyncio.run (Predictor.set_image, predict)."""
    here = Path(__file__).parent
    browser = [item for item in items if here in Path(str(item.fspath)).parents]
    for item in browser:
        item.add_marker(pytest.mark.browser)
    ids = {id(item) for item in browser}
    items[:] = [item for item in items if id(item) not in ids] + browser


_adapter_line: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _adapter_line:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The web bundle, built once per session by build.py into a temporary folder, with the
    test hooks (the client's loseDeviceForTesting, provokeGpuErrorsForTesting, hangForTesting)."""
    out = tmp_path_factory.mktemp("bundle") / "dist"
    result = subprocess.run(
        [sys.executable, str(ROOT / "build.py"), "--out", str(out), "--test-hooks"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"build.py failed:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return out


@pytest.fixture(scope="session")
def weights_file(converted_weights: Path) -> Path:
    """The conformance checkpoint (seeded random MobileSAM weights) as .safetensors."""
    return converted_weights


@pytest.fixture(scope="session")
def server(bundle_dir: Path, weights_file: Path, offload_engine: Any) -> Iterator[Server]:
    """The app with the offload API, its model on the native GPU (lavapipe)."""
    with Server(bundle_dir, weights_file, engine=offload_engine) as running:
        yield running


def _chromium_or_fail() -> str:
    path = shutil.which(CHROMIUM) or (CHROMIUM if Path(CHROMIUM).is_file() else None)
    if path is None:
        pytest.fail(
            f"browser tier cannot run: no chromium at {CHROMIUM}. Install Debian's chromium "
            "(sudo apt-get install chromium), or point SANDSEG_CHROMIUM at a Chromium binary "
            "with WebGPU; bash scripts/test.sh installs it when missing",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch arguments: Debian's chromium with WebGPU, never a download
    (`playwright install` is not used)."""
    return {
        **browser_type_launch_args,
        "executable_path": _chromium_or_fail(),
        "args": CHROMIUM_ARGS,
    }


def on_webgpu(url: str) -> str:
    """`url` with `?runtime=webgpu` unless it names a client runtime: this tier tests WebGPU
    (on SwiftShader, where `auto` measures wasm faster and takes it) except where a test asks
    for auto or wasm."""
    parts = urlsplit(url)
    if "runtime" in parse_qs(parts.query):
        return url
    query = f"{parts.query}&runtime=webgpu" if parts.query else "runtime=webgpu"
    return urlunsplit(parts._replace(query=query))


class Page:
    """A page of the app plus what it said: console lines and page errors. A URL that names
    no client runtime opens on WebGPU (on_webgpu)."""

    def __init__(self, browser: Any, url: str) -> None:
        self.closed = False
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.add_init_script(PAGE_PROBES)
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.goto(on_webgpu(url))

    def status(self) -> str:
        return str(self.page.inner_text("#status"))

    def wait_for_status(self, prefix: str, timeout_ms: int = BOOT_TIMEOUT_MS) -> str:
        """Wait until #status leaves `loading`; fail with the page's words unless it starts
        with `prefix`."""
        self.page.wait_for_function(
            "() => document.getElementById('status')?.textContent !== 'loading'",
            timeout=timeout_ms,
        )
        status = self.status()
        assert status.startswith(prefix), f"#status is {status!r}; console:\n" + "\n".join(
            self.console[-20:]
        )
        return status

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def csp_violations(self) -> list[Any]:
        return list(
            self.evaluate("() => [...window.__cspViolations, ...window.sandseg.cspViolations]")
        ) + [line for line in self.console if "Content Security Policy" in line]

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.context.close()


@pytest.fixture(scope="session")
def open_app(browser: Any, server: Server) -> Iterator[Any]:
    """Open the app in a fresh browser context: `open_app(url=None) -> Page` (not waited for);
    every page is closed at the end of the session."""
    pages: list[Page] = []

    def open_page(url: str | None = None) -> Page:
        page = Page(browser, url or server.url + "/")
        page.page.set_default_timeout(RUN_TIMEOUT_MS)
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.close()


@pytest.fixture(scope="session")
def app_page(open_app: Any) -> Page:
    """The app, booted to `ready` once for the session (the adapter goes in the summary), in
    client mode: everything on the browser's WebGPU."""
    page = open_app()
    page.wait_for_status("ready")
    page.evaluate("() => window.sandseg.setMode('client')")
    ready = page.evaluate(
        "() => ({adapter: window.sandseg.getClient().adapter, timings: window.sandseg.timings})"
    )
    timings = {k: round(v) if isinstance(v, float) else v for k, v in ready["timings"].items()}
    line = f"browser tier adapter: {ready['adapter']}; cold start (ms): {timings}"
    print(line)
    _adapter_line.append(line)
    return page
