"""GET /api/v1/onnx/{graph}: the stage graphs of the served weights, for the browser's WASM
runtime, each with its sha256 in a header the worker checks."""

from __future__ import annotations

import hashlib

import onnx

from sandseg.server.onnx_route import GRAPHS, SHA256_HEADER
from sandseg.weights.files import sha256_file


def test_every_graph_is_served_with_its_sha256(client, converted_weights) -> None:
    weights_sha = sha256_file(converted_weights)
    for name in GRAPHS:
        response = client.get(f"/api/v1/onnx/{name}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers[SHA256_HEADER] == hashlib.sha256(response.content).hexdigest()
        model = onnx.load_from_string(response.content)
        metadata = {p.key: p.value for p in model.metadata_props}
        assert weights_sha in metadata.values(), (name, metadata)


def test_an_unknown_graph_is_404_naming_the_graphs(client) -> None:
    response = client.get("/api/v1/onnx/encoder")
    assert response.status_code == 404
    assert "patch_embed" in response.json()["error"]


def test_the_route_is_in_the_openapi_document(client) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert paths["/api/v1/onnx/{graph}"]["get"]["parameters"][0]["schema"]["enum"] == list(GRAPHS)
