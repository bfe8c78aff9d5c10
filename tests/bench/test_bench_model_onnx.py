"""`sandseg bench model --onnx`: onnxruntime CPU gets the package's own input and prompt and
computes the same thing; the pinned onnxruntime-web tarball is refused once tampered with;
the ORT-web page is served with the MIME types the browser insists on. (The browser run
itself takes minutes on SwiftShader: it is a benchmark, not a test.)"""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest

from sandseg.bench.npm import (
    ORT_WEB_INTEGRITY,
    ORT_WEB_VERSION,
    NpmFetchError,
    fetch_ort_web,
    npm_integrity,
    verify_integrity,
)
from sandseg.bench.onnx_side import exported_models, ort_cpu_side_by_side
from sandseg.bench.ort_web import serve_folder


@pytest.mark.slow
def test_onnxruntime_cpu_matches_the_package_on_the_same_input(
    predictor, converted_weights, reference, tmp_path
):
    models = exported_models(converted_weights, tmp_path, progress=lambda _: None)
    stamp = models.encoder.stat().st_mtime_ns
    assert exported_models(converted_weights, tmp_path, progress=lambda _: None) == models
    assert models.encoder.stat().st_mtime_ns == stamp, "the cached export was not reused"

    pixels = reference["image_rgb"]
    h, w = pixels.shape[:2]
    run = ort_cpu_side_by_side(predictor, pixels, (w / 2, h / 2), models, 1, lambda _: None)

    report = run.report
    assert report["encoder_ms"] > 0 and report["decoder_ms"] > 0 and report["session_ms"] > 0
    assert report["embeddings_rel_l2"] < 1e-4, report
    assert report["low_res_rel_l2"] < 1e-3, report
    # The image ORT got is the official input tensor (same pre-processing), NCHW.
    np.testing.assert_allclose(run.image, reference["input_tensor"], atol=1e-4)
    assert run.labels.tolist() == [[1.0, -1.0]]


def test_a_tampered_tarball_is_refused_and_deleted(tmp_path):
    cached = tmp_path / "onnxruntime-web" / f"onnxruntime-web-{ORT_WEB_VERSION}.tgz"
    cached.parent.mkdir()
    cached.write_bytes(b"not the pinned release")
    with pytest.raises(NpmFetchError, match="integrity"):
        fetch_ort_web(tmp_path, progress=lambda _: None)  # cached: npm is never called
    assert not cached.exists()


def test_the_matching_integrity_passes(tmp_path):
    tarball = tmp_path / "a.tgz"
    tarball.write_bytes(b"some bytes")
    verify_integrity(tarball, npm_integrity(tarball))
    assert tarball.exists()
    assert npm_integrity(tarball) != ORT_WEB_INTEGRITY


def test_the_page_is_served_with_module_and_wasm_types(tmp_path):
    for name in ("bench.mjs", "runtime.wasm", "index.html"):
        (tmp_path / name).write_bytes(b"x")
    types = {}
    with serve_folder(tmp_path) as url:
        for name in ("bench.mjs", "runtime.wasm", "index.html"):
            with urllib.request.urlopen(f"{url}/{name}") as response:
                types[name] = response.headers["Content-Type"]
    assert url.startswith("http://127.0.0.1:")  # a secure context, as WebGPU needs
    assert types == {
        "bench.mjs": "text/javascript",
        "runtime.wasm": "application/wasm",
        "index.html": "text/html; charset=utf-8",
    }
