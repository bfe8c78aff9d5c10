"""An ASGI middleware in Ray Serve's HTTP proxy: errors the proxy makes itself (a replica lost
in the middle of a request is a 500 there, an unavailable deployment a 503 without
Retry-After) become the app's own kind of answer: 503, `Retry-After`, a JSON error in words
(SC-1). Answers of the app itself carry X-Sandseg-Replica and pass unchanged."""

from __future__ import annotations

import json

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

RETRY_AFTER_S = 1
REPLICA_HEADER = b"x-sandseg-replica"
MESSAGE = "the replica that took this request was lost or is not ready yet: retry"


class ProxyErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_checked(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if message["status"] >= 500 and REPLICA_HEADER not in headers:
                    replaced = True
                    body = json.dumps({"error": MESSAGE}).encode()
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 503,
                            "headers": [
                                (b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"retry-after", str(RETRY_AFTER_S).encode()),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
            elif replaced:
                return  # the proxy's own body is dropped
            await send(message)

        await self.app(scope, receive, send_checked)


def proxy_middlewares() -> list[Middleware]:
    """Ray Serve's proxy calls this (RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH)."""
    return [Middleware(ProxyErrors)]
