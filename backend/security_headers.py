"""Security headers on every response of the API and the admin.

- `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`: no other site can frame the
  signed-in admin (clickjacking).
- `X-Content-Type-Options: nosniff`: browsers take the declared content type.
- `Referrer-Policy: same-origin`: admin URLs (ids, filters) do not leak to other sites.
- `Strict-Transport-Security` on responses to https requests (behind a proxy that says so):
  browsers keep to https afterwards.

A plain ASGI middleware (no per-request objects beyond the headers it adds): it sits in front
of every generated route, whose speed is measured.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALWAYS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class SecurityHeaders:
    """Adds the headers above to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = [*_ALWAYS, _HSTS] if scope.get("scheme") == "https" else _ALWAYS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(header for header in added if header[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
