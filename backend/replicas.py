"""Reads on read replicas: which replica serves the next read, and which are down.

`DATABASE_REPLICA_URLS` names PostgreSQL streaming replicas. The generated list and get-one
routes read from them in turn; everything else - writes, the reads of a request that writes,
the admin, sign-in, realtime - uses the primary, and so does a read that asks for it with
`Prefer: read-your-writes` (a client that must see its own write at once: a replica is a
moment behind).

A replica that refuses a connection, or loses one during a read, is skipped for
`REPLICA_RETRY_S`; the read goes to the next one, then to the primary (a read lost half-way
is run again there, see `falling_back`): a replica that goes away costs no failed request, and
it is tried again once the pause is over.
"""

import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypeVar

from fastapi import Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.crud.connection import Connection, ConnectionSource
from backend.db_failures import classify, sqlstate

T = TypeVar("T")

log = logging.getLogger(__name__)

READ_YOUR_WRITES = "read-your-writes"
_ON_PRIMARY = "tablestack.read_on_primary"  # a request scope key: a replica failed it


def wants_primary(request: Request) -> bool:
    """Whether the request must read from the primary: its `Prefer` header asks for
    `read-your-writes` (RFC 7240), or a replica lost its read."""
    if request.scope.get(_ON_PRIMARY):
        return True
    prefer = request.headers.get("prefer")
    if not prefer:
        return False
    return any(p.split(";")[0].strip().lower() == READ_YOUR_WRITES for p in prefer.split(","))


class ReplicaLost(Exception):
    """A replica's connection failed during a read: run the read again on the primary."""


def _lost(error: BaseException) -> bool:
    """A connection that could not be made or broke (not a slow or refused statement)."""
    if classify(error) != "unavailable":
        return False
    code = sqlstate(error) if isinstance(error, DBAPIError) else None
    return code is None or code.startswith(("08", "57P"))


async def falling_back(request: Request, read: Callable[[], Awaitable[T]]) -> T:
    """`read()`, run once more on the primary when a replica lost it half-way."""
    try:
        return await read()
    except ReplicaLost:
        request.scope[_ON_PRIMARY] = True
        return await read()


class Replicas:
    """The replicas' engines, taken in turn, each skipped for a while after it failed."""

    def __init__(
        self,
        engines: list[AsyncEngine],
        retry_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engines = engines
        self.retry_s = retry_s
        self.clock = clock
        self._turns = itertools.cycle(range(len(engines)))
        self._down_until = [0.0] * len(engines)

    def candidates(self) -> list[int]:
        """The replicas to try for the next read, in order: those not resting after a
        failure, starting with the next one's turn."""
        start = next(self._turns)
        now = self.clock()
        order = [(start + step) % len(self.engines) for step in range(len(self.engines))]
        return [index for index in order if self._down_until[index] <= now]

    def failed(self, index: int, error: BaseException) -> None:
        if self._down_until[index] <= self.clock():
            url = self.engines[index].url.render_as_string(hide_password=True)
            log.warning("replica %s is unreachable, reading from the primary: %s", url, error)
        self._down_until[index] = self.clock() + self.retry_s

    @asynccontextmanager
    async def read(
        self, source: ConnectionSource, primary: AsyncEngine
    ) -> AsyncIterator[Connection]:
        """A connection for one read: from a replica that answers, or from the primary."""
        async with AsyncExitStack() as stack:
            served_by: int | None = None
            for index in self.candidates():
                try:
                    connection = await stack.enter_async_context(
                        source.connect(self.engines[index], None)
                    )
                except Exception as error:
                    if not _lost(error):
                        raise
                    self.failed(index, error)  # refused, unreachable, shutting down, busy
                    continue
                served_by = index
                break
            else:
                connection = await stack.enter_async_context(source.connect(primary, None))
            try:
                yield connection
            except Exception as error:
                if served_by is None or not _lost(error):
                    raise
                self.failed(served_by, error)
                raise ReplicaLost() from error

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()
