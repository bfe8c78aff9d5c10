"""The ASGI app behind `sandseg serve`: the static web bundle and the weights, with the page's
security headers (RELIABILITY.md WB-1, WB-3)."""

from .app import create_app

__all__ = ["create_app"]
