"""The web app's server in-process: files, config, weights, headers (WB-1, WB-3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sandseg.server import create_app
from sandseg.server.headers import CSP
from sandseg.weights import HostTensor, save_safetensors
from sandseg.weights.files import sha256_file


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "pyodide").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><div id=status>loading</div>")
    (root / "client.js").write_text("export {};")
    (root / "pyodide" / "pyodide.asm.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "pyodide" / "pyodide.mjs").write_text("export {};")
    (root / ".secret").write_text("not served")
    (root / "bundle.json").write_text(json.dumps({"files": {"index.html": "x"}}))
    (tmp_path / "outside.txt").write_text("not served either")
    return root


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "w.safetensors"
    save_safetensors(path, {"a": HostTensor("F32", (1,), b"\0\0\x80?")})
    return path


@pytest.fixture
def client(bundle: Path, weights: Path) -> TestClient:
    return TestClient(create_app(bundle, weights))


def test_index_and_assets_carry_the_security_headers(client):
    for path in ["/", "/client.js", "/pyodide/pyodide.asm.wasm", "/api/config", "/missing"]:
        response = client.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self' 'wasm-unsafe-eval'" in CSP and "frame-ancestors 'none'" in CSP


def test_content_types_and_caching(client):
    wasm = client.get("/pyodide/pyodide.asm.wasm")
    assert wasm.headers["content-type"] == "application/wasm"
    assert "immutable" in wasm.headers["cache-control"]
    assert client.get("/pyodide/pyodide.mjs").headers["content-type"].startswith("text/javascript")
    index = client.get("/")
    assert index.headers["content-type"].startswith("text/html")
    assert index.headers["cache-control"] == "no-cache"
    assert "loading" in index.text


def test_config_points_at_weights_by_hash(client, weights):
    config = client.get("/api/config").json()
    sha = sha256_file(weights)
    assert config["weights"] == {
        "url": f"/weights/{sha}.safetensors",
        "sha256": sha,
        "bytes": weights.stat().st_size,
    }
    assert config["bundle"] == {"files": {"index.html": "x"}}
    body = client.get(config["weights"]["url"])
    assert body.status_code == 200 and body.content == weights.read_bytes()
    assert "immutable" in body.headers["cache-control"]
    assert client.get("/weights/" + "0" * 64 + ".safetensors").status_code == 404


@pytest.mark.parametrize(
    "path", ["/.secret", "/../outside.txt", "/%2e%2e/outside.txt", "/pyodide", "/nope.js"]
)
def test_no_traversal_no_dotfiles_no_listings(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}


def test_writes_are_not_allowed(client):
    assert client.post("/index.html", content=b"x").status_code == 405


def test_weights_changed_after_conversion_are_refused(bundle, weights):
    from sandseg.weights import WeightsError
    from sandseg.weights.convert import manifest_path

    manifest_path(weights).write_text(json.dumps({"output_sha256": "0" * 64}))
    with pytest.raises(WeightsError, match="manifest records"):
        create_app(bundle, weights)


def test_serve_without_weights_explains_how_to_get_them(tmp_path, monkeypatch, capsys):
    from sandseg.cli import main

    monkeypatch.setenv("SANDSEG_HOME", str(tmp_path / "home"))
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "index.html").write_text("x")
    assert main(["serve", "--bundle", str(tmp_path / "dist")]) == 2
    err = capsys.readouterr().err
    assert "mobile_sam.pt" in err and "sandseg convert" in err


def test_serve_without_a_bundle_says_how_to_build_it(tmp_path, capsys):
    from sandseg.cli import main

    assert main(["serve", "--bundle", str(tmp_path / "none")]) == 2
    assert "python build.py" in capsys.readouterr().err
