"""The engine factory, the metadata naming convention and the per-request session dependency."""

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import BigInteger, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.config import Settings
from backend.crud.connection import Connection, ConnectionSource
from backend.replicas import Replicas

# Stable constraint names, so migrations can drop and alter them. Set before any table exists.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata = SQLModel.metadata


@compiles(BigInteger, "sqlite")
def _sqlite_bigint(type_: BigInteger, compiler: Any, **kw: Any) -> str:
    """BIGINT is INTEGER on SQLite: the same 64-bit storage, and only an `INTEGER PRIMARY KEY`
    numbers new rows itself (a BIGINT key would have to be given on every insert)."""
    return "INTEGER"


def ensure_sqlite_directory(database_url: str) -> None:
    """Create the folder of an SQLite database file, so a fresh checkout needs no set-up."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the one async engine of this process for the configured database."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        ensure_sqlite_directory(settings.database_url)
        engine = create_async_engine(
            url,
            echo=settings.db_echo,
            pool_timeout=settings.db_pool_timeout_s,
            connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000},
        )
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    engine = create_async_engine(
        url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=settings.db_pool_pre_ping,
        pool_recycle=settings.db_pool_recycle_s,
        pool_timeout=settings.db_pool_timeout_s,
        connect_args=postgresql_connect_args(settings),
    )
    _configure_postgresql(engine)
    return engine


def postgresql_connect_args(settings: Settings) -> dict[str, Any]:
    """asyncpg's connect arguments for the settings (and SQLAlchemy's adapter's own)."""
    args: dict[str, Any] = {"timeout": settings.db_connect_timeout_s}
    if not settings.db_prepared_statements:
        # asyncpg then prepares every statement unnamed (asyncpg >= 0.25 names a statement
        # only when its cache is on), and SQLAlchemy's adapter keeps no prepared statements
        # of its own: nothing outlives the transaction a transaction pooler lends.
        args["statement_cache_size"] = 0
        args["prepared_statement_cache_size"] = 0
    return args


def _configure_postgresql(engine: AsyncEngine) -> None:
    """Make every failure to connect an `OperationalError`, and replace a pooled connection
    the server has closed before it is used.

    - asyncpg raises its own errors when a connection is refused: `OSError`s (refused, DNS,
      timeout) and server errors such as `too many clients` (53300) or `the database system
      is shutting down` (57P03), which SQLAlchemy passes on as they are or as a generic
      DB-API `Error`. As the DB-API (and psycopg) have it, each is an `OperationalError`,
      with the server's SQLSTATE kept, on every path that connects: the ORM's sessions and
      the generated routes' raw connections alike.
    - A server that restarted or ended a session closed its end of each connection; asyncpg
      marks such a connection closed as soon as the event loop reads the end of the stream.
      Checked when the pool hands a connection out (no round trip, unlike pre-ping), a closed
      one is replaced there, instead of failing the request that would have used it.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        dbapi = dialect.loaded_dbapi
        try:
            return dialect.connect(*cargs, **cparams)
        except dbapi.OperationalError:
            raise
        except Exception as error:
            message = str(error).strip() or type(error).__name__
            raise dbapi.OperationalError(message, error) from error

    @event.listens_for(sync_engine, "checkout")
    def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this pooled connection")


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """Enforce foreign keys, use WAL and wait on locks, on every new SQLite connection."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()


class Database:
    """The process's engine and the session factories built over it.

    The factories exist from app construction (SQLAdmin needs one when it is mounted) and are
    bound to the engine when the app's lifespan starts; the engine is disposed at shutdown.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: AsyncEngine | None = None
        # The API's sessions: sqlmodel's AsyncSession (session.exec), no expiry after commit.
        self.api_sessions = async_sessionmaker(class_=AsyncSession, expire_on_commit=False)
        # SQLAdmin reconfigures the factory it is given, so it gets one of its own.
        self.admin_sessions = async_sessionmaker(class_=SAAsyncSession, expire_on_commit=False)
        # The generated routes' connections (no session): from the pool, compiled SQL cached.
        self._connections = ConnectionSource()
        self.replicas: Replicas | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the database engine is not started (the app lifespan has not run)")
        return self._engine

    @property
    def started(self) -> bool:
        return self._engine is not None

    def start(self, engine: AsyncEngine | None = None) -> AsyncEngine:
        """Create (or adopt) the engine and bind every session factory to it."""
        self._engine = engine if engine is not None else create_engine(self.settings)
        self.api_sessions.configure(bind=self._engine)
        self.admin_sessions.configure(bind=self._engine)
        urls = self.settings.database_replica_urls
        if urls and self._engine.dialect.name == "postgresql":
            engines = [
                create_engine(self.settings.model_copy(update={"database_url": url}))
                for url in urls
            ]
            self.replicas = Replicas(engines, self.settings.replica_retry_s)
        return self._engine

    def api_connection(self, *, replica: bool = False) -> AbstractAsyncContextManager[Connection]:
        """One connection for a generated route: from the engine's pool or, when the API's
        sessions are bound to a connection (a test's transaction), joined to that one.

        With `replica` (a read that may lag), from a read replica when there are some.
        """
        bound = self.api_sessions.kw.get("bind")
        joined = bound if isinstance(bound, AsyncConnection) else None
        if replica and joined is None and self.replicas is not None:
            return self.replicas.read(self._connections, self.engine)
        return self._connections.connect(self.engine, joined)

    async def dispose(self) -> None:
        if self.replicas is not None:
            await self.replicas.dispose()
            self.replicas = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def get_database(request: Request) -> Database:
    """The app's Database, stored on app.state by create_app."""
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; rolled back if the request fails before committing."""
    async with get_database(request).api_sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
