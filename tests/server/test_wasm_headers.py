"""RT-2's header change: every response is cross-origin isolated (COOP + COEP), so the wasm
runtime gets SharedArrayBuffer and threads, and WB-1's CSP is otherwise intact (no
'unsafe-eval', no other origin)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from sandseg.server.app import create_app
from sandseg.server.headers import CSP

EXPECTED_CSP = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
    "connect-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@pytest.mark.requirement("RT-2")
def test_every_response_is_cross_origin_isolated_under_wb1s_csp(tmp_path, evidence) -> None:
    (tmp_path / "ort").mkdir()
    (tmp_path / "ort" / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm")
    (tmp_path / "index.html").write_text("<!doctype html><title>sandseg</title>")
    client = TestClient(create_app(tmp_path, None, hosts={"testserver"}))
    assert CSP == EXPECTED_CSP
    for path in ["/", "/ort/ort-wasm-simd-threaded.wasm", "/api/config", "/missing"]:
        response = client.get(path)
        assert response.headers["cross-origin-opener-policy"] == "same-origin", path
        assert response.headers["cross-origin-embedder-policy"] == "require-corp", path
        assert response.headers["content-security-policy"] == EXPECTED_CSP, path
    wasm = client.get("/ort/ort-wasm-simd-threaded.wasm")
    assert wasm.headers["content-type"] == "application/wasm"
    assert "immutable" in wasm.headers["cache-control"]
    evidence("RT-2", "COOP same-origin + COEP require-corp on every response; CSP = WB-1's")
