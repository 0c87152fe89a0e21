"""Request limits: body size (413), query parameter length and JSON depth (422), and 422s that
echo what JSON cannot hold (NaN, Infinity, lone surrogates, deep nesting) - never a 500."""

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.config import Settings
from backend.crud.query import ParameterError, load_json
from backend.main import create_app
from backend.request_limits import RequestLimits
from tests.api.conftest import Rows

LIMIT = 4096  # MAX_BODY_BYTES in these tests
PARAM_LENGTH = 300  # MAX_QUERY_PARAM_LENGTH
DEPTH = 8  # MAX_JSON_DEPTH
JSON = {"content-type": "application/json"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        environment="test",
        max_body_bytes=LIMIT,
        max_query_param_length=PARAM_LENGTH,
        max_json_depth=DEPTH,
    )


def strict_json(response: Response) -> Any:
    """The body as RFC 8259 JSON: no NaN or Infinity, valid UTF-8."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(response.content.decode("utf-8"), parse_constant=refuse)


def padded(payload: dict[str, Any], size: int) -> bytes:
    """`payload` as JSON, padded with trailing whitespace to exactly `size` bytes."""
    body = json.dumps(payload).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


# Body size ---------------------------------------------------------------------------------


async def test_a_body_at_the_limit_is_accepted_and_one_byte_more_is_a_413(
    client: AsyncClient, admin: dict[str, str], rows: Rows
) -> None:
    payload = await rows.payload("categories")
    at_limit = await client.post(
        "/api/categories", content=padded(payload, LIMIT), headers={**admin, **JSON}
    )
    assert at_limit.status_code == 201, at_limit.text

    other = await rows.payload("categories")
    over = await client.post(
        "/api/categories", content=padded(other, LIMIT + 1), headers={**admin, **JSON}
    )
    assert over.status_code == 413
    assert strict_json(over) == {
        "detail": f"The request body is larger than the limit of {LIMIT} bytes."
    }
    assert over.headers["connection"] == "close"
    listed = await client.get("/api/categories", params={"name": other["name"]}, headers=admin)
    assert listed.json() == []  # refused before the route ran


async def test_a_chunked_body_over_the_limit_is_read_no_further_than_the_limit(
    client: AsyncClient, admin: dict[str, str], rows: Rows
) -> None:
    payload = json.dumps(await rows.payload("categories")).encode()
    chunk = 1000
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield payload
        for _ in range(1000):  # a megabyte of whitespace, if anyone read it all
            sent.append(chunk)
            yield b" " * chunk

    response = await client.post("/api/categories", content=chunks(), headers={**admin, **JSON})
    assert response.status_code == 413
    assert "content-length" not in response.request.headers  # chunked: counted as read
    assert strict_json(response)["detail"].startswith("The request body is larger than")
    # Read until the chunk that crossed the limit, and not one more.
    assert len(payload) + sum(sent) > LIMIT >= len(payload) + sum(sent[:-1])


async def test_a_chunked_body_within_the_limit_is_accepted(
    client: AsyncClient, admin: dict[str, str], rows: Rows
) -> None:
    payload = padded(await rows.payload("categories"), LIMIT)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, LIMIT, 1000):
            yield payload[start : start + 1000]

    response = await client.post("/api/categories", content=chunks(), headers={**admin, **JSON})
    assert response.status_code == 201, response.text


async def test_the_admin_answers_a_form_over_the_limit_with_a_plain_413(
    client: AsyncClient,
) -> None:
    form = {"username": "someone@example.com", "password": "x" * LIMIT}
    response = await client.post("/admin/login", data=form)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == f"The form sent is larger than the limit of {LIMIT} bytes.\n"

    async def chunks() -> AsyncIterator[bytes]:
        yield b"username=someone%40example.com&password="
        for _ in range(1000):
            yield b"x" * 1000

    chunked = await client.post(
        "/admin/login",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert chunked.status_code == 413
    assert chunked.text.startswith("The form sent is larger than the limit")


async def test_a_refused_body_still_carries_the_security_and_cors_headers(
    database_url: str,
) -> None:
    settings = Settings(
        database_url=database_url,
        environment="test",
        max_body_bytes=10,
        cors_origins=["https://front.example"],
    )
    app = create_app(settings)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post(
            "/api/categories",
            content=b"{" + b" " * 20 + b"}",
            headers={**JSON, "origin": "https://front.example"},
        )
    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == "https://front.example"
    assert response.headers["x-content-type-options"] == "nosniff"


@contextmanager
def served(settings: Settings) -> Iterator[int]:
    """The app served by uvicorn on a free port of 127.0.0.1 until the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="limits-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_served_app_answers_413_before_the_body_is_sent(database_url: str) -> None:
    """Over a real socket: the 413 comes back while the client still holds the rest of the
    body (none of it for a Content-Length, and nothing after the chunk that crossed the limit
    for a chunked upload), and the server closes the connection: it never reads the excess."""
    settings = Settings(database_url=database_url, environment="test", max_body_bytes=LIMIT)
    head = b"POST /api/categories HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    with served(settings) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head + b"Content-Length: 209715200\r\n\r\n")  # 200 MB announced
            response = answer(sock)
        assert response.startswith(b"HTTP/1.1 413 ")
        assert response.endswith(
            b'{"detail":"The request body is larger than the limit of 4096 bytes."}'
        )

        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b" " * 1000
            for _ in range(LIMIT // len(chunk) + 1):  # just over the limit; no last chunk
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            response = answer(sock)
        assert response.startswith(b"HTTP/1.1 413 ")


async def drive(app: ASGIApp, http_version: str, chunks: int) -> tuple[int, int]:
    """POST `chunks` chunks of 1000 bytes with no length header: (status, chunks read)."""
    messages: list[Message] = [{"type": "http.request", "body": b"x" * 1000, "more_body": True}]
    messages = messages * chunks + [{"type": "http.request", "body": b"", "more_body": False}]
    read = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal read
        read += 1
        return messages[read - 1]

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "http_version": http_version, "method": "POST", "path": "/api/x"}
    await app({**scope, "query_string": b"", "headers": []}, receive, send)
    return sent[0]["status"], read


async def test_an_http2_body_without_length_headers_is_counted() -> None:
    """HTTP/2 frames a body without Content-Length or Transfer-Encoding: it is counted too,
    and read no further than the chunk that crosses the limit."""

    async def body_length(scope: Scope, receive: Receive, send: Send) -> None:
        body = await Request(scope, receive).body()
        await PlainTextResponse(str(len(body)))(scope, receive, send)

    limits = RequestLimits(body_length, settings=Settings(max_body_bytes=LIMIT))
    assert await drive(limits, "2", 10) == (413, LIMIT // 1000 + 1)
    assert await drive(limits, "2", 4) == (200, 5)
    assert await drive(limits, "1.1", 0) == (200, 1)


# Query parameters --------------------------------------------------------------------------


async def test_a_query_parameter_over_the_maximum_length_is_a_422_naming_it(
    client: AsyncClient, admin: dict[str, str]
) -> None:
    at_limit = await client.get("/api/products", params={"q": "a" * PARAM_LENGTH}, headers=admin)
    assert at_limit.status_code == 200, at_limit.text

    over = await client.get("/api/products", params={"q": "a" * (PARAM_LENGTH + 1)}, headers=admin)
    assert over.status_code == 422
    assert strict_json(over) == {
        "detail": [
            {
                "type": "string_too_long",
                "loc": ["query", "q"],
                "msg": f"q: must be at most {PARAM_LENGTH} characters long",
                "ctx": {"max_length": PARAM_LENGTH},
            }
        ]
    }
    # Counted in characters as decoded, as the route sees them: é is 6 bytes in the URL.
    accented = await client.get("/api/products", params={"q": "é" * PARAM_LENGTH}, headers=admin)
    assert accented.status_code == 200, accented.text

    long_name = await client.get("/api/products", params={"x" * 400: "1"}, headers=admin)
    assert long_name.status_code == 422
    assert strict_json(long_name)["detail"][0]["loc"] == ["query", "x" * 64 + "..."]

    admin_page = await client.get("/admin/products/list", params={"search": "a" * 400})
    assert admin_page.status_code == 422
    assert (
        admin_page.text
        == f"The query parameter 'search' is longer than {PARAM_LENGTH} characters.\n"
    )


@pytest.mark.parametrize("parameter", ["filter", "sort", "range"])
async def test_react_admin_json_parameters_nested_too_deep_are_a_422_naming_them(
    client: AsyncClient, admin: dict[str, str], parameter: str
) -> None:
    for depth in (DEPTH + 1, 100):
        nested = "[" * depth + "]" * depth
        raw = '{"id":' + nested + "}" if parameter == "filter" else nested
        response = await client.get("/api/products", params={parameter: raw}, headers=admin)
        assert response.status_code == 422, response.text
        error = strict_json(response)["detail"][0]
        assert error["loc"] == ["query", parameter]
        assert error["msg"] == f"must be valid JSON nested at most {DEPTH} levels deep"


async def test_deep_json_parameters_are_refused_whatever_the_length_limit(
    database_url: str,
) -> None:
    """With the length limit out of the way, thousands of levels are a 422, not a 500."""
    settings = Settings(
        database_url=database_url,
        environment="test",
        max_query_param_length=1_000_000,
        anonymous_read=True,
    )
    app = create_app(settings)
    transport = ASGITransport(app=app)
    async with (
        LifespanManager(app),
        AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        for depth in (2000, 9000):  # brackets are 3 bytes each in the URL; httpx takes 64 KiB
            nested = "[" * depth + "]" * depth
            for parameter, raw in [
                ("filter", '{"name":' + nested + "}"),
                ("sort", nested),
                ("range", nested),
            ]:
                response = await client.get("/api/products", params={parameter: raw})
                assert response.status_code == 422, (parameter, depth, response.text[:200])
                assert strict_json(response)["detail"][0]["loc"] == ["query", parameter]


async def test_json_parameters_at_the_maximum_depth_are_parsed(
    client: AsyncClient, admin: dict[str, str]
) -> None:
    """The depth limit refuses nothing shallower: each parameter then gets its usual check."""
    nested = "[" * (DEPTH - 1) + "1" + "]" * (DEPTH - 1)
    response = await client.get(
        "/api/products", params={"filter": '{"id":' + nested + "}"}, headers=admin
    )
    assert response.status_code == 422
    assert "nested" not in strict_json(response)["detail"][0]["msg"]
    ok = await client.get("/api/products", params={"filter": '{"id":[1,2]}'}, headers=admin)
    assert ok.status_code == 200


def test_load_json_measures_depth_outside_strings_only() -> None:
    assert load_json('{"a": "[[[[[[[[[[[[{{{{{{{{{{"}', 3) == {"a": "[[[[[[[[[[[[{{{{{{{{{{"}
    assert load_json('[1, [2], [3, [4]], "\\"[[[[[["]', 3) == [1, [2], [3, [4]], '"[[[[[[']
    assert load_json("[" * 3 + "]" * 3, 3) == [[[]]]
    with pytest.raises(ParameterError):
        load_json("[" * 4 + "]" * 4, 3)
    with pytest.raises(ParameterError):
        load_json('[{"a": [{"b": []}]}]', 4)
    assert load_json('[{"a": [{"b": []}]}]', 5) == [{"a": [{"b": []}]}]
    with pytest.raises(ValueError):
        load_json("[1,", 3)
