"""The page downloads float16-stored weights (issue 14): `page_weights` derives them once per
weights file, and the app advertises and serves them by sha256 while the server keeps its own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from starlette.testclient import TestClient

from sandseg.server import create_app
from sandseg.server.page_weights import is_float16, page_weights
from sandseg.weights import load_mobile_sam
from sandseg.weights.files import sha256_file


def test_the_float16_copy_is_made_once_and_pinned(converted_weights: Path, tmp_path: Path):
    half = page_weights(converted_weights, tmp_path / "cache")
    assert is_float16(half) and not is_float16(converted_weights)
    assert half.stat().st_size < 0.51 * converted_weights.stat().st_size
    manifest = json.loads(half.with_suffix(".manifest.json").read_text())
    assert manifest["source_sha256"] == sha256_file(converted_weights)
    assert manifest["output_sha256"] == sha256_file(half)
    made = half.stat().st_mtime_ns
    assert page_weights(converted_weights, tmp_path / "cache") == half
    assert half.stat().st_mtime_ns == made, "the copy is reused, not made again"
    assert page_weights(half, tmp_path / "other") == half, "float16 weights are their own copy"


def test_a_changed_copy_is_made_again(converted_weights: Path, tmp_path: Path):
    """A copy whose manifest names other weights (say, those of an earlier file that had the
    same name) is not served: it is made again from these weights."""
    half = page_weights(converted_weights, tmp_path)
    manifest = json.loads(half.with_suffix(".manifest.json").read_text())
    manifest["source_sha256"] = "0" * 64
    half.with_suffix(".manifest.json").write_text(json.dumps(manifest))
    again = page_weights(converted_weights, tmp_path)
    assert json.loads(again.with_suffix(".manifest.json").read_text())["source_sha256"] != "0" * 64


def test_config_points_the_page_at_the_float16_weights(
    converted_weights: Path, converted_weights_f16: Path, tmp_path: Path
):
    (tmp_path / "dist").mkdir()
    half = tmp_path / converted_weights_f16.name
    shutil.copyfile(converted_weights_f16, half)
    shutil.copyfile(
        converted_weights_f16.with_suffix(".manifest.json"), half.with_suffix(".manifest.json")
    )
    app = create_app(tmp_path / "dist", converted_weights, hosts={"testserver"}, page_weights=half)
    client = TestClient(app)
    config = client.get("/api/config").json()["weights"]
    sha = sha256_file(half)
    assert config == {
        "url": f"/weights/{sha}.safetensors",
        "sha256": sha,
        "bytes": half.stat().st_size,
    }
    body = client.get(config["url"])
    assert body.status_code == 200 and body.content == half.read_bytes()
    # The server's own weights stay reachable by their hash; nothing else is.
    own = client.get(f"/weights/{sha256_file(converted_weights)}.safetensors")
    assert own.status_code == 200 and len(own.content) == converted_weights.stat().st_size
    assert client.get("/weights/" + "0" * 64 + ".safetensors").status_code == 404
    assert load_mobile_sam(half).keys() == load_mobile_sam(converted_weights).keys()
