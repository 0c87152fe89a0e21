"""How a rate limit shows in an answer, and the one place a request is refused for its rate.

Headers as draft-ietf-httpapi-ratelimit-headers (the three-field form most clients read):
`RateLimit-Limit` (requests per window), `RateLimit-Remaining`, `RateLimit-Reset` (seconds until
the window frees a request) and `RateLimit-Policy` (`<limit>;w=<window seconds>`); a 429 adds
`Retry-After` (seconds, RFC 9110).
"""

import logging
import math
from functools import lru_cache
from typing import Any

from fastapi import HTTPException, status
from limits import RateLimitItem
from starlette.responses import HTMLResponse

from backend.crud.errors import Message
from backend.ratelimit.counters import Window

logger = logging.getLogger(__name__)

# For an operation's `responses=`: the 429 and its headers in the OpenAPI document.
TOO_MANY_REQUESTS: dict[int | str, dict[str, Any]] = {
    429: {
        "model": Message,
        "description": "Too many requests: wait `Retry-After` seconds",
        "headers": {
            name: {"description": description, "schema": {"type": "integer", "minimum": 0}}
            for name, description in (
                ("Retry-After", "Seconds to wait before trying again"),
                ("RateLimit-Limit", "Requests allowed per window"),
                ("RateLimit-Remaining", "Requests left in the window"),
                ("RateLimit-Reset", "Seconds until the window frees a request"),
            )
        },
    }
}


class RateLimited(HTTPException):
    """429 Too Many Requests, with `Retry-After` and the `RateLimit-*` headers."""

    def __init__(self, kind: str, by: str, retry_after: int, headers: dict[str, str]) -> None:
        self.kind = kind
        self.by = by
        self.retry_after = retry_after
        detail = f"Too many requests; retry in {retry_after} s"
        if kind == "signin":
            detail = f"Too many sign-in attempts; retry in {retry_after} s"
        super().__init__(status.HTTP_429_TOO_MANY_REQUESTS, detail, headers=headers)


@lru_cache(maxsize=256)
def _policy(item: RateLimitItem) -> str:
    return f"{item.amount};w={item.get_expiry()}"


def window_headers(window: Window, now: float) -> dict[str, str]:
    """The `RateLimit-*` headers of `window` at `now`."""
    return {
        "RateLimit-Limit": str(window.item.amount),
        "RateLimit-Remaining": str(max(window.remaining, 0)),
        "RateLimit-Reset": str(max(math.ceil(window.reset_at - now), 0)),
        "RateLimit-Policy": _policy(window.item),
    }


def reject(
    kind: str, by: str, window: Window | None, now: float, until: float | None = None
) -> RateLimited:
    """The one place a request is refused for its rate (what a metric of 429s counts).

    `kind` is the route kind (read, write, signin, or an action such as password-reset), `by`
    what ran out (user, ip, account, account-lock, ip-lock); `window` the limit that did, if
    any; `until` the end of a lock, when a lock refused it.
    """
    end = until if until is not None else window.reset_at if window is not None else now
    retry_after = max(math.ceil(end - now), 1)
    headers = {"Retry-After": str(retry_after)}
    if window is not None:
        headers.update(window_headers(window, now))
        headers["RateLimit-Remaining"] = "0"
        headers["RateLimit-Reset"] = str(retry_after)
    logger.debug("rate limited: %s by %s, retry after %d s", kind, by, retry_after)
    return RateLimited(kind, by, retry_after, headers)


THROTTLED_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Too many sign-in attempts</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>Too many sign-in attempts</h1>
<p>Signing in is paused for this account or this network: try again in {wait}.</p>
<p><a href="{back}">Back to the sign-in page</a></p>
</body></html>
"""


def throttled_page(refusal: RateLimited, back: str) -> HTMLResponse:
    """The admin's answer to a refused sign-in: a readable 429 page with `Retry-After`."""
    seconds = refusal.retry_after
    if seconds == 1:
        wait = "1 second"
    else:
        wait = f"{seconds} seconds" if seconds < 120 else f"{math.ceil(seconds / 60)} minutes"
    return HTMLResponse(
        THROTTLED_PAGE.format(wait=wait, back=back),
        status_code=refusal.status_code,
        headers=refusal.headers,
    )
