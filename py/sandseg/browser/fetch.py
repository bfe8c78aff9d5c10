"""The browser's transport for the offload client: `fetch` from the worker (Pyodide only).

Same-origin requests, so the page's CSP (`connect-src 'self'`) allows them and Chromium's
network emulation applies to them. Bytes down are what crossed the network (Content-Length,
before gzip is undone), so the planner learns the real throughput.
"""

from __future__ import annotations

from typing import Any

import js
from pyodide.ffi import JsException, to_js

from ..offload.client import Reply, ServerUnreachable


class FetchTransport:
    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.signal: Any = None  # an AbortSignal for the requests made meanwhile (or None)

    async def request(
        self, method: str, path: str, body: bytes | None, content_type: str | None
    ) -> Reply:
        headers: dict[str, str] = {}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        init: dict[str, Any] = {"method": method, "headers": headers, "cache": "no-store"}
        if body is not None:
            init["body"] = to_js(memoryview(body))
        if self.signal is not None:
            init["signal"] = self.signal
        start = js.performance.now()
        try:
            response = await js.fetch(path, to_js(init, dict_converter=js.Object.fromEntries))
            buffer = await response.arrayBuffer()
        except JsException as exc:
            raise ServerUnreachable(0, f"no connection: {exc}") from None
        elapsed = (js.performance.now() - start) / 1000
        data = js.Uint8Array.new(buffer).to_bytes()
        reply_headers = {str(k).lower(): str(v) for k, v in response.headers.entries()}
        length = reply_headers.get("content-length", "")
        down = int(length) if length.isdigit() else len(data)
        return Reply(int(response.status), reply_headers, data, len(body or b""), down, elapsed)
