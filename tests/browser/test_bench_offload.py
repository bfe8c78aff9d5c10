"""`sandseg bench offload --quick`: the smoke run of the offload benchmark, as users run it.

A subprocess (its own Playwright and server), on the session's bundle and weights: two
network profiles (loopback, 4G emulated through the DevTools protocol), four modes. Checks
the outputs exist and hold together; the numbers themselves are the benchmark's business.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from .conftest import CONFORMANCE


def test_quick_offload_bench_writes_its_reports(bundle_dir: Path, weights_file: Path, tmp_path):
    out = tmp_path / "bench"
    photo = CONFORMANCE.parent / "images" / "picture1.jpg"
    command = [str(Path(sys.executable).parent / "sandseg"), "bench", "offload", "--quick"]
    command += ["--weights", str(weights_file), "--bundle", str(bundle_dir)]
    command += ["--image", str(photo), "--out", str(out)]
    env = {**os.environ, "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((out / "offload.json").read_text())
    assert report["profiles"] == ["loopback", "4g"]
    measured = [r for r in report["results"] if not r["skipped"]]
    assert {r["mode"] for r in measured} >= {"server", "auto"}
    for r in measured:
        assert r["first_mask_s"] > 0 and r["click_s"] > 0, r
        assert r["ran_as"][0] == r["mode"] or r["mode"] == "auto", r
        if r["ran_as"][0] != "client":
            assert r["upload_bytes"] > 0 and r["server_image_s"] > 0, r
            assert r["cost_per_1000_images"] > 0, r
    # 4G is throttled: the server mode's upload takes longer there than on loopback.
    server = {r["profile"]: r for r in measured if r["mode"] == "server"}
    assert server["4g"]["first_mask_s"] > server["loopback"]["first_mask_s"]
    assert set(report["auto"]) == {"loopback", "4g"}
    assert all(plan.startswith("auto: ") for plan in report["plans"].values())

    markdown = (out / "offload.md").read_text()
    assert "| loopback | server |" in markdown and "auto within 10%" in markdown
    for name in ("offload-latency.png", "offload-cost.png"):
        with Image.open(out / name) as plot:
            assert plot.width > 300 and plot.height > 200
    assert "[##" in done.stderr, "no progress bar"
