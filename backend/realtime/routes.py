"""The realtime routes: `POST /api/realtime/tickets`, `GET /api/realtime/events` (Server-Sent
Events) and the WebSocket `/api/realtime/ws`.

Starlette's own WebSocket support rather than python-socketio: the feed is one-way (server to
client) and needs no rooms, acks or fallbacks; plain WebSockets and SSE work with every
browser's built-in `WebSocket` / `EventSource` and any HTTP client, without a client library
of a particular protocol version. SSE goes through sse-starlette, which ends open streams when
uvicorn shuts down (a streaming response would otherwise hold the shutdown forever).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel
from sse_starlette import EventSourceResponse
from starlette.websockets import WebSocketDisconnect

from backend.auth.dependencies import bearer_claims, bearer_scheme, read_caller, unauthorized
from backend.crud.errors import UNAUTHORIZED
from backend.realtime.events import message
from backend.realtime.streams import Frame, Streams
from backend.realtime.subscriptions import GOING_AWAY, Subscription
from backend.realtime.tickets import issue_ticket, token_expiry

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
SEND_TIMEOUT_S = 30.0  # a client that takes longer to accept one message is gone
_SHUTDOWN_GRACE_S = 2.0

router = APIRouter(prefix="/realtime", tags=["realtime"])

_SSE_DESCRIPTION = """\
A stream of the changes of every table the caller may read (`text/event-stream`), for
clients that only speak HTTP; the WebSocket `/api/realtime/ws` takes the same parameters and
sends the same JSON (see the README's "Realtime" section).

Each change is an unnamed event (`onmessage`) whose `id:` is its cursor and whose data is
`{"cursor", "resource", "action": "created"|"updated"|"deleted"|"loaded", "id", "version",
"at", "by", "record"}`; `record` is what `GET /api/<resource>/{id}` returns (none for a
delete; a bulk load has `rows` instead). Named events: `reload` (the cursor is older than the
history's retention: reload, then subscribe without one) and `close` (`{"code", "reason"}`:
the token expired, the role changed, the client fell behind, the server shuts down) just
before the stream ends. A `: heartbeat` comment keeps an idle stream alive through proxies.

Authenticate with `Authorization: Bearer <token>` or, from a browser, `ticket=` (from
`POST /api/realtime/tickets`). Resume with `Last-Event-ID` (EventSource sends it when it
reconnects) or `since=<cursor>`: every missed event first, in order, then live ones.
"""

_SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The stream of events",
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": 'id: 42\ndata: {"cursor":42,"resource":"products","action":'
                '"updated","id":3,"version":5,"at":"2026-11-29T12:00:00Z","by":'
                '"editor@example.com","record":{"id":3,"name":"Lamp"}}\n\n',
            }
        },
    },
    403: {"description": "The caller's role may not read one of the resources"},
    **UNAUTHORIZED,
}


class Ticket(BaseModel):
    """A short-lived ticket for opening a stream from a browser."""

    ticket: str
    expires_in: int


def _streams(connection: Request | WebSocket) -> Streams:
    streams: Streams = connection.app.state.realtime
    return streams


@router.post(
    "/tickets",
    name="realtime-ticket",
    operation_id="realtime-ticket",
    summary="Get a ticket for opening a realtime stream from a browser",
    description="EventSource and WebSocket cannot send an `Authorization` header, and a token "
    "in a URL lands in logs: put this ticket in the URL instead (`?ticket=`). It is valid "
    "for `REALTIME_TICKET_S` seconds (30); the stream it opens lasts as long as the token.",
    response_model=Ticket,
    responses=UNAUTHORIZED,
)
async def create_ticket(request: Request, credentials: Credentials) -> Ticket:
    streams = _streams(request)
    settings = streams.settings
    claims = bearer_claims(request, settings)
    if claims is None:
        raise unauthorized("Not authenticated")
    async with streams.database.api_connection() as db:
        await read_caller(db, claims)  # 401: gone, inactive or the token revoked
    token = request.headers["authorization"].partition(" ")[2].strip()
    return Ticket(
        ticket=issue_ticket(claims, token_expiry(token), settings),
        expires_in=settings.realtime_ticket_s,
    )


@router.get(
    "/events",
    name="realtime-events",
    operation_id="realtime-events",
    summary="Subscribe to changes (Server-Sent Events)",
    description=_SSE_DESCRIPTION,
    responses=_SSE_RESPONSES,
    response_model=None,
    response_class=EventSourceResponse,  # documents text/event-stream (not JSON) as the answer
)
async def stream_events(
    request: Request,
    credentials: Credentials,
    resources: Annotated[
        str | None,
        Query(description="Comma-separated resources (default: every one the role may read)"),
    ] = None,
    since: Annotated[
        int | None, Query(ge=0, description="Resume after this cursor (or `Last-Event-ID`)")
    ] = None,
    ticket: Annotated[
        str | None, Query(description="A ticket from `POST /api/realtime/tickets`")
    ] = None,
) -> EventSourceResponse:
    streams = _streams(request)
    subscription, cursor = await streams.open(request)
    shutdown = anyio.Event()

    async def body() -> AsyncIterator[dict[str, Any]]:
        watcher = asyncio.create_task(_close_on_shutdown(shutdown, subscription))
        try:
            async for frame in streams.frames(subscription, cursor):
                yield _sse(frame)
                if frame.closed is not None:
                    return
        finally:
            watcher.cancel()

    return EventSourceResponse(
        body(),
        ping=0,  # the stream sends its own heartbeats
        send_timeout=SEND_TIMEOUT_S,
        shutdown_event=shutdown,
        shutdown_grace_period=_SHUTDOWN_GRACE_S,
    )


def _sse(frame: Frame) -> dict[str, Any]:
    if frame.event is not None:
        return {"id": str(frame.event.cursor), "data": frame.event.data}
    if frame.closed is not None:
        closed = frame.closed
        kind = "reload" if frame.reload else "close"
        return {"event": kind, "data": message(kind, code=closed.code, reason=closed.reason)}
    return {"comment": "heartbeat"}


async def _close_on_shutdown(shutdown: anyio.Event, subscription: Subscription) -> None:
    await shutdown.wait()
    subscription.close(GOING_AWAY, "the server is shutting down; reconnect to resume")


@router.websocket("/ws", name="realtime-ws")
async def websocket_events(websocket: WebSocket) -> None:
    """The same feed over a WebSocket (protocol in the README's "Realtime" section)."""
    streams = _streams(websocket)
    await websocket.accept()
    try:
        subscription, cursor = await streams.open(websocket)
    except HTTPException as exc:
        code = 4000 + exc.status_code
        await _refuse(websocket, code, str(exc.detail))
        return
    except RequestValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"][1:])
        await _refuse(websocket, 4422, f"{where}: {error['msg']}")
        return
    reader = asyncio.create_task(_read_until_closed(websocket, subscription))
    try:
        async for frame in streams.frames(subscription, cursor):
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await websocket.send_text(_ws(frame))
            if frame.closed is not None:
                await websocket.close(frame.closed.code, _short(frame.closed.reason))
                return
    except (WebSocketDisconnect, TimeoutError, RuntimeError, OSError):
        return  # the client is gone (or stopped reading): nothing more to tell it
    finally:
        reader.cancel()
        streams.feed.subscriptions.discard(subscription)


def _ws(frame: Frame) -> str:
    if frame.event is not None:
        return '{"type":"change",' + frame.event.data[1:]
    if frame.closed is not None:
        kind = "reload" if frame.reload else "close"
        return message(kind, code=frame.closed.code, reason=frame.closed.reason)
    return message("heartbeat")


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.send_text(message("close", code=code, reason=reason))
        await websocket.close(code, _short(reason))


def _short(reason: str) -> str:
    """A close reason fits in 123 bytes (the full one went in the last message)."""
    encoded = reason.encode()
    return reason if len(encoded) <= 120 else encoded[:117].decode(errors="ignore") + "..."


async def _read_until_closed(websocket: WebSocket, subscription: Subscription) -> None:
    """Notice the client leaving (it sends nothing else the server needs)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while True:
            received = await websocket.receive()
            if received["type"] == "websocket.disconnect":
                break
    subscription.close(1000, "the client closed the connection")
