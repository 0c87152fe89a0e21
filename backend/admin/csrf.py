"""Cross-site request forgery protection for the admin, which has none of its own.

Every state-changing admin request (POST, PUT, PATCH, DELETE) must pass two checks:
- a synchronizer token: a random token kept in the signed session (so it is bound to the
  session and rotates at sign-in and sign-out), sent back as the `csrftoken` form field or
  the `X-CSRFToken` header. Pages carry it in a `<meta>` tag; `templates/sqladmin/base.html`
  adds it to every form and to the admin's AJAX calls (the delete buttons);
- a same-origin check: a browser's Origin (or, failing that, Referer) header must name this
  host (or the host a trusted proxy forwarded, `backend.proxies`), as Django's CSRF
  middleware also requires.

Hand-written because the libraries that fit do not work here: asgi-csrf 0.11 crashes on
multipart forms with today's python-multipart (`FormParser() got an unexpected keyword
argument 'FileClass'`) and SQLAdmin's forms are multipart; starlette-csrf reads the token from
a header only, which a plain HTML form cannot send.
"""

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.proxies import forwarded_host

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SESSION_KEY = "csrf"
FORM_FIELD = "csrftoken"
HEADER = "x-csrftoken"
MAX_BODY = 5 * 1024 * 1024  # admin forms are small; a larger body is refused, not buffered

REFUSED_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Request refused</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>403 - request refused</h1>
<p>{reason}</p>
<p>Go back, reload the page and try again.</p>
</body></html>
"""


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created the first time a page needs one."""
    session = request.session
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


async def refuse(send: Send, reason: str, status: int = 403) -> None:
    """Answer with a small HTML page saying why the request was refused."""
    body = REFUSED_PAGE.format(reason=reason).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SameOriginCheck:
    """Refuse unsafe requests whose Origin or Referer names another host."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = Headers(scope=scope)
            claimed = headers.get("origin") or headers.get("referer")
            # A reverse proxy may rewrite Host and pass the original on in X-Forwarded-Host:
            # believed only from a trusted proxy (TRUSTED_PROXIES), as any client can send it.
            hosts = {headers.get("host", ""), forwarded_host(scope) or ""} - {""}
            if claimed is not None and (claimed == "null" or urlsplit(claimed).netloc not in hosts):
                await refuse(send, "The request came from another site.")
                return
        await self.app(scope, receive, send)


class CSRFProtection:
    """Require the session's token on unsafe requests; runs inside SessionMiddleware.

    Pages create the token (`csrf_token`) when they render it, so static files and other
    requests leave the session alone.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        expected = scope["session"].get(SESSION_KEY)
        sent = Headers(scope=scope).get(HEADER)
        if sent is None:
            body = await _read_body(receive)
            if body is None:
                await refuse(send, "The request body is too large.", status=413)
                return
            receive = _replay(body, receive)
            sent = await _form_token(scope, body)
        if not sent or not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
            await refuse(
                send,
                "The form's security token is missing or does not match (cross-site request "
                "forgery protection): the page was open across a sign-in or sign-out, or the "
                "request did not come from this admin.",
            )
            return
        await self.app(scope, receive, send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that hands the buffered body on, then the original channel."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _form_token(scope: Scope, body: bytes) -> str | None:
    request = Request(scope, _replay(body, _never))
    try:
        form = await request.form()
    except (MultiPartException, ValueError, KeyError):
        return None
    try:
        token = form.get(FORM_FIELD)
        return token if isinstance(token, str) else None
    finally:
        await form.close()


async def _never() -> Message:
    return {"type": "http.disconnect"}
