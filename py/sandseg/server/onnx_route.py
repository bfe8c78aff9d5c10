"""GET /api/v1/onnx/{graph}: the per-stage ONNX graphs of the served weights, for the
browser's WASM runtime (onnxruntime-web in the worker, which cannot build graphs: numpy and
onnx are not in the bundle).

The graphs are `sandseg.export.stage_graphs` of the weights the server verified at start-up,
exported on the first request (about a second) or reused from SANDSEG_HOME/onnx/<sha256>/.
Each answer carries the file's sha256 in `X-Sandseg-Sha256`; the worker checks the body
against it before use, and the body's ONNX metadata names the weights' sha256.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ..weights.files import sha256_file
from ..weights.layout import ENCODER_STAGES
from .http_errors import ApiError

# The encoder stages (model/tiny_vit.py) and the decoder, as sandseg.export names them.
GRAPHS = (*ENCODER_STAGES, "decoder")
SHA256_HEADER = "X-Sandseg-Sha256"
PATH = "/api/v1/onnx/{graph}"


class OnnxGraphs:
    """The graph files of one weights file, exported once (on first use) under `root`."""

    def __init__(self, weights: Path, root: Path) -> None:
        self.weights = weights
        self.root = root
        self._lock = asyncio.Lock()
        self._files: dict[str, tuple[Path, str]] | None = None

    def route(self) -> Route:
        return Route(PATH, self.graph, methods=["GET"])

    async def graph(self, request: Request) -> Response:
        name = request.path_params["graph"]
        if name not in GRAPHS:
            raise ApiError(404, f"no graph {name!r}; the graphs are {list(GRAPHS)}")
        path, sha256 = (await self.files())[name]
        headers = {SHA256_HEADER: sha256, "Cache-Control": "no-cache"}
        return FileResponse(path, media_type="application/octet-stream", headers=headers)

    async def files(self) -> dict[str, tuple[Path, str]]:
        async with self._lock:
            if self._files is None:
                self._files = await asyncio.to_thread(self._export)
            return self._files

    def _export(self) -> dict[str, tuple[Path, str]]:
        try:
            from ..export import stage_graphs
        except ImportError as exc:
            raise ApiError(
                503,
                "this server cannot export ONNX graphs (onnx and numpy are missing): "
                "install the serve extra, pip install 'sandseg[serve]'",
            ) from exc
        graphs = stage_graphs(self.weights, self.root)
        return {name: (graphs.path(name), sha256_file(graphs.path(name))) for name in GRAPHS}
