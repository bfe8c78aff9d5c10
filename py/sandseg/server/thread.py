"""The web app on 127.0.0.1 in a background thread: for tests and the browser benchmark."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path


class ServerThread:
    """create_app served by uvicorn on 127.0.0.1 (a secure context) on a free port."""

    def __init__(self, bundle: Path, weights: Path | None) -> None:
        import uvicorn

        from .app import create_app

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        config = uvicorn.Config(
            create_app(bundle, weights), host="127.0.0.1", port=port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the web app did not start on 127.0.0.1")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
