"""Rate limits: per user and per IP on the API, and sign-in protection (`limits` library).

- `backend.ratelimit.api`: every `/api` request, by the caller's role and the route's kind;
- `backend.ratelimit.signin`: `sign_in_attempt` (locks with exponential backoff, and strict
  limits) for the sign-in routes, `throttle` for other routes a guesser would hammer;
- `backend.ratelimit.counters`: where the counts live (Redis when `REDIS_URL` is set);
- `backend.ratelimit.rejection`: the 429 and its headers, and `reject`, where every refusal
  is made.

`install_rate_limits(app, settings)` puts it all in front of the app (nothing with
`RATE_LIMITS_ENABLED=false`, and the helpers then let everything through).
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from backend.config import Settings
from backend.db import Database
from backend.ratelimit.api import ApiPolicy, ApiRateLimits
from backend.ratelimit.counters import Counters
from backend.ratelimit.rejection import RateLimited
from backend.ratelimit.signin import SignInAttempt, SignInGuard, sign_in_attempt, throttle

__all__ = [
    "RateLimited",
    "RateLimits",
    "SignInAttempt",
    "install_rate_limits",
    "sign_in_attempt",
    "throttle",
]


class RateLimits:
    """An app's counters, API policy and sign-in guard (`app.state.rate_limits`)."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.counters = Counters(settings.redis_url, settings.redis_key_prefix)
        self.api = ApiPolicy(
            settings, database, self.counters.limiter(settings.rate_limit_strategy)
        )
        self.signin = SignInGuard(self.counters, settings)


def install_rate_limits(app: FastAPI, settings: Settings) -> None:
    """Limit every `/api` request and make the sign-in guard available to every route.

    Call before adding CORS (so a 429 carries CORS headers) and after `app.state.database`
    is set.
    """
    if not settings.rate_limits_enabled:
        return
    limits = RateLimits(settings, app.state.database)
    app.state.rate_limits = limits
    app.add_middleware(ApiRateLimits, limits=limits, policy=limits.api)
    app_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with app_lifespan(app) as state:
            try:
                yield state
            finally:
                limits.counters.close()

    app.router.lifespan_context = lifespan
