"""Every way the database can fail a request is a 503 with Retry-After (409 for a transaction
that lost to a concurrent one), never a 500, on the generated routes' raw asyncpg path and on
the ORM paths (sign-in, history) alike; and the pool is healthy afterwards.

Each failure is real: a refused port, an unresolvable host, a role over its connection limit,
a table locked by another connection, server-side timeouts, a server that ended the sessions,
and a network that drops them silently (a TCP proxy that stops forwarding).
"""

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy.engine import make_url

from backend import schema
from backend.auth.tokens import create_access_token
from backend.auth.users import upsert_user
from backend.config import Settings
from backend.main import create_app
from backend.models import Role
from backend.models.history import HISTORY_TABLE
from tests.databases import POSTGRES_ADMIN_URL

PASSWORD = "correct-horse-battery-staple"
ADMIN_EMAIL = "admin@example.com"
CATEGORY = {"name": "A", "slug": "a"}


def _dsn(database_url: str, **parts: Any) -> str:
    url = make_url(database_url).set(drivername="postgresql", **parts)
    return url.render_as_string(hide_password=False)


def _settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, environment="test", anonymous_read=True, **overrides)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    app = create_app(settings)
    async with LifespanManager(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def assert_unavailable(response: Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"detail": "The database is unavailable; retry shortly."}


async def sign_in(client: AsyncClient) -> Response:
    """The ORM path: POST /api/auth/token reads the user through a session."""
    return await client.post(
        "/api/auth/token", data={"username": ADMIN_EMAIL, "password": PASSWORD}
    )


async def admin_headers(client: AsyncClient) -> dict[str, str]:
    response = await sign_in(client)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def migrated_with_admin(database_url: str) -> None:
    await schema.upgrade(database_url)
    await upsert_user(
        _settings(database_url), email=ADMIN_EMAIL, password=PASSWORD, role=Role.admin
    )


def postgresql_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("a PostgreSQL server failure")


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait (at most 5 s) until `condition()` holds: a state another process reaches."""
    deadline = time.monotonic() + 5
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


# -- refused connections ------------------------------------------------------------------


@pytest.fixture
async def limited_role() -> AsyncIterator[str]:
    """A role allowed no connection at all: connecting fails with 53300."""
    name = f"dbfail_limited_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_dsn(POSTGRES_ADMIN_URL))
    try:
        await admin.execute(f'CREATE ROLE "{name}" LOGIN CONNECTION LIMIT 0')
        yield name
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        await admin.close()


def _refused_url(how: str, database_url: str, role: str) -> str:
    url = make_url(database_url)
    if how == "refused":  # nothing listens on port 1
        url = url.set(host="127.0.0.1", port=1)
    elif how == "unresolvable":
        url = url.set(host="no-such-host.invalid")
    elif how == "role limit":
        url = url.set(username=role)
    elif how == "no such database":
        url = url.set(database=f"dbfail_missing_{uuid.uuid4().hex[:8]}")
    return url.render_as_string(hide_password=False)


@pytest.mark.parametrize("how", ["refused", "unresolvable", "role limit", "no such database"])
async def test_a_refused_connection_is_503_on_every_path(
    backend: str, database_url: str, limited_role: str, how: str
) -> None:
    postgresql_only(backend)
    settings = _settings(_refused_url(how, database_url, limited_role))
    token = create_access_token(1, settings)
    async with serving(settings) as (_app, client):
        assert_unavailable(await client.get("/api/categories"))  # raw asyncpg path
        assert_unavailable(await client.get("/api/categories/1"))
        assert_unavailable(await sign_in(client))  # ORM session path
        history = await client.get("/api/history", headers={"Authorization": f"Bearer {token}"})
        assert_unavailable(history)
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["reason"].startswith("database unreachable")


# -- a full pool, locks and timeouts -------------------------------------------------------


@asynccontextmanager
async def table_locked(database_url: str, table: str) -> AsyncIterator[asyncpg.Connection]:
    """`table` locked (ACCESS EXCLUSIVE) by another connection until the block ends."""
    holder = await asyncpg.connect(_dsn(database_url))
    try:
        async with holder.transaction():
            await holder.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
            yield holder
    finally:
        await holder.close()


async def waiting_on_locks(database_url: str, count: int) -> None:
    """Return once `count` sessions of the database wait on a lock."""
    watcher = await asyncpg.connect(_dsn(database_url))
    name = make_url(database_url).database

    async def waiting() -> bool:
        found = await watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
            name,
        )
        return bool(found >= count)

    try:
        await eventually(waiting, f"{count} sessions wait on a lock")
    finally:
        await watcher.close()


async def test_a_full_pool_is_503_after_the_pool_timeout_then_recovers(
    backend: str, empty_database_url: str
) -> None:
    postgresql_only(backend)
    url = empty_database_url
    await migrated_with_admin(url)
    settings = _settings(url, db_pool_size=2, db_pool_timeout_s=0.3)
    async with serving(settings) as (_app, client):
        headers = await admin_headers(client)
        async with table_locked(url, "categories"):
            blocked = [asyncio.create_task(client.get("/api/categories")) for _ in range(2)]
            await waiting_on_locks(url, 2)  # both pooled connections wait on the lock
            started = time.monotonic()
            assert_unavailable(await client.get("/api/categories"))  # raw path
            assert_unavailable(await sign_in(client))  # ORM path
            assert_unavailable(await client.get("/api/history", headers=headers))
            assert time.monotonic() - started < 3  # three waits of 0.3 s, not 30 s
        assert [r.status_code for r in await asyncio.gather(*blocked)] == [200, 200]
        # nothing leaked: both connections serve again, on both paths
        statuses = await asyncio.gather(*(client.get("/api/categories") for _ in range(4)))
        assert {r.status_code for r in statuses} == {200}
        assert (await sign_in(client)).status_code == 200


@pytest.mark.parametrize(
    ("setting", "sqlstate"),
    [("statement_timeout", "57014"), ("lock_timeout", "55P03")],
)
async def test_a_server_side_timeout_is_503(
    backend: str, empty_database_url: str, setting: str, sqlstate: str
) -> None:
    postgresql_only(backend)
    url = empty_database_url
    await migrated_with_admin(url)
    name = make_url(url).database
    owner = await asyncpg.connect(_dsn(url))
    try:
        await owner.execute(f"ALTER DATABASE \"{name}\" SET {setting} = '150ms'")
    finally:
        await owner.close()
    async with serving(_settings(url, db_pool_size=2)) as (_app, client):
        headers = await admin_headers(client)
        async with table_locked(url, "categories"):
            assert_unavailable(await client.get("/api/categories"))
            assert_unavailable(await client.get("/api/categories/1"))
        async with table_locked(url, HISTORY_TABLE):
            assert_unavailable(await client.get("/api/history", headers=headers))
        assert (await client.get("/api/categories")).status_code == 200


async def test_a_locked_sqlite_database_is_503(backend: str, empty_database_url: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite's own lock")
    url = empty_database_url
    await migrated_with_admin(url)
    settings = _settings(url, sqlite_busy_timeout_ms=100)
    async with serving(settings) as (_app, client):
        headers = await admin_headers(client)
        holder = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            created = await client.post("/api/categories", json=CATEGORY, headers=headers)
            assert_unavailable(created)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        created = await client.post("/api/categories", json=CATEGORY, headers=headers)
        assert created.status_code == 201, created.text


async def test_a_transaction_that_loses_to_a_concurrent_one_is_409_retry(
    backend: str, empty_database_url: str
) -> None:
    """Under REPEATABLE READ an update of a row another transaction changed meanwhile fails
    with 40001; nothing was written, so the client may send it again."""
    postgresql_only(backend)
    url = empty_database_url
    await migrated_with_admin(url)
    name = make_url(url).database
    other = await asyncpg.connect(_dsn(url))
    try:
        await other.execute(
            f"ALTER DATABASE \"{name}\" SET default_transaction_isolation = 'repeatable read'"
        )
        async with serving(_settings(url)) as (_app, client):
            headers = await admin_headers(client)
            created = await client.post("/api/categories", json=CATEGORY, headers=headers)
            assert created.status_code == 201, created.text
            row_id = created.json()["id"]
            async with other.transaction():
                await other.execute("UPDATE categories SET name = 'b' WHERE id = $1", row_id)
                update = asyncio.create_task(
                    client.patch(f"/api/categories/{row_id}", json={"name": "c"}, headers=headers)
                )
                await waiting_on_locks(url, 1)
            lost = await update
            assert lost.status_code == 409, lost.text
            assert lost.headers["retry-after"] == "0"
            assert "retry" in lost.json()["detail"]
            again = await client.patch(
                f"/api/categories/{row_id}", json={"name": "c"}, headers=headers
            )
            assert again.status_code == 200, again.text
    finally:
        await other.close()


async def test_a_deadlock_victim_is_409_retry(backend: str, empty_database_url: str) -> None:
    """PostgreSQL's own 40P01, raised where a deadlock would be (a trigger)."""
    postgresql_only(backend)
    url = empty_database_url
    await migrated_with_admin(url)
    owner = await asyncpg.connect(_dsn(url))
    try:
        await owner.execute(
            "CREATE FUNCTION dbfail_deadlock() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'deadlock_detected'; END $$; "
            "CREATE TRIGGER dbfail_deadlock BEFORE INSERT ON categories "
            "FOR EACH ROW EXECUTE FUNCTION dbfail_deadlock()"
        )
    finally:
        await owner.close()
    async with serving(_settings(url)) as (_app, client):
        headers = await admin_headers(client)
        response = await client.post("/api/categories", json=CATEGORY, headers=headers)
        assert response.status_code == 409, response.text
        assert response.headers["retry-after"] == "0"


# -- connections the server or the network lost -------------------------------------------


async def _terminate_sessions(database_url: str) -> None:
    admin = await asyncpg.connect(_dsn(database_url, database="postgres"))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            make_url(database_url).database,
        )
    finally:
        await admin.close()


async def _fill_pool(app: FastAPI, count: int) -> list[Any]:
    """Open `count` pooled connections and give them back; their asyncpg connections."""
    engine = app.state.database.engine
    pooled = [await engine.raw_connection() for _ in range(count)]
    drivers = [connection.driver_connection for connection in pooled]
    for connection in pooled:
        connection.close()
    return drivers


async def test_connections_the_server_closed_are_replaced_before_use(
    backend: str, empty_database_url: str
) -> None:
    """A restart or pg_terminate_backend closes every pooled connection: none of them may fail
    a request (the README's promise), on the raw path or the ORM one."""
    postgresql_only(backend)
    url = empty_database_url
    await migrated_with_admin(url)
    async with serving(_settings(url, db_pool_size=4)) as (app, client):
        assert (await client.get("/api/categories")).status_code == 200

        def listing() -> Awaitable[Response]:
            return client.get("/api/categories")

        def signing_in() -> Awaitable[Response]:
            return sign_in(client)

        for request in (listing, signing_in):
            drivers = await _fill_pool(app, 4)
            await _terminate_sessions(url)

            async def all_closed() -> bool:
                return all(driver.is_closed() for driver in drivers)  # noqa: B023

            await eventually(all_closed, "asyncpg saw the server close every connection")
            burst = await asyncio.gather(*(request() for _ in range(8)))
            assert [r.status_code for r in burst] == [200] * 8


class SeveringProxy:
    """A TCP proxy to PostgreSQL that can drop its connections silently: the server's side is
    closed, the client is told nothing until it sends, and is then reset (a NAT or firewall
    that forgot the connection)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.pairs: list[dict[str, Any]] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        pair = {"client": writer, "upstream": upstream_writer, "severed": False}
        self.pairs.append(pair)
        await asyncio.gather(
            self._pipe(reader, upstream_writer, pair, from_client=True),
            self._pipe(upstream_reader, writer, pair, from_client=False),
        )

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        pair: dict[str, Any],
        *,
        from_client: bool,
    ) -> None:
        try:
            while data := await source.read(65536):
                if pair["severed"]:
                    break
                sink.write(data)
                await sink.drain()
        except ConnectionError:
            pass
        if pair["severed"]:
            if from_client:
                pair["client"].transport.abort()  # the client learns only now: a reset
            return
        sink.close()

    def sever(self) -> None:
        for pair in self.pairs:
            pair["severed"] = True
            pair["upstream"].transport.abort()  # the server's session ends

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for pair in self.pairs:
            pair["client"].transport.abort()
            pair["upstream"].transport.abort()
        await self.server.wait_closed()


async def test_a_silently_lost_pool_fails_one_request_then_is_replaced(
    backend: str, empty_database_url: str
) -> None:
    """Connections lost without the client being told are found only by using one: that
    request is a 503, and every other connection made before it is replaced before use."""
    postgresql_only(backend)
    url = empty_database_url
    await migrated_with_admin(url)
    target = make_url(url)
    proxy = SeveringProxy(target.host or "127.0.0.1", target.port or 5432)
    port = await proxy.start()
    proxied = target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    try:
        async with serving(_settings(proxied, db_pool_size=4)) as (app, client):
            assert (await sign_in(client)).status_code == 200
            await _fill_pool(app, 4)
            proxy.sever()
            statuses = [(await client.get("/api/categories")).status_code for _ in range(8)]
            assert statuses == [503] + [200] * 7, statuses
            proxy.sever()
            statuses = [(await sign_in(client)).status_code for _ in range(4)]
            assert statuses == [503] + [200] * 3, statuses
    finally:
        await proxy.close()
