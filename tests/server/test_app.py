"""The web app's server in-process: files, config, weights, headers (WB-1, WB-3)."""

from __future__ import annotations

import functools
import http.server
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

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
    return TestClient(create_app(bundle, weights, hosts={"testserver"}))


@pytest.mark.requirement("WB-1", "WB-3")
def test_index_and_assets_carry_the_security_headers(client):
    for path in ["/", "/client.js", "/pyodide/pyodide.asm.wasm", "/api/config", "/missing"]:
        response = client.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self' 'wasm-unsafe-eval'" in CSP and "frame-ancestors 'none'" in CSP


@pytest.mark.requirement("WB-3")
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
        create_app(bundle, weights, hosts={"testserver"})


def test_serve_without_weights_explains_how_to_get_them(tmp_path, monkeypatch, capsys):
    from sandseg.cli import main

    monkeypatch.setenv("SANDSEG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SANDSEG_WEIGHTS_URL", f"http://127.0.0.1:{_closed_port()}/x.pt")
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "index.html").write_text("x")
    assert main(["serve", "--bundle", str(tmp_path / "dist")]) == 2
    err = capsys.readouterr().err
    assert "mobile_sam.pt" in err and "sandseg convert" in err


def test_serve_without_a_bundle_says_how_to_build_it(tmp_path, capsys):
    from sandseg.cli import main

    assert main(["serve", "--bundle", str(tmp_path / "none")]) == 2
    assert "python build.py" in capsys.readouterr().err


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str, list[str]]]:
    """A folder served over http on 127.0.0.1: (folder, base URL, paths requested)."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests: ClassVar[list[str]] = []
    handler = type("Handler", (_QuietHandler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_serve_downloads_verifies_and_then_reuses_the_official_weights(
    tmp_path, monkeypatch, served, other_checkpoint
):
    from sandseg.server import serve_cli
    from sandseg.weights.convert import manifest_path

    folder, base, requests = served
    # Not the demo weights: those, converted before, would not be reused (test_default_weights).
    os.symlink(other_checkpoint, folder / "mobile_sam.pt")
    monkeypatch.setenv("SANDSEG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SANDSEG_WEIGHTS_URL", raising=False)
    monkeypatch.setattr(serve_cli, "OFFICIAL_URL", f"{base}/mobile_sam.pt")
    lines: list[str] = []
    first = serve_cli.resolve_weights(None, lines.append)
    cache = tmp_path / "home" / "weights"
    assert first.parent == cache and first.suffix == ".safetensors" and first.is_file()
    assert requests == ["/mobile_sam.pt"]
    assert any("100%" in line for line in lines)
    assert json.loads(manifest_path(first).read_text())["source_name"] == "mobile_sam.pt"
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [first.name, manifest_path(first).name]
    )
    second = serve_cli.resolve_weights(None, lines.append)
    assert second == first and requests == ["/mobile_sam.pt"]


def test_serve_refuses_a_download_that_is_not_the_checkpoint(tmp_path, monkeypatch, served):
    from sandseg.predictor import InputError
    from sandseg.server import serve_cli

    folder, base, requests = served
    (folder / "mobile_sam.pt").write_bytes(os.urandom(200_000))
    monkeypatch.setenv("SANDSEG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SANDSEG_WEIGHTS_URL", f"{base}/mobile_sam.pt")
    with pytest.raises(InputError, match="could not be verified") as info:
        serve_cli.resolve_weights(None, lambda _line: None)
    assert "mobile_sam.pt" in str(info.value) and "sandseg convert" in str(info.value)
    assert requests == ["/mobile_sam.pt"]
    assert list((tmp_path / "home" / "weights").iterdir()) == []


def test_serve_reports_an_unreachable_download_quickly(tmp_path, monkeypatch, served):
    from sandseg.predictor import InputError
    from sandseg.server import serve_cli

    _folder, base, _requests = served
    monkeypatch.setenv("SANDSEG_HOME", str(tmp_path / "home"))
    for url in [f"http://127.0.0.1:{_closed_port()}/x.pt", f"{base}/missing.pt"]:
        monkeypatch.setenv("SANDSEG_WEIGHTS_URL", url)
        start = time.monotonic()
        with pytest.raises(InputError, match="download failed") as info:
            serve_cli.resolve_weights(None, lambda _line: None)
        assert time.monotonic() - start < 5
        assert "sandseg convert" in str(info.value)
        assert list((tmp_path / "home" / "weights").iterdir()) == []


def test_serve_never_downloads_when_weights_are_given(tmp_path, monkeypatch, weights):
    from sandseg.predictor import InputError
    from sandseg.server import serve_cli

    monkeypatch.setenv("SANDSEG_HOME", str(tmp_path / "home"))

    def no_download(*_args, **_kwargs):
        raise AssertionError("downloaded although weights were given")

    monkeypatch.setattr(serve_cli, "download_official", no_download)
    assert serve_cli.resolve_weights(str(weights), lambda _line: None) == weights
    with pytest.raises(InputError, match="do not exist"):
        serve_cli.resolve_weights(str(tmp_path / "missing.pt"), lambda _line: None)


def test_serve_refuses_a_download_over_the_size_cap(tmp_path, monkeypatch, served):
    from sandseg.predictor import InputError
    from sandseg.server import serve_cli

    folder, base, _requests = served
    (folder / "big.pt").write_bytes(b"\0" * 5000)
    monkeypatch.setenv("SANDSEG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SANDSEG_WEIGHTS_URL", f"{base}/big.pt")
    monkeypatch.setattr(serve_cli, "DOWNLOAD_MAX_BYTES", 1000)
    with pytest.raises(InputError, match=r"download failed: .*cap"):
        serve_cli.resolve_weights(None, lambda _line: None)
    assert list((tmp_path / "home" / "weights").iterdir()) == []
