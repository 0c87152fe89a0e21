"""The generated routes' database access: one pooled connection per request, no ORM session.

The routes run SQLAlchemy Core statements (built once, or per request for list pages) and
need rows, not objects. Going through an `AsyncSession` and `AsyncConnection.execute` costs
several times what the database round trip does (session, greenlet hops, result objects), so:

- On PostgreSQL the pooled asyncpg connection is used through the driver itself. Each
  statement is compiled once per shape - the cache is keyed by SQLAlchemy's own statement
  cache key, so a list page rebuilt per request with other values is not compiled again - and
  run with asyncpg's prepared-statement cache. Bind and result processors of the statement's
  types still apply, and driver errors are translated exactly as SQLAlchemy translates them
  (same exception classes, same `.orig`), so error handling is shared with the ORM paths.
- Elsewhere (SQLite) the same calls run on a SQLAlchemy `AsyncConnection`.

The connection comes from the engine's pool (the one pool the admin also uses) or, when the
API's session factory is bound to a connection (the tests' rolled-back transaction), from
that connection; each call or `atomic()` block then runs in a savepoint, so a failed
statement does not abort the enclosing transaction.

Writes are atomic per call; `atomic()` groups several statements into one transaction.
"""

import functools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import Pool, PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.util import LRUCache
from sqlmodel.sql.sqltypes import UTCDateTime

Params = Mapping[str, Any]
Row = Sequence[Any]


class Connection(ABC):
    """One request's database connection, used with Core statements."""

    @abstractmethod
    async def all(self, statement: ClauseElement, params: Params | None = None) -> list[Row]:
        """Every row the statement returns."""

    @abstractmethod
    async def first(self, statement: ClauseElement, params: Params | None = None) -> Row | None:
        """The first row, or None."""

    async def scalar(self, statement: ClauseElement, params: Params | None = None) -> Any:
        """The first column of the first row, or None."""
        row = await self.first(statement, params)
        return None if row is None else row[0]

    @abstractmethod
    async def execute(self, statement: ClauseElement, params: Params | None = None) -> int:
        """Run a statement returning no rows; how many rows it changed."""

    @abstractmethod
    async def execute_many(self, statement: ClauseElement, rows: Sequence[Params]) -> None:
        """Run a statement once per parameter set (an INSERT of many rows)."""

    _in_atomic = False

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        """The statements inside commit together or not at all (nested: the outer block's)."""
        if self._in_atomic:
            yield
            return
        self._in_atomic = True
        try:
            async with self._transaction():
                yield
        finally:
            self._in_atomic = False

    @abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[None]:
        """One transaction (a savepoint inside one the connection was handed with)."""


_Processors = list[tuple[int, Callable[[Any], Any]]]


class _Compiled:
    """One statement shape compiled for the dialect, and its result processors once known."""

    __slots__ = ("compiled", "binds", "prefetch", "processors", "sql", "order", "bind_processors")

    def __init__(self, compiled: Any, binds: Sequence[Any]) -> None:
        self.compiled = compiled
        self.binds = binds  # the bind parameters of the statement it was compiled from
        # Columns whose Python-side default (or onupdate) the caller computes, by bind name.
        self.prefetch = [(column.key, column.default) for column in compiled.insert_prefetch] + [
            (column.key, column.onupdate) for column in compiled.update_prefetch
        ]
        # For a statement whose SQL does not depend on its values (no IN lists to expand):
        # the SQL, the parameters' order and their processors, taken from its first run.
        self.sql: str | None = None
        self.order: Sequence[str] = ()
        self.bind_processors: Mapping[str, Callable[[Any], Any]] = {}
        # The result columns' processors, known once the database has described the
        # result's column types.
        self.processors: _Processors | None = None


class StatementCache:
    """Statements compiled for one dialect, each shape once.

    Keyed by SQLAlchemy's cache key of the statement - a list page rebuilt per request with
    other values finds the shape compiled for an earlier one - and the column keys of its
    parameters (an INSERT/UPDATE's columns follow the parameters given). A statement object
    seen recently (the routes' prebuilt ones) is also found by identity, which skips hashing
    its cache key.
    """

    SIZE = 500
    IDENTITY_SIZE = 256

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._by_key: LRUCache[Any, _Compiled] = LRUCache(self.SIZE)
        self._by_identity: dict[tuple[int, tuple[str, ...]], tuple[Any, _Compiled, Params]] = {}

    def lookup(self, statement: ClauseElement, keys: tuple[str, ...]) -> tuple[_Compiled, Params]:
        """The compiled shape of `statement`, and the statement's own bound values by the
        names that compiled shape gives them."""
        known = self._by_identity.get((id(statement), keys))
        if known is not None and known[0] is statement:
            return known[1], known[2]
        cache_key = statement._generate_cache_key()
        if cache_key is None:  # a construct SQLAlchemy cannot cache: compiled every time
            return _Compiled(self._compile(statement, keys), ()), {}
        entry = self._by_key.get((cache_key.key, keys))
        if entry is None:
            entry = _Compiled(self._compile(statement, keys), cache_key.bindparams)
            self._by_key[(cache_key.key, keys)] = entry
        names = entry.compiled.bind_names
        own = {
            names[original]: current.effective_value
            for original, current in zip(entry.binds, cache_key.bindparams, strict=True)
        }
        if any(bind.callable is not None for bind in cache_key.bindparams):
            return entry, own  # a value computed per execution: never remembered
        if len(self._by_identity) >= self.IDENTITY_SIZE:
            self._by_identity.clear()  # list pages are new objects each time: start over
        self._by_identity[(id(statement), keys)] = (statement, entry, own)
        return entry, own

    def _compile(self, statement: ClauseElement, keys: tuple[str, ...]) -> Any:
        return statement.compile(dialect=self.dialect, column_keys=list(keys))


class AsyncpgConnection(Connection):
    """A pooled asyncpg connection, driven directly (PostgreSQL)."""

    def __init__(
        self,
        pooled: PoolProxiedConnection,
        dialect: Dialect,
        cache: StatementCache,
        *,
        joined: bool,
        pool: Pool | None = None,
    ) -> None:
        self._pooled = pooled
        self._pool = pool  # the pool `pooled` came from (None when joined)
        self._driver: Any = pooled.driver_connection
        self._dialect = dialect
        self._cache = cache
        self._joined = joined  # inside a transaction we do not own: isolate each call

    def _prepare(
        self, statement: ClauseElement, params: Params | None
    ) -> tuple[_Compiled, str, list[Any]]:
        """The compiled statement, SQL and positional arguments of `statement` with `params`."""
        entry, own = self._cache.lookup(statement, tuple(params) if params else ())
        values = {**own, **params} if params else dict(own)
        for key, default in entry.prefetch:
            # Python-side defaults the statement leaves to the caller (`onupdate=...`), as
            # SQLAlchemy's execution context computes them.
            values[key] = default.arg(None) if default.is_callable else default.arg
        if entry.sql is not None:
            bind = entry.bind_processors
            arguments = [
                bind[name](values[name]) if name in bind else values[name] for name in entry.order
            ]
            return entry, entry.sql, arguments
        compiled = entry.compiled
        # As SQLAlchemy's execution context does (DefaultExecutionContext._init_compiled): the
        # compiled statement's bind processors, plus those of expanded IN lists. (The expanded
        # state's own `processors` hold only the latter.)
        parameters = compiled.construct_params(values, escape_names=False)
        processors: Mapping[str, Callable[[Any], Any]] = compiled._bind_processors
        if compiled.literal_execute_params or compiled.post_compile_params:
            state = compiled._process_parameters_for_postcompile(parameters)
            sql, order = state.statement, state.positiontup or ()
            processors = {**processors, **state.processors}
        else:
            sql, order = compiled.string, compiled.positiontup or ()
            if all(name in values and values[name] is parameters[name] for name in order):
                # Later runs of this shape take the values by these names directly.
                entry.sql, entry.order, entry.bind_processors = sql, order, processors
        arguments = [
            processors[name](parameters[name]) if name in processors else parameters[name]
            for name in order
        ]
        return entry, sql, arguments

    async def _run(self, method: str, statement: ClauseElement, params: Params | None) -> Any:
        entry, sql, arguments = self._prepare(statement, params)
        return await self._guarded(
            sql, arguments, lambda: self._call(method, entry, sql, arguments)
        )

    async def _guarded(
        self, sql: str, arguments: list[Any], call: Callable[[], Awaitable[Any]]
    ) -> Any:
        """`call()` on the driver: in its own savepoint when joined (outside `atomic()`), its
        errors translated as SQLAlchemy translates them."""
        try:
            if self._joined and not self._in_atomic:
                async with self._driver.transaction():  # a savepoint
                    return await call()
            return await call()
        except Exception as error:
            raise self._translate(error, sql, arguments) from error

    async def _call(self, method: str, entry: _Compiled, sql: str, arguments: list[Any]) -> Any:
        if method == "execute":
            return await self._driver.execute(sql, *arguments)
        if entry.processors is None:
            entry.processors = await self._result_processors(entry.compiled, sql)
        processors = entry.processors
        if method == "fetch":
            rows = await self._driver.fetch(sql, *arguments)
            return [_processed(row, processors) for row in rows] if processors else rows
        row = await self._driver.fetchrow(sql, *arguments)
        return _processed(row, processors) if row is not None and processors else row

    async def _result_processors(self, compiled: Any, sql: str) -> _Processors:
        """The result columns that have a type processor for the column types PostgreSQL
        reports, by position (an empty list when the driver's values are already right)."""
        columns = compiled._result_columns
        if not columns:
            return []
        described = (await self._driver.prepare(sql)).get_attributes()
        processors = (
            None
            if _redundant(column.type, attribute.type.oid, self._dialect)
            else column.type._cached_result_processor(self._dialect, attribute.type.oid)
            for column, attribute in zip(columns, described, strict=False)
        )
        return [(i, process) for i, process in enumerate(processors) if process is not None]

    def _translate(self, error: Exception, sql: str, arguments: list[Any]) -> Exception:
        """The exception SQLAlchemy would raise for this driver error."""
        adapted: Any = self._pooled.dbapi_connection
        try:
            adapted._handle_exception(error)
        except Exception as dbapi_error:  # the DB-API error SQLAlchemy's adapter raises
            translated = dbapi_error
        loaded = self._dialect.loaded_dbapi
        if not isinstance(translated, loaded.Error):
            return translated  # not the driver's (an OSError, say): as it is
        invalidated = self._dialect.is_disconnect(translated, adapted, None)
        if invalidated:
            self._invalidate(translated)
        return DBAPIError.instance(
            sql,
            arguments,
            translated,
            loaded.Error,
            hide_parameters=True,
            connection_invalidated=invalidated,
            dialect=self._dialect,
        )

    def _invalidate(self, error: Exception) -> None:
        """Discard this lost connection and, as SQLAlchemy does on a disconnect
        (`Connection._handle_dbapi_exception`), every other one the pool made before it: a
        lost connection usually means a restarted server or a cut network, and each of those
        would otherwise fail a request of its own. They are replaced when next checked out;
        requests already running on one still fail."""
        if self._pool is None:
            self._pooled.invalidate(error)
        else:
            self._pool._invalidate(self._pooled, error)  # private: tests/api/test_unavailable

    async def all(self, statement: ClauseElement, params: Params | None = None) -> list[Row]:
        rows: list[Row] = await self._run("fetch", statement, params)
        return rows

    async def first(self, statement: ClauseElement, params: Params | None = None) -> Row | None:
        row: Row | None = await self._run("fetchrow", statement, params)
        return row

    async def execute(self, statement: ClauseElement, params: Params | None = None) -> int:
        status: str = await self._run("execute", statement, params)
        count = status.rpartition(" ")[2]  # "DELETE 3", "INSERT 0 1"
        return int(count) if count.isdigit() else 0

    async def execute_many(self, statement: ClauseElement, rows: Sequence[Params]) -> None:
        if not rows:
            return
        prepared = [self._prepare(statement, row) for row in rows]
        sql = prepared[0][1]
        each = [arguments for *_, arguments in prepared]
        await self._guarded(sql, [], functools.partial(self._driver.executemany, sql, each))

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        try:
            async with self._driver.transaction():  # BEGIN/COMMIT, or a savepoint when joined
                yield
        except DBAPIError:
            raise
        except Exception as error:
            if _is_driver_error(error):  # raised by COMMIT (a deferred constraint)
                raise self._translate(error, "COMMIT", []) from error
            raise

    @property
    def reusable(self) -> bool:
        """Whether the connection may go back to the pool (not left inside a transaction)."""
        driver = self._driver
        return self._joined or not (driver.is_closed() or driver.is_in_transaction())


class SQLAlchemyConnection(Connection):
    """A SQLAlchemy `AsyncConnection` (SQLite, or any dialect without a direct path).

    Joined to a transaction the caller holds, each call or `atomic()` block runs in a
    savepoint, so that a failed statement leaves the caller's transaction usable. A caller
    that rolls the whole transaction back on any error (a seed load) passes
    `savepoints=False` and saves the SAVEPOINT and RELEASE round trips of every call; a
    failed statement then fails that whole transaction (on PostgreSQL nothing more runs in it).
    """

    def __init__(
        self, connection: AsyncConnection, *, joined: bool, savepoints: bool = True
    ) -> None:
        self._connection = connection
        self._joined = joined
        self._savepoints = savepoints

    async def _execute(self, statement: ClauseElement, params: Any) -> Any:
        return await self._connection.execute(statement, params)  # type: ignore[call-overload]

    async def all(self, statement: ClauseElement, params: Params | None = None) -> list[Row]:
        async with self.atomic():  # alone: its own savepoint (joined) or commit (owned)
            return list((await self._execute(statement, params)).all())

    async def first(self, statement: ClauseElement, params: Params | None = None) -> Row | None:
        async with self.atomic():
            row: Row | None = (await self._execute(statement, params)).first()
            return row

    async def execute(self, statement: ClauseElement, params: Params | None = None) -> int:
        async with self.atomic():
            return int((await self._execute(statement, params)).rowcount or 0)

    async def execute_many(self, statement: ClauseElement, rows: Sequence[Params]) -> None:
        if rows:
            async with self.atomic():
                await self._execute(statement, list(rows))

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        if self._joined:
            if not self._savepoints:  # the caller's transaction is the unit: nothing to add
                yield
                return
            async with self._connection.begin_nested():
                yield
            return
        try:
            yield
        except BaseException:
            await self._connection.rollback()
            raise
        await self._connection.commit()


_TIMESTAMPTZ = 1184  # PostgreSQL's type oid of `timestamp with time zone`


def _redundant(column_type: Any, oid: int, dialect: Dialect) -> bool:
    """Whether the type's result processing gives back what asyncpg already returns.

    - sqlmodel's UTCDateTime (every aware datetime column) turns values into aware UTC
      datetimes; asyncpg decodes `timestamptz` into exactly that.
    - An ARRAY (a many-to-many's ids) of items needing no processing is copied into a list;
      asyncpg decodes arrays into lists already.
    Skipping them saves a call per value, three per row of a typical table
    (`tests/api/test_connection.py` checks both claims).
    """
    if isinstance(column_type, UTCDateTime):
        return oid == _TIMESTAMPTZ
    if isinstance(column_type, ARRAY) and not column_type.as_tuple:
        if column_type.dimensions not in (None, 1):
            return False
        try:
            item = column_type.item_type.dialect_impl(dialect).result_processor(dialect, None)
        except Exception:  # a type that needs to know the item's database type: keep it
            return False
        return item is None
    return False


def _is_driver_error(error: Exception) -> bool:
    return type(error).__module__.startswith("asyncpg")


def _processed(row: Row, processors: _Processors) -> list[Any]:
    values = list(row)
    for i, process in processors:
        value = values[i]
        if value is not None:
            values[i] = process(value)
    return values


class ConnectionSource:
    """Where the generated routes get their connection: the pool, or a bound connection."""

    def __init__(self) -> None:
        self._caches: dict[tuple[Any, ...], StatementCache] = {}

    def _cache(self, dialect: Dialect) -> StatementCache:
        """One cache per kind of dialect (engines made alike compile alike)."""
        kind = (dialect.name, dialect.driver, dialect.server_version_info)
        cache = self._caches.get(kind)
        if cache is None:
            cache = self._caches[kind] = StatementCache(dialect)
        return cache

    @asynccontextmanager
    async def connect(
        self, engine: AsyncEngine, bound: AsyncConnection | None
    ) -> AsyncIterator[Connection]:
        """A connection for one request: `bound` (joined), or one from `engine`'s pool."""
        if engine.dialect.driver != "asyncpg":
            if bound is not None:
                yield SQLAlchemyConnection(bound, joined=True)
                return
            async with engine.connect() as owned:
                yield SQLAlchemyConnection(owned, joined=False)
            return
        cache = self._cache(engine.dialect)
        if bound is not None:
            joined: Any = await bound.get_raw_connection()
            if not joined.driver_connection.is_in_transaction():
                await bound.exec_driver_sql("SELECT 1")  # SQLAlchemy begins lazily: begin now
            yield AsyncpgConnection(joined, engine.dialect, cache, joined=True)
            return
        try:
            pooled = await engine.raw_connection()
        except engine.dialect.loaded_dbapi.Error as error:
            # What `engine.connect()` raises for the same failure (raw_connection() leaves
            # the DB-API's error as it is): an OperationalError when the server refused us.
            raise DBAPIError.instance(
                None,
                None,
                error,
                engine.dialect.loaded_dbapi.Error,
                hide_parameters=True,
                dialect=engine.dialect,
            ) from error
        connection = AsyncpgConnection(
            pooled, engine.dialect, cache, joined=False, pool=engine.pool
        )
        try:
            yield connection
        except BaseException as exc:
            # Cancelled mid-statement, or left inside a transaction: do not reuse it.
            if pooled.is_valid and (not isinstance(exc, Exception) or not connection.reusable):
                pooled.invalidate()
            raise
        finally:
            pooled.close()  # back to the pool (SQLAlchemy has no transaction on it to reset)
