"""Host and Origin on every request (SV-6), the bearer token and the bind check (SV-5)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from sandseg.server.guards import (
    BindError,
    HostOriginGuard,
    TokenGuard,
    allowed_hosts_for,
    check_bind,
    is_loopback,
)

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
BASE = "http://127.0.0.1:8000"
TOKEN = "s3cret-token-0123456789"


async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


def inner_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/x", _ok, methods=METHODS),
            Route("/api/run", _ok, methods=METHODS),
            Route("/api/health", _ok),
            WebSocketRoute("/ws", _echo),
        ]
    )


def host_guarded() -> HostOriginGuard:
    return HostOriginGuard(inner_app(), allowed_hosts_for("127.0.0.1", 8000))


def call(app: ASGIApp, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    """Run one plain GET / through `app` with exactly these raw headers."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": headers}

    async def run() -> None:
        await app(scope, receive, send)

    asyncio.run(run())
    return sent


# -- allowed hosts and the bind check ------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_a_loopback_bind_allows_the_loopback_names(host: str) -> None:
    assert allowed_hosts_for(host, 8000) == {"127.0.0.1:8000", "localhost:8000", "[::1]:8000"}


def test_another_bind_allows_its_name_and_the_loopback_names() -> None:
    loopback = {"127.0.0.1:8443", "localhost:8443", "[::1]:8443"}
    assert allowed_hosts_for("Box.LAN", 8443) == {"box.lan:8443", *loopback}
    assert allowed_hosts_for("fe80::1", 8443) == {"[fe80::1]:8443", *loopback}


def test_the_default_port_also_allows_names_without_a_port() -> None:
    assert {"localhost", "localhost:80", "127.0.0.1"} <= allowed_hosts_for("127.0.0.1", 80)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_binds_need_no_token(host: str) -> None:
    check_bind(host, None)
    check_bind(host, TOKEN)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "box.lan"])
@pytest.mark.requirement("SV-5")
def test_other_binds_refuse_to_start_without_a_token(host: str) -> None:
    with pytest.raises(BindError) as info:
        check_bind(host, None)
    assert isinstance(info.value, ValueError)
    for hint in ("--token", "SANDSEG_TOKEN", "127.0.0.1"):
        assert hint in str(info.value)
    check_bind(host, TOKEN)


@pytest.mark.parametrize("token", ["", "short", "x" * 15, "sixteen chars ok", "caf\xe9" * 4])
def test_weak_or_unsendable_tokens_are_refused(token: str) -> None:
    with pytest.raises(BindError, match="at least 16"):
        check_bind("0.0.0.0", token)
    check_bind("0.0.0.0", "x" * 16)


# -- Host and Origin -----------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_requests_from_the_app_itself_pass(method: str) -> None:
    with TestClient(host_guarded(), base_url=BASE) as client:
        plain = client.request(method, "/x")
        same_origin = client.request(method, "/x", headers={"Origin": BASE})
    assert plain.status_code == 200
    assert same_origin.status_code == 200


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "127.0.0.1:8001", "127.0.0.1", "0.0.0.0:8000"]
)
@pytest.mark.requirement("SV-6")
def test_an_unexpected_host_is_refused_on_every_method(method: str, host: str) -> None:
    with TestClient(host_guarded(), base_url=BASE) as client:
        response = client.request(method, "/nowhere", headers={"Host": host})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    if method != "HEAD":
        assert response.json()["error"].startswith("unexpected Host header")


@pytest.mark.parametrize("host", ["LOCALHOST:8000", "[::1]:8000", "localhost:8000"])
def test_every_loopback_name_passes_in_any_case(host: str) -> None:
    with TestClient(host_guarded(), base_url=BASE) as client:
        assert client.get("/x", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("origin", ["http://localhost:8000", "https://127.0.0.1:8000", BASE])
def test_an_origin_of_an_allowed_host_passes(origin: str) -> None:
    with TestClient(host_guarded(), base_url=BASE) as client:
        assert client.post("/x", headers={"Origin": origin}).status_code == 200


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "origin",
    [
        "null",
        "http://evil.example",
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8000.evil.example",
        "http://127.0.0.1:8000/",
        "ftp://127.0.0.1:8000",
        "127.0.0.1:8000",
        "",
    ],
)
@pytest.mark.requirement("SV-6")
def test_a_foreign_origin_is_refused_on_every_method(method: str, origin: str) -> None:
    with TestClient(host_guarded(), base_url=BASE) as client:
        response = client.request(method, "/x", headers={"Origin": origin})
    assert response.status_code == 403
    if method != "HEAD":
        assert response.json() == {"error": "cross-origin requests are not allowed"}


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"host", b"127.0.0.1:8000"), (b"host", b"evil.example")],
        [(b"host", b"127.0.0.1:8000"), (b"origin", BASE.encode()), (b"origin", b"null")],
    ],
    ids=["no host", "two hosts", "a second origin"],
)
def test_missing_or_doubled_headers_are_refused(headers: list[tuple[bytes, bytes]]) -> None:
    sent = call(host_guarded(), headers)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 403


def test_a_cross_origin_websocket_is_refused() -> None:
    url = "ws://127.0.0.1:8000/ws"
    with TestClient(host_guarded()) as client:
        with client.websocket_connect(url, headers={"Origin": BASE}) as websocket:
            assert websocket.receive_text() == "hello"
        evil = {"Origin": "http://evil.example"}
        with (
            pytest.raises(WebSocketDisconnect) as info,
            client.websocket_connect(url, headers=evil),
        ):
            pytest.fail("the websocket was accepted")
    assert info.value.code == 1008


# -- the bearer token ----------------------------------------------------------------------


def token_guarded(token: str | None) -> TokenGuard:
    return TokenGuard(inner_app(), token, public_paths={"/api/health"})


def test_without_a_token_everything_passes() -> None:
    with TestClient(token_guarded(None)) as client:
        assert client.post("/api/run").status_code == 200


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_right_token_passes(scheme: str) -> None:
    with TestClient(token_guarded(TOKEN)) as client:
        response = client.post("/api/run", headers={"Authorization": f"{scheme} {TOKEN}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        TOKEN,
        f"Basic {TOKEN}",
        "Bearer",
        "Bearer ",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN.upper()}",
        "Bearer caf\xe9",
    ],
)
def test_a_missing_or_wrong_token_is_refused(authorization: str | None) -> None:
    headers = {} if authorization is None else {b"Authorization": authorization.encode("latin-1")}
    with TestClient(token_guarded(TOKEN)) as client:
        response = client.post("/api/run", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    assert "Authorization: Bearer" in response.json()["error"]
    assert TOKEN not in response.text


@pytest.mark.parametrize("path", ["/api/health", "/x", "/api"])
def test_public_paths_and_paths_outside_the_api_need_no_token(path: str) -> None:
    with TestClient(token_guarded(TOKEN)) as client:
        assert client.get(path).status_code in (200, 404)
        assert client.get(path).status_code != 401
