"""Readiness and graceful shutdown (RELIABILITY.md FT-3): on SIGTERM readiness goes false at
once, requests in flight finish, and the process exits within the graceful timeout."""

from __future__ import annotations

from types import FrameType

import uvicorn


class Readiness:
    """Whether the server should be sent new work: false while starting and once draining."""

    def __init__(self) -> None:
        self.ready = False
        self.draining = False

    def mark_ready(self) -> None:
        # A server that has started to drain never becomes ready again.
        if not self.draining:
            self.ready = True

    def mark_draining(self) -> None:
        self.ready = False
        self.draining = True


class GracefulServer(uvicorn.Server):
    """uvicorn.Server that marks `readiness` draining as soon as it is told to exit.

    `config.timeout_graceful_shutdown` must be set: it bounds how long requests in flight may
    take to finish before they are cancelled and the process exits."""

    def __init__(self, config: uvicorn.Config, readiness: Readiness) -> None:
        if config.timeout_graceful_shutdown is None:
            raise ValueError("GracefulServer needs config.timeout_graceful_shutdown (seconds)")
        super().__init__(config)
        self.readiness = readiness

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.readiness.mark_draining()
        super().handle_exit(sig, frame)
