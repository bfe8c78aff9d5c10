"""The web app: the bundle's files, /api/config, the weights addressed by their sha256, and
(with an engine) the offload API. Middleware, outermost first: security headers on every
response, Host/Origin checks (SV-6), the API token (SV-5)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from ..weights.convert import verify_weights
from ..weights.identity import weights_info
from .api import ApiSettings, OffloadApi
from .engine import Engine
from .guards import HostOriginGuard, TokenGuard
from .headers import SecurityHeaders
from .http_errors import ApiError
from .lifecycle import Readiness
from .limits import ClientGone
from .onnx_route import OnnxGraphs
from .replica import ReplicaHeader, ReplicaInfo, process_replica

log = logging.getLogger("sandseg.server")
# Routes under /api/ that a token does not guard: probes and the public description.
PUBLIC_API_PATHS = ("/api/config", "/api/v1/openapi.json")


def create_app(
    bundle_dir: Path,
    weights: Path | None = None,
    *,
    hosts: Collection[str],
    engine: Engine | None = None,
    settings: ApiSettings | None = None,
    token: str | None = None,
    readiness: Readiness | None = None,
    replica: ReplicaInfo | None = None,
    page_weights: Path | None = None,
) -> ASGIApp:
    """Files from `bundle_dir` (built by build.py) and `weights`, a .safetensors file checked
    against its manifest when one is beside it; the offload API when an `engine` (loaded from
    the same weights) is given. `hosts`: the host[:port] names clients may use; `replica`:
    who answers (X-Sandseg-Replica; default this process); `page_weights`: the file the page
    downloads (`sandseg serve`: a float16 copy of `weights`, page_weights.py), default
    `weights`."""
    bundle_dir = bundle_dir.resolve()
    replica = replica or process_replica()
    weights_sha = verify_weights(weights) if weights is not None else None
    page_weights = page_weights or weights
    page_sha = verify_weights(page_weights) if page_weights is not None else None
    served = {sha: path for sha, path in [(weights_sha, weights), (page_sha, page_weights)] if sha}
    if readiness is None:
        readiness = Readiness()
        readiness.mark_ready()
    bundle_file = bundle_dir / "bundle.json"
    bundle = json.loads(bundle_file.read_text(encoding="utf-8")) if bundle_file.is_file() else None

    async def config(request: Request) -> Response:
        weights_info = None
        if page_weights is not None:
            weights_info = {
                "url": f"/weights/{page_sha}.safetensors",
                "sha256": page_sha,
                "bytes": page_weights.stat().st_size,
            }
        return JSONResponse({"weights": weights_info, "bundle": bundle})

    async def weights_file(request: Request) -> Response:
        path = served.get(request.path_params["sha"])
        if path is None:
            raise HTTPException(404, "no such weights")
        return FileResponse(path, media_type="application/octet-stream")

    routes: list[BaseRoute] = [
        Route("/api/config", config, methods=["GET"]),
        Route("/weights/{sha}.safetensors", weights_file, methods=["GET"]),
    ]
    if weights is not None:
        # The graphs of the wasm runtime (no engine needed); before the API's mount, which
        # answers every other /api/v1 path.
        routes.append(OnnxGraphs(weights, onnx_root()).route())
    if engine is not None:
        identity = weights_info(weights, weights_sha) if weights is not None else None
        api = OffloadApi(
            engine, weights_sha or "", settings or ApiSettings(), readiness, replica, identity
        )
        routes += api.routes()
    routes.append(Route("/{path:path}", _static_files(bundle_dir), methods=["GET", "HEAD"]))
    handlers = {
        HTTPException: _http_error,
        ApiError: _api_error,
        ClientGone: _client_gone,
        Exception: _internal_error,
    }
    app = Starlette(routes=routes, exception_handlers=handlers)  # type: ignore[arg-type]
    guarded = TokenGuard(app, token, public_paths=PUBLIC_API_PATHS)
    return ReplicaHeader(SecurityHeaders(HostOriginGuard(guarded, hosts)), replica.id)


def _static_files(bundle_dir: Path) -> Callable[[Request], Awaitable[Response]]:
    """The handler of the bundle's files: only regular files inside it, no listings, no
    traversal, no dotfiles."""

    async def static(request: Request) -> Response:
        relative = request.path_params.get("path", "") or "index.html"
        path = (bundle_dir / relative).resolve()
        if (
            not path.is_relative_to(bundle_dir)
            or not path.is_file()
            or any(part.startswith(".") for part in path.relative_to(bundle_dir).parts)
        ):
            raise HTTPException(404, "not found")
        return FileResponse(path)

    return static


def onnx_root() -> Path:
    """Where the ONNX stage graphs are exported (shared with the onnxruntime runtime)."""
    from .serve_cli import sandseg_home

    return sandseg_home() / "onnx"


# Error bodies are JSON with a message in words, never a traceback or a path (SV-4).


async def _http_error(request: Request, exc: HTTPException) -> Response:
    # Keep the exception's headers: a 405 must say which methods are allowed (Allow).
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _api_error(request: Request, exc: ApiError) -> Response:
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)


async def _client_gone(request: Request, exc: ClientGone) -> Response:
    return JSONResponse({"error": "the client went away"}, status_code=400)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("request %s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal error; the request was not completed"}, 500)
