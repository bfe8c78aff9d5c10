"""Who may talk to the server: Host and Origin on every request (SV-6), a bearer token for the
API when the server listens beyond loopback (SV-5).

Both are ASGI middleware that refuse with a JSON `{"error": ...}` body before the app runs."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Collection

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..predictor import InputError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
MIN_TOKEN_CHARS = 16
# Close code for a refused WebSocket handshake ("policy violation"); the server answers 403.
_WS_POLICY = 1008


# An InputError, so that `sandseg serve` reports it in one line and exits with 2.
class BindError(InputError):
    """The host and token given to `sandseg serve` would expose the server."""


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_hosts_for(host: str, port: int) -> set[str]:
    """The Host values a browser sends for a server bound to `host`:`port`: the bound name
    and the loopback names, each as host:port (IPv6 literals in brackets)."""
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    names = {name.lower(), *LOOPBACK_NAMES}
    hosts = {f"{n}:{port}" for n in names}
    # Browsers leave the port out of Host when it is the scheme's default.
    if port in (80, 443):
        hosts |= names
    return hosts


def check_bind(host: str, token: str | None) -> None:
    """Refuse to start on a non-loopback host without a token, or with a weak token (SV-5)."""
    if token is not None and (
        len(token) < MIN_TOKEN_CHARS
        or not token.isascii()
        or not token.isprintable()
        or " " in token
    ):
        raise BindError(
            f"the token must be at least {MIN_TOKEN_CHARS} printable ASCII characters "
            "without spaces"
        )
    if token is None and not is_loopback(host):
        raise BindError(
            f"refusing to listen on {host} without a token: anyone who can reach it could use "
            "the server. Pass --token (or set SANDSEG_TOKEN), or bind 127.0.0.1"
        )


class HostOriginGuard:
    """403 unless Host is one of `allowed_hosts` (DNS rebinding) and Origin, when sent, is
    http(s)://<an allowed host> (cross-site requests)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Collection[str]) -> None:
        self.app = app
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)
        self._origins = frozenset(
            f"{scheme}://{h}" for scheme in ("http", "https") for h in self.allowed_hosts
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = self._problem(scope) if scope["type"] in ("http", "websocket") else None
        if problem is None:
            await self.app(scope, receive, send)
        else:
            await _refuse(scope, receive, send, 403, problem)

    def _problem(self, scope: Scope) -> str | None:
        hosts = _header(scope, b"host")
        if len(hosts) != 1 or hosts[0].decode("latin-1").lower() not in self.allowed_hosts:
            names = ", ".join(sorted(self.allowed_hosts))
            return f"unexpected Host header: this server answers only to {names}"
        if any(o.decode("latin-1").lower() not in self._origins for o in _header(scope, b"origin")):
            return "cross-origin requests are not allowed"
        return None


class TokenGuard:
    """401 for requests under `protected_prefix` (but not `public_paths`) that lack
    `Authorization: Bearer <token>`; with `token` None everything passes."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        protected_prefix: str = "/api/",
        public_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self._token = None if token is None else token.encode()
        self.protected_prefix = protected_prefix
        self.public_paths = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._token is None
            or scope["type"] not in ("http", "websocket")
            or not scope["path"].startswith(self.protected_prefix)
            or scope["path"] in self.public_paths
            or self._authorized(scope, self._token)
        ):
            await self.app(scope, receive, send)
            return
        message = "this API needs a token: send Authorization: Bearer <token>"
        await _refuse(scope, receive, send, 401, message, {"WWW-Authenticate": "Bearer"})

    @staticmethod
    def _authorized(scope: Scope, token: bytes) -> bool:
        values = _header(scope, b"authorization")
        if len(values) != 1:
            return False
        scheme, _, credentials = values[0].strip().partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), token)


def _header(scope: Scope, name: bytes) -> list[bytes]:
    return [value for key, value in scope["headers"] if key.lower() == name]


async def _refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": _WS_POLICY})
        return
    await JSONResponse({"error": message}, status_code=status, headers=headers)(
        scope, receive, send
    )
