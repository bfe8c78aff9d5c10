"""The one error type routes raise: a status, a message for the client, optional headers.

The message is shown to the client as-is, so it must say what was wrong with the request and
what to do, and never carry internals (paths, tracebacks, class names) (SV-4)."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
