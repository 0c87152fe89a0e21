"""Who the client is behind a reverse proxy: `X-Forwarded-*` believed only from `TRUSTED_PROXIES`.

Any client can send `X-Forwarded-For: 1.2.3.4`. Believed from anyone, it would let a client
pick the IP its rate limits count against, and `X-Forwarded-Host` would let it pass the admin's
same-origin check. So the headers count only when the direct peer is a trusted proxy:

- the client address and scheme (`X-Forwarded-For`, `X-Forwarded-Proto`) are resolved by
  uvicorn's `ProxyHeadersMiddleware` (the rightmost address that is not itself a trusted proxy);
- the request is marked as having come through a trusted proxy (`via_trusted_proxy`), so that
  `X-Forwarded-Host` can be believed where it matters (`backend.admin.csrf`).

The app does this itself, whatever server runs it: `tablestack serve` turns uvicorn's own proxy
handling off (it trusts 127.0.0.1 by default). With no trusted proxy it is not installed
(`create_app`).
"""

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

VIA_TRUSTED_PROXY = "tablestack.via_trusted_proxy"


def via_trusted_proxy(scope: Scope) -> bool:
    """Whether the request's direct peer is a trusted proxy (its forwarded headers count)."""
    return bool(scope.get(VIA_TRUSTED_PROXY, False))


def forwarded_host(scope: Scope) -> str | None:
    """The `X-Forwarded-Host` a trusted proxy set (the last value: the one it added), or None."""
    if not via_trusted_proxy(scope):
        return None
    values = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-host"
    ]
    if not values:
        return None
    last = ",".join(values).rsplit(",", 1)[-1].strip()
    return last or None


class TrustedProxies:
    """Outermost middleware: resolve the client behind trusted proxies, mark such requests."""

    def __init__(self, app: ASGIApp, trusted: list[str]) -> None:
        self.app = app
        self.resolve = ProxyHeadersMiddleware(app, trusted_hosts=trusted)  # type: ignore[arg-type]
        self.trusted = self.resolve.trusted_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        if client is not None and client[0] in self.trusted:
            scope[VIA_TRUSTED_PROXY] = True
            await self.resolve(scope, receive, send)  # type: ignore[arg-type]
            return
        await self.app(scope, receive, send)
