"""Who may call a generated route: the caller checked before the request touches any row.

Every generated handler opens its connection through `Access.connect`, which answers 401/403
before anything else (even before a 422 on the request's arguments). A signed-in caller's role
may instead come back *pending*: the handler then checks it inside its own statement (one
round trip instead of two) and settles it; see `PendingCaller` in `backend.auth.dependencies`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError

from backend.auth.dependencies import PendingCaller, admit, bearer_claims
from backend.config import Settings
from backend.crud.connection import Connection
from backend.crud.operation import Arguments
from backend.db import get_database
from backend.registry import ResourceOptions
from backend.replicas import wants_primary

_CALLER_ID = "tablestack.caller_id"


def caller_id(request: Request) -> int | None:
    """The id of the signed-in caller `Access.connect` admitted (None: anonymous)."""
    found: int | None = request.scope.get(_CALLER_ID)
    return found


class Access:
    """The read and write roles of one resource, checked against each request's caller."""

    def __init__(self, resource: ResourceOptions, settings: Settings) -> None:
        self.resource = resource
        self.settings = settings

    @asynccontextmanager
    async def connect(
        self, request: Request, arguments: Arguments, *, read: bool, defer_caller: bool = False
    ) -> AsyncIterator[tuple[Connection, PendingCaller | None]]:
        """The request's connection, once the caller may do this; then the arguments' 422.

        The token is checked before any connection is taken; the caller's role is read fresh
        on the connection, so a role change or a deactivation applies to the next request.

        With `defer_caller` (and valid arguments) a signed-in caller comes back pending: the
        route checks the role in its own statement (one round trip instead of two) and
        settles it. Whatever error the route raises before settling it, the caller is checked
        first, so a 401/403 still comes before a 404, 409 or 422; and a route that returns
        without settling it is a bug, refused with a 500 rather than answered.
        """
        required = self.resource.read_role if read else self.resource.write_role
        claims = bearer_claims(request, self.settings)
        request.scope[_CALLER_ID] = None if claims is None else claims.user_id
        if claims is None:
            admit(None, self.settings, required, read=read)
        replica = read and not wants_primary(request)
        async with get_database(request).api_connection(replica=replica) as connection:
            pending = None
            if claims is not None:
                pending = PendingCaller(claims, required, self.settings, read=read)
                if not defer_caller or arguments.errors:
                    await pending.check(connection)
            arguments.check()
            try:
                yield connection, pending if pending is not None and not pending.settled else None
            except (HTTPException, RequestValidationError):
                if pending is not None and not pending.settled:
                    await pending.check(connection)
                raise
            if pending is not None and not pending.settled:
                raise RuntimeError(f"{self.resource.name}: the caller's role was never checked")
