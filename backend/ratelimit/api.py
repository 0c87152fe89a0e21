"""Limits on every `/api` request: per user by their role, per client IP when anonymous.

A plain ASGI middleware in front of the API (inside CORS, so a 429 still carries the CORS
headers a browser needs to read it). Per request it reads the bearer token's user id (the
token check is cached by `backend.auth.tokens`), picks the limits of the caller's role and the
route's kind (read: GET/HEAD/OPTIONS; write: the rest) and counts one hit:

- a signed-in caller counts against `RATE_LIMIT_<ROLE>_<KIND>` under their user id, and against
  `RATE_LIMIT_PER_IP` under their IP (many tokens from one address);
- a caller without a valid token counts against `RATE_LIMIT_ANONYMOUS_<KIND>` under their IP
  (an IPv6 client under its /64, which one subscriber usually holds whole).

The role comes from a per-process cache (`ROLE_TTL_S`), filled from `users` on a miss: a role
change moves the caller to the new role's limits within a minute (what the caller may *do* is
still checked fresh by every route). Routes that run limits of their own (`GUARDED_PATHS`, the
sign-in) are left alone.
"""

import logging
import time
from functools import lru_cache
from ipaddress import ip_network
from typing import TYPE_CHECKING

from fastapi import HTTPException
from limits import RateLimitItem, parse_many
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.auth.dependencies import read_caller
from backend.auth.tokens import InvalidToken, TokenClaims, read_token_claims
from backend.config import Settings
from backend.db import Database
from backend.models import Role
from backend.ratelimit.counters import Limiter, Window
from backend.ratelimit.rejection import reject

if TYPE_CHECKING:
    from backend.ratelimit import RateLimits

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
GUARDED_PATHS = frozenset({"/api/auth/token"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ROLE_TTL_S = 60.0
ROLE_RETRY_S = 5.0  # a failed role lookup (database down) is retried after this long
MAX_CACHED_ROLES = 10_000
STATE_KEY = "tablestack.rate_limits"  # the app's RateLimits, for code behind the middleware


def parse(value: str) -> tuple[RateLimitItem, ...]:
    """A limit setting (validated by Settings) as `limits` items; empty: none."""
    return tuple(parse_many(value)) if value.strip() else ()


@lru_cache(maxsize=4096)
def client_key(host: str) -> str:
    """What an address counts under: itself, or its /64 for IPv6."""
    if ":" not in host:
        return host
    try:
        return str(ip_network(f"{host}/64", strict=False))
    except ValueError:
        return host


def client_ip(scope: Scope) -> str:
    """The client's address as resolved by `backend.proxies` (the direct peer otherwise)."""
    client = scope.get("client")
    return client_key(client[0]) if client else "unknown"


class RoleCache:
    """Users' roles for picking their limits, read from `users` at most once a minute each."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.entries: dict[TokenClaims, tuple[Role | None, float]] = {}

    async def role(self, claims: TokenClaims) -> Role | None:
        """The role of the token's user; None when they are gone or inactive, or the token was
        revoked (the route answers 401)."""
        now = time.monotonic()
        entry = self.entries.get(claims)
        if entry is not None and entry[1] > now:
            return entry[0]
        role, ttl = await self._load(claims)
        if len(self.entries) >= MAX_CACHED_ROLES:
            self.entries.clear()
        self.entries[claims] = (role, now + ttl)
        return role

    async def _load(self, claims: TokenClaims) -> tuple[Role | None, float]:
        user_id = claims.user_id
        try:
            async with self.database.api_connection() as connection:
                caller = await read_caller(connection, claims)
        except HTTPException:
            return None, ROLE_RETRY_S
        except Exception as exc:
            # Only picks the limits: the route itself meets the same failure and answers it
            # (503 for a database outage). Meanwhile the caller counts as a viewer.
            logger.debug("rate limits: cannot read the role of user %s: %r", user_id, exc)
            return Role.viewer, ROLE_RETRY_S
        return caller.role, ROLE_TTL_S


class ApiPolicy:
    """Which limits apply to a request, counted in `limiter`."""

    def __init__(self, settings: Settings, database: Database, limiter: Limiter) -> None:
        self.settings = settings
        self.limiter = limiter
        self.headers = settings.rate_limit_headers
        self.roles = RoleCache(database)
        self.tiers: dict[tuple[Role | None, str], tuple[RateLimitItem, ...]] = {
            (None, "read"): parse(settings.rate_limit_anonymous_read),
            (None, "write"): parse(settings.rate_limit_anonymous_write),
            (Role.viewer, "read"): parse(settings.rate_limit_viewer_read),
            (Role.viewer, "write"): parse(settings.rate_limit_viewer_write),
            (Role.editor, "read"): parse(settings.rate_limit_editor_read),
            (Role.editor, "write"): parse(settings.rate_limit_editor_write),
            (Role.admin, "read"): parse(settings.rate_limit_admin_read),
            (Role.admin, "write"): parse(settings.rate_limit_admin_write),
        }
        self.per_ip = parse(settings.rate_limit_per_ip)

    def claims(self, scope: Scope) -> TokenClaims | None:
        """The claims of a valid bearer token, None without one (or with a bad one)."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                token = token.strip()
                if not token or scheme.lower() != "bearer":
                    return None
                try:
                    return read_token_claims(token, self.settings)
                except InvalidToken:
                    return None  # the route answers 401; meanwhile counted as anonymous
        return None

    async def count(self, scope: Scope) -> tuple[Window | None, JSONResponse | None]:
        """Count the request; the window to show, or the 429 to answer instead."""
        kind = "read" if scope["method"] in READ_METHODS else "write"
        ip = client_ip(scope)
        claims = self.claims(scope)
        role = None if claims is None else await self.roles.role(claims)
        key = ("ip", ip) if role is None or claims is None else ("user", str(claims.user_id))
        shown: Window | None = None
        for item in self.tiers[(role, kind)]:
            if self.headers:
                window = await self.limiter.hit(item, "api", kind, *key)
            elif await self.limiter.allowed(item, "api", kind, *key):
                continue
            else:
                window = await self.limiter.window(item, "api", kind, *key)
            if not window.allowed:
                return None, _response(reject(kind, key[0], window, time.time()))
            if shown is None or window.remaining < shown.remaining:
                shown = window
        if role is not None:
            for item in self.per_ip:
                if not await self.limiter.allowed(item, "api", "ip", ip):
                    window = await self.limiter.window(item, "api", "ip", ip)
                    return None, _response(reject(kind, "ip", window, time.time()))
        return shown, None


def _response(refusal: HTTPException) -> JSONResponse:
    return JSONResponse(
        {"detail": refusal.detail}, status_code=refusal.status_code, headers=refusal.headers
    )


class ApiRateLimits:
    """ASGI middleware: `ApiPolicy` on every `/api` request, `RateLimit-*` on its answer."""

    def __init__(self, app: ASGIApp, limits: "RateLimits", policy: ApiPolicy) -> None:
        self.app = app
        self.limits = limits
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[STATE_KEY] = self.limits
        path: str = scope["path"]
        if not path.startswith(API_PREFIX) or path in GUARDED_PATHS:
            await self.app(scope, receive, send)
            return
        shown, refusal = await self.policy.count(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if shown is None:
            await self.app(scope, receive, send)
            return
        now = time.time()
        added = [
            (b"ratelimit-limit", str(shown.item.amount).encode()),
            (b"ratelimit-remaining", str(shown.remaining).encode()),
            (b"ratelimit-reset", str(max(int(shown.reset_at - now + 0.999), 0)).encode()),
        ]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)
