"""Cross-site request forgery protection for the admin, which has none of its own.

Two layers on every state-changing admin request (POST, PUT, PATCH, DELETE):
- `asgi-csrf` (the middleware Datasette uses): a token signed with SECRET_KEY, kept in a
  cookie and required back as the `csrftoken` form field or the `X-CSRFToken` header. The
  admin's pages carry it in a `<meta>` tag; `templates/sqladmin/base.html` adds it to every
  form and to jQuery's AJAX calls (the delete buttons).
- `SameOriginCheck`: a browser's Origin (or, failing that, Referer) header must name this
  host - what Django's CSRF middleware also checks.
"""

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from asgi_csrf import asgi_csrf  # type: ignore[import-untyped]
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.config import Settings

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_COOKIE = "tablestack_csrftoken"
FORM_FIELD = "csrftoken"
HEADER = "x-csrftoken"

REFUSED_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Request refused</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>403 - request refused</h1>
<p>{reason}</p>
<p>Go back, reload the page and try again.</p>
</body></html>
"""


async def _refuse(send: Send, reason: str) -> None:
    body = REFUSED_PAGE.format(reason=reason).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _csrf_failed(_scope: Scope, send: Send, _error: Any) -> None:
    await _refuse(
        send,
        "The form's security token is missing or does not match (cross-site request "
        "forgery protection). The page may have been open too long, or the request did not "
        "come from this admin.",
    )


class SameOriginCheck:
    """Refuse unsafe requests whose Origin or Referer names another host."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            claimed = headers.get("origin") or headers.get("referer")
            host = headers.get("host", "")
            if claimed is not None and (claimed == "null" or urlsplit(claimed).netloc != host):
                await _refuse(send, f"The request came from another site ({claimed}).")
                return
        await self.app(scope, receive, send)


def csrf_middlewares(settings: Settings, base_url: str) -> list[Middleware]:
    """The admin's CSRF middlewares, outermost first."""
    protect: Callable[..., ASGIApp] = asgi_csrf
    return [
        Middleware(SameOriginCheck),
        Middleware(
            protect,
            cookie_name=CSRF_COOKIE,
            http_header=HEADER,
            signing_secret=settings.secret_key,
            signing_namespace="tablestack-admin-csrf",
            cookie_path=base_url,
            cookie_secure=settings.session_https_only,
            cookie_samesite="Lax",
            # with no cookie at all nothing can be forged; still protect sign-in
            always_protect={f"{base_url}/login"},
            send_csrf_failed=_csrf_failed,
        ),
    ]
