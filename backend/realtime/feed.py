"""The process's change feed: reads new history entries in order and offers them to every
subscription of this process.

The history is the feed's source of truth: every write of every surface and process leaves
an entry with an increasing id in its own transaction. The feed remembers the last id it
published (`position`) and, whenever it is woken, reads the entries after it, builds their
events (records read in one query per resource) and offers each to every subscription,
synchronously. A client's cursor is an entry id, so catching up is a query as well.

Wake-ups:
- PostgreSQL: one dedicated asyncpg connection per process LISTENs on `tablestack_history`,
  which a trigger on the history notifies (the migration `ba8092b30b44`; notifications carry
  no payload, so PostgreSQL's 8 kB limit never applies). When that connection is lost (a
  database restart, `pg_terminate_backend`) it reconnects with a backoff and reads everything
  after `position`: an entry committed meanwhile is late, never lost.
- SQLite (one process): the engine's connections mark themselves when they insert an entry
  and wake the feed when they go back to the pool, i.e. after their commit.
- Both: a poll every `realtime_poll_s`, for writers the wake-ups cannot see (another process
  on SQLite, a database without the trigger).

Order on PostgreSQL: ids are taken when an entry is inserted, and transactions commit in any
order, so entry 11 may be visible while 10 is still being committed. The feed publishes in id
order and stops at such a gap until the gap's fate is known: it notes the snapshot of the read
that saw it, and moves past once every transaction of this database in progress in that
snapshot has ended (the id then belongs to a rolled-back write) - or, should one stay open,
after `GAP_TIMEOUT_S` (an entry committed even later is then not sent). SQLite has one
writer at a time, so its ids are committed in order.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg
from sqlalchemy import String, bindparam, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.config import Settings
from backend.crud.connection import Connection, ConnectionSource, Row
from backend.db import Database, create_engine
from backend.models import Role, User
from backend.models.history import HISTORY_TABLE
from backend.realtime.events import Event, build_events, entries_after
from backend.realtime.subscriptions import GOING_AWAY, RELOAD, Closed, Subscription
from backend.writes.history import HISTORY

log = logging.getLogger("tablestack.realtime")

CHANNEL = HISTORY_TABLE
APPLICATION_NAME = "tablestack-realtime"  # the LISTEN connection, as pg_stat_activity names it
PAGE = 500
GAP_TIMEOUT_S = 10.0
_GAP_RECHECK_S = 0.02
_WROTE_HISTORY = "tablestack_wrote_history"
_INSERT_HISTORY = f"INSERT INTO {HISTORY_TABLE}"
_users = User.__table__  # type: ignore[attr-defined]
# Whether every transaction in progress in a snapshot has ended since - but for those of other
# databases of the server, which cannot write this history (a shared server always has some).
_SNAPSHOT_ENDED = text(
    "SELECT NOT EXISTS (SELECT 1 FROM pg_snapshot_xip(CAST(CAST(:snapshot AS text) AS "
    "pg_snapshot)) AS x WHERE pg_xact_status(x) = 'in progress' AND NOT EXISTS ("
    "SELECT 1 FROM pg_stat_activity AS a WHERE a.datname IS DISTINCT FROM current_database() "
    "AND a.backend_xid::text = (CAST(x::text AS numeric) % 4294967296)::text))"
).bindparams(bindparam("snapshot", type_=String()))


class Feed:
    """New history entries, in order, offered to this process's subscriptions."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.dialect = "sqlite" if settings.is_sqlite else "postgresql"
        self.position = 0  # the last entry published
        self.subscriptions: set[Subscription] = set()
        self.listening = False  # PostgreSQL: the LISTEN connection is up
        self.reconnects = 0
        self._select = entries_after(snapshot=self.dialect == "postgresql")
        self._replay = entries_after(upto=True)
        # A gap being waited for: (the snapshot that saw it, since when, the last id seen then)
        self._hold: tuple[str | None, float, int] | None = None
        self._wake = asyncio.Event()
        self._recheck = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._unhook: list[tuple[Any, str, Any]] = []
        self._source = ConnectionSource()
        self._engine: AsyncEngine | None = None
        self._own_engine: AsyncEngine | None = None
        self._stopping = asyncio.Event()
        self._positioned = asyncio.Event()

    # -- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start reading (the position is read by the reading task, so a database that is
        down at start-up delays the feed instead of failing the app's start)."""
        # PostgreSQL: an engine of its own (two connections at most), so the feed reads beside
        # the requests, never waits for their pool, and a disconnect one of them sees does not
        # recycle the other's connections. SQLite: the app's (a second engine on the same file
        # would race the app's for the WAL switch on a new database).
        if self.dialect == "postgresql":
            own = self.settings.model_copy(
                update={"db_pool_size": 2, "db_max_overflow": 0, "db_echo": False}
            )
            self._engine = self._own_engine = create_engine(own)
        else:
            self._engine = self.database.engine
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._run(), name="realtime-feed"),
            asyncio.create_task(self._recheck_loop(), name="realtime-recheck"),
        ]
        if self.dialect == "postgresql":
            self._tasks.append(asyncio.create_task(self._listen(), name="realtime-listen"))
        else:
            self._hook_commits()

    async def stop(self) -> None:
        """Close every subscription (their streams say so and end), then stop reading: the
        loops end at their next wait (not cancelled inside a query, which would leave its
        connection unclosed), the LISTEN connection is closed."""
        for subscription in list(self.subscriptions):
            subscription.close(GOING_AWAY, "the server is shutting down; reconnect to resume")
        self._stopping.set()
        self._wake.set()
        self._recheck.set()
        for task in self._tasks:
            if task.get_name() == "realtime-listen":
                task.cancel()  # waiting on the connection; it is terminated on the way out
        _done, pending = await asyncio.wait(self._tasks, timeout=5.0)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for target, name, listener in self._unhook:
            event.remove(target, name, listener)
        self._unhook = []
        self._engine = None
        if self._own_engine is not None:
            await self._own_engine.dispose()
            self._own_engine = None

    async def ready(self, timeout: float) -> bool:
        """Whether the feed runs and knows its position (waiting up to `timeout` seconds for
        its first read of the history, e.g. just after start-up)."""
        if not self._tasks:
            return False
        try:
            await asyncio.wait_for(self._positioned.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _connect(self) -> AbstractAsyncContextManager[Connection]:
        """A connection of the engine's pool: never the API's test-bound one (the feed runs
        beside the requests, not inside their transaction)."""
        if self._engine is None:
            raise RuntimeError("the realtime feed is not started")
        return self._source.connect(self._engine, None)

    def wake(self) -> None:
        self._wake.set()

    # -- reading the history -----------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        self.wake()  # read the position at once
        while True:
            timeout = _GAP_RECHECK_S if self._hold else self.settings.realtime_poll_s
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                await self._poll()
                failures = 0
            except Exception:  # the database is away: try again, the position is kept
                failures += 1
                log.warning("realtime: reading the history failed", exc_info=True)
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))

    async def _poll(self) -> None:
        """Publish every entry after `position` that is known to be in order."""
        if not self._positioned.is_set():
            async with self._connect() as db:
                latest = await db.scalar(select(func.coalesce(func.max(HISTORY.c.id), 0)))
            self.position = int(latest or 0)
            self._positioned.set()
        while True:
            async with self._connect() as db:
                released = await self._released(db)
                rows = await db.all(self._select, {"after": self.position, "page": PAGE})
                ready = self._in_order(rows, released)
                events = await build_events(db, ready, self.dialect) if ready else []
            if ready:
                self._publish(events, int(ready[-1][0]))
            if len(rows) < PAGE or len(ready) < len(rows):
                return

    async def _released(self, db: Connection) -> int:
        """The last id of a gap that can now be passed (0: none). Asked before reading, so an
        entry committed before the answer is seen by the read."""
        if self._hold is None:
            return 0
        snapshot, since, horizon = self._hold
        if snapshot is None or time.monotonic() - since > GAP_TIMEOUT_S:
            if snapshot is not None:
                log.warning("realtime: history ids before %s never appeared; going on", horizon)
            self._hold = None
            return horizon
        if await db.scalar(_SNAPSHOT_ENDED, {"snapshot": snapshot}):
            self._hold = None
            return horizon
        return 0

    def _in_order(self, rows: list[Row], released: int) -> list[Row]:
        """The leading rows with no unexplained gap before them."""
        ready: list[Row] = []
        expected = self.position + 1
        for row in rows:
            cursor = int(row[0])
            if cursor != expected and cursor - 1 > released and self.dialect == "postgresql":
                if self._hold is None or self._hold[2] < expected:
                    self._hold = (row[8], time.monotonic(), int(rows[-1][0]))
                break
            ready.append(row)
            expected = cursor + 1
        return ready

    def _publish(self, events: list[Event], position: int) -> None:
        """Offer each event to every subscription, and move the position (no await: a
        subscription registering after a replay sees either all of this or none)."""
        self.position = position
        watched = {s.user_id for s in self.subscriptions}
        for change in events:
            for subscription in list(self.subscriptions):
                subscription.offer(change)
            if change.resource.model is User and change.row_id in watched:
                self._recheck.set()  # a subscriber's role or status may have changed

    async def replay(
        self, subscription: Subscription, since: int, *, check: bool = True
    ) -> AsyncIterator[list[Event]]:
        """The events after `since` the subscription wants, page by page; once caught up the
        subscription receives live events (registered with no await in between). `check`:
        refuse (Closed, RELOAD) a cursor the history cannot resume from."""
        if check:
            await self._check_cursor(since)
        subscription.cursor = since
        cursor = since
        while cursor < self.position:
            upto = self.position  # every entry up to here is committed, or never will be
            async with self._connect() as db:
                rows = await db.all(self._replay, {"after": cursor, "upto": upto, "page": PAGE})
                events = await build_events(db, rows, self.dialect)
            cursor = int(rows[-1][0]) if len(rows) == PAGE else upto
            wanted = [e for e in events if subscription.wants(e)]
            subscription.cursor = cursor
            if wanted:
                yield wanted
            if subscription.closed is not None:
                raise subscription.closed
        self.subscriptions.add(subscription)

    async def _check_cursor(self, since: int) -> None:
        """Refuse a cursor the history cannot resume from: the client must reload. (A cursor
        a little ahead of this process, from another one, is fine: the live feed filters.)"""
        async with self._connect() as db:
            lowest, highest = (
                await db.first(select(func.min(HISTORY.c.id), func.max(HISTORY.c.id)))
            ) or (None, None)
            found = None
            if since > 0:
                found = await db.scalar(select(HISTORY.c.id).where(HISTORY.c.id == since))
        if since > int(highest or 0):
            raise Closed(RELOAD, f"cursor {since} is ahead of the history; reload")
        if since > 0 and found is None and (lowest is None or since < int(lowest)):
            raise Closed(RELOAD, f"cursor {since} is older than the history's retention; reload")

    # -- roles and expiry --------------------------------------------------------------------

    async def _recheck_loop(self) -> None:
        """Re-read the roles of connected users (every `realtime_recheck_s`, and at once when
        an event changed one of them); close expired and unauthorised subscriptions."""
        while True:
            try:
                await asyncio.wait_for(self._recheck.wait(), self.settings.realtime_recheck_s)
            except TimeoutError:
                pass
            self._recheck.clear()
            if self._stopping.is_set():
                return
            try:
                await self.recheck()
            except Exception:
                log.warning("realtime: re-reading roles failed", exc_info=True)

    async def recheck(self) -> None:
        now = time.time()
        for subscription in list(self.subscriptions):
            subscription.check_expiry(now)
        ids = sorted({s.user_id for s in self.subscriptions if s.user_id is not None})
        if not ids:
            return
        statement = select(
            _users.c.id, _users.c.role, _users.c.is_active, _users.c.auth_version
        ).where(_users.c.id.in_(ids))
        async with self._connect() as db:
            rows = await db.all(statement)
        found = {int(row[0]): (Role(row[1]), bool(row[2]), int(row[3])) for row in rows}
        for subscription in list(self.subscriptions):
            if subscription.user_id is not None:
                role, active, version = found.get(subscription.user_id, (None, False, None))
                subscription.new_role(role, active, version)

    # -- wake-ups ----------------------------------------------------------------------------

    async def _listen(self) -> None:
        """LISTEN on one dedicated connection; reconnect (with a backoff) whenever it is lost."""
        url = make_url(self.database.settings.session_database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        delay = 0.1
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(
                    dsn, timeout=10, server_settings={"application_name": APPLICATION_NAME}
                )
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, lambda *_args: self.wake())
                self.listening = True
                self.wake()  # read what was committed while nobody listened
                delay = 0.1
                while not (lost.is_set() or connection.is_closed() or self._stopping.is_set()):
                    try:
                        await asyncio.wait_for(lost.wait(), self.settings.realtime_poll_s * 5)
                    except TimeoutError:
                        await connection.execute("SELECT 1")  # a dead idle connection shows
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("realtime: the LISTEN connection was lost", exc_info=True)
            finally:
                self.listening = False
                if connection is not None:
                    connection.terminate()  # closes the socket too when the server closed first
            if self._stopping.is_set():
                return
            self.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _hook_commits(self) -> None:
        """SQLite: wake the feed when a connection that inserted history entries goes back to
        the pool (after its commit or rollback)."""
        engine = self.database.engine.sync_engine
        loop = asyncio.get_running_loop()

        def after_cursor_execute(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement.startswith(_INSERT_HISTORY):
                connection.info[_WROTE_HISTORY] = True

        def checkin(_dbapi_connection: Any, record: Any) -> None:
            if record is not None and record.info.pop(_WROTE_HISTORY, False):
                loop.call_soon_threadsafe(self.wake)

        listeners = (("after_cursor_execute", after_cursor_execute), ("checkin", checkin))
        for name, listener in listeners:
            event.listen(engine, name, listener)
            self._unhook.append((engine, name, listener))
