"""Fixtures shared by the whole suite.

Every database test runs twice, on SQLite and on PostgreSQL. The PostgreSQL half is skipped,
loudly, when no server answers - except with CI=true, where it is required.

Per test, `connection` opens a transaction on a database migrated once per run, and the app's
sessions join it through savepoints, so each test's rows vanish when it ends.
"""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

# The fixture app's tables (every column type and table shape) join the demo's in every test,
# and in every process a test starts (the CLI, a served app), before anything imports them.
os.environ["APPS"] = '["tests.fixture_app"]'
# The suite sends hundreds of requests a minute from one address: rate limits are off unless a
# test turns them on (tests/ratelimit), here and in the servers tests start.
os.environ["RATE_LIMITS_ENABLED"] = "false"

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend import schema
from backend.config import Settings
from backend.db import create_engine
from backend.main import create_app
from tests.databases import BACKENDS, fresh_database, postgres_unavailable_reason

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_POSTGRES_SKIP: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    reason = postgres_unavailable_reason()
    if reason is not None:
        if CI:
            raise pytest.UsageError(f"CI=true requires PostgreSQL: {reason}")
        _POSTGRES_SKIP.append(reason)


def pytest_report_header(config: pytest.Config) -> str:
    if _POSTGRES_SKIP:
        return f"!!! PostgreSQL tests will be SKIPPED: {_POSTGRES_SKIP[0]}"
    return "databases: sqlite and postgresql"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _POSTGRES_SKIP:
        terminalreporter.section("PostgreSQL SKIPPED", sep="!", red=True, bold=True)
        terminalreporter.write_line(f"{_POSTGRES_SKIP[0]}; only the SQLite half ran.")


def _require_backend(backend: str) -> None:
    if backend == "postgresql" and _POSTGRES_SKIP:
        pytest.skip(_POSTGRES_SKIP[0])


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend the test runs on."""
    name: str = request.param
    _require_backend(name)
    return name


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A brand-new, unmigrated database owned by this test."""
    with fresh_database(backend, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to head once per run and backend, shared through rollbacks."""
    import asyncio

    with fresh_database(backend, tmp_path_factory.mktemp("db")) as url:
        asyncio.run(schema.upgrade(url))
        yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, environment="test")


def _sqlite_savepoint_workaround(engine: AsyncEngine) -> None:
    """Let pysqlite/aiosqlite honour SAVEPOINTs (SQLAlchemy docs, 'Serializable isolation')."""

    @event.listens_for(engine.sync_engine, "connect")
    def _no_implicit_begin(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]

    @event.listens_for(engine.sync_engine, "begin")
    def _explicit_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine for this test's event loop, disposed when the test ends."""
    engine = create_engine(settings)
    if settings.is_sqlite:
        _sqlite_savepoint_workaround(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction that is rolled back when the test ends."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        if transaction.is_active:
            await transaction.rollback()


@pytest.fixture
async def app(
    settings: Settings, engine: AsyncEngine, connection: AsyncConnection
) -> AsyncIterator[FastAPI]:
    """The app, started, with every session factory joined to the test's transaction."""
    application = create_app(settings, engine=engine)
    async with LifespanManager(application):
        database = application.state.database
        for factory in (database.api_sessions, database.admin_sessions):
            factory.configure(bind=connection, join_transaction_mode="create_savepoint")
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """An HTTP client talking to the app in-process."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
        yield c
