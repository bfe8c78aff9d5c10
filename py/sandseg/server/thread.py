"""The web app on 127.0.0.1 in a background thread: for tests and the benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .api import ApiSettings
    from .engine import Engine


class ServerThread:
    """create_app served by uvicorn on 127.0.0.1 (a secure context) on a free port; with an
    `engine`, the offload API too; `page_weights`: what the page downloads (default
    `weights`)."""

    def __init__(
        self,
        bundle: Path,
        weights: Path | None,
        *,
        engine: Engine | None = None,
        settings: ApiSettings | None = None,
        token: str | None = None,
        page_weights: Path | None = None,
    ) -> None:
        import uvicorn

        from .app import create_app
        from .guards import allowed_hosts_for
        from .lifecycle import GracefulServer, Readiness

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.readiness = Readiness()
        app = create_app(
            bundle,
            weights,
            hosts=allowed_hosts_for("127.0.0.1", port),
            engine=engine,
            settings=settings,
            token=token,
            readiness=self.readiness,
            page_weights=page_weights,
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=5
        )
        self._server = GracefulServer(config, self.readiness)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"
        self.port = port

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the web app did not start on 127.0.0.1")
            time.sleep(0.05)
        self.readiness.mark_ready()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent): the socket closes, as when a server goes away."""
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __exit__(self, *exc: object) -> None:
        self.stop()
