"""Opening a subscription from a request, and what a stream sends, for both transports.

The SSE route and the WebSocket route take the same query parameters and send the same
frames; only the wire format differs (`backend.realtime.routes`):

- `resources=products,categories` (default: every table the caller's role may read);
- filters as on the list route, `field=value` / `field__op=value` / `q=`, with one resource;
- `since=<cursor>` (or SSE's `Last-Event-ID` header): first every event after it;
- `ticket=<ticket>` for browsers, else `Authorization: Bearer <token>`.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from starlette.requests import HTTPConnection

from backend.auth.dependencies import read_caller, unauthorized
from backend.auth.tokens import InvalidToken, TokenClaims, read_token_claims
from backend.config import Settings
from backend.db import Database
from backend.realtime.events import Event
from backend.realtime.feed import Feed
from backend.realtime.filters import parse_filters
from backend.realtime.subscriptions import RELOAD, Closed, Subscription
from backend.realtime.tickets import read_ticket, token_expiry
from backend.registry import ResourceOptions, registry

OWN_PARAMETERS = ("resources", "since", "ticket")


@dataclass(frozen=True, slots=True)
class Frame:
    """One thing to send: an event, a heartbeat, or the reason the stream ends."""

    event: Event | None = None
    closed: Closed | None = None

    @property
    def reload(self) -> bool:
        return self.closed is not None and self.closed.code == RELOAD


HEARTBEAT = Frame()


class Streams:
    """The process's feed, and the subscriptions opened on it."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.feed = Feed(database, settings)

    async def start(self) -> None:
        await self.feed.start()

    async def stop(self) -> None:
        await self.feed.stop()

    async def open(self, connection: HTTPConnection) -> tuple[Subscription, int | None]:
        """The subscription a request asks for, and its cursor; 401/403/422 when it may not."""
        claims, expires_at = self._credentials(connection)
        role = None
        if claims is not None:
            async with self.database.api_connection() as db:
                role = (await read_caller(db, claims)).role  # 401: gone, inactive or revoked
        elif not self.settings.anonymous_read:
            raise unauthorized("Not authenticated")
        query = connection.query_params
        resources = _resources(query.get("resources"))
        filters = [(k, v) for k, v in query.multi_items() if k not in OWN_PARAMETERS]
        conditions = []
        if filters:
            if resources is None or len(resources) != 1:
                raise RequestValidationError(
                    [
                        {
                            "type": "value_error",
                            "loc": ("query", filters[0][0]),
                            "msg": "filters need exactly one resource in `resources`",
                        }
                    ]
                )
            conditions = parse_filters(resources[0], filters, self.feed.dialect)
        subscription = Subscription(
            user_id=None if claims is None else claims.user_id,
            role=role,
            auth_version=None if claims is None else claims.auth_version,
            resources=resources,
            conditions=conditions,
            expires_at=expires_at,
            settings=self.settings,
        )
        for resource in resources or ():
            if not subscription.may_read(resource):
                if role is None:
                    raise unauthorized("Not authenticated")
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"Role {role.value!r} may not read {resource.name}; it needs "
                    f"{resource.read_role.value!r}",
                )
        if not await self.feed.ready(timeout=5.0):  # the database is away, or not started
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "The change feed is not running; try again later",
                headers={"Retry-After": "1"},
            )
        subscription.opened_at = self.feed.position
        return subscription, _cursor(connection)

    def _credentials(self, connection: HTTPConnection) -> tuple[TokenClaims | None, float | None]:
        """(the token's claims, when their access expires) from a ticket or a bearer token."""
        ticket = connection.query_params.get("ticket")
        if ticket:
            try:
                return read_ticket(ticket, self.settings)
            except InvalidToken:
                raise unauthorized(
                    "Invalid or expired ticket; get a new one from POST /api/realtime/tickets",
                    error="invalid_token",
                ) from None
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if not (scheme and token) or scheme.lower() != "bearer":
            return None, None
        try:
            claims = read_token_claims(token, self.settings)
        except InvalidToken:
            raise unauthorized("Invalid or expired token", error="invalid_token") from None
        return claims, token_expiry(token)

    async def frames(self, subscription: Subscription, since: int | None) -> AsyncIterator[Frame]:
        """What the client receives: the missed events, then live ones and heartbeats, and
        last the reason the stream ends (never a silent end, short of a lost connection).

        Without a cursor the stream starts where the feed stood when the request was opened
        (`open`), so nothing published while the response starts is missed."""
        feed = self.feed
        start = subscription.opened_at if since is None else since
        try:
            async for events in feed.replay(subscription, start, check=since is not None):
                for change in events:
                    yield Frame(event=change)
            while True:
                events = await subscription.next(self.settings.realtime_heartbeat_s)
                if not events:
                    yield HEARTBEAT
                for change in events:
                    yield Frame(event=change)
        except Closed as closed:
            yield Frame(closed=closed)
        finally:
            feed.subscriptions.discard(subscription)


def _resources(raw: str | None) -> list[ResourceOptions] | None:
    names = [name.strip() for name in (raw or "").split(",") if name.strip()]
    if not names:
        return None
    unknown = [name for name in names if name not in registry]
    if unknown:
        known = ", ".join(sorted(r.name for r in registry))
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", "resources"),
                    "msg": f"unknown resource {unknown[0]!r}; resources: {known}",
                    "input": raw,
                }
            ]
        )
    return [registry.get(name) for name in dict.fromkeys(names)]


def _cursor(connection: HTTPConnection) -> int | None:
    """`Last-Event-ID` (an EventSource reconnecting), else `since`; 422 unless a number."""
    for where, name, raw in (
        ("header", "Last-Event-ID", connection.headers.get("last-event-id")),
        ("query", "since", connection.query_params.get("since")),
    ):
        if raw is None or raw == "":
            continue
        if not raw.strip().isdigit() or len(raw.strip()) > 18:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": (where, name),
                        "msg": f"{name} must be a cursor (a whole number) from an earlier event",
                        "input": raw,
                    }
                ]
            )
        return int(raw.strip())
    return None
