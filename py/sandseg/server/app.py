"""Routes: the bundle's files, /api/config, and the weights addressed by their sha256."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..weights.convert import verify_weights
from .headers import SecurityHeaders


def create_app(bundle_dir: Path, weights: Path | None = None) -> SecurityHeaders:
    """The web app: files from `bundle_dir` (built by build.py) and `weights`, a .safetensors
    file checked against its manifest when one is beside it."""
    bundle_dir = bundle_dir.resolve()
    weights_sha = verify_weights(weights) if weights is not None else None
    bundle_file = bundle_dir / "bundle.json"
    bundle = json.loads(bundle_file.read_text(encoding="utf-8")) if bundle_file.is_file() else None

    async def config(request: Request) -> Response:
        weights_info = None
        if weights is not None:
            weights_info = {
                "url": f"/weights/{weights_sha}.safetensors",
                "sha256": weights_sha,
                "bytes": weights.stat().st_size,
            }
        return JSONResponse({"weights": weights_info, "bundle": bundle})

    async def weights_file(request: Request) -> Response:
        if weights is None or request.path_params["sha"] != weights_sha:
            raise HTTPException(404, "no such weights")
        return FileResponse(weights, media_type="application/octet-stream")

    async def static(request: Request) -> Response:
        relative = request.path_params.get("path", "") or "index.html"
        path = (bundle_dir / relative).resolve()
        # Only regular files inside the bundle: no listings, no traversal, no dotfiles.
        if (
            not path.is_relative_to(bundle_dir)
            or not path.is_file()
            or any(part.startswith(".") for part in path.relative_to(bundle_dir).parts)
        ):
            raise HTTPException(404, "not found")
        return FileResponse(path)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return JSONResponse({"error": detail}, status_code=status)

    routes = [
        Route("/api/config", config, methods=["GET"]),
        Route("/weights/{sha}.safetensors", weights_file, methods=["GET"]),
        Route("/{path:path}", static, methods=["GET", "HEAD"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found, 500: not_found})
    return SecurityHeaders(app)
