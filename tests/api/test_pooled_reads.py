"""Reads over the app's own pool: autocommit on PostgreSQL, and the pool stays transactional.

The other API tests join every session to a test transaction; here the app's sessions use its
engine, as in production, so the autocommit read path runs and gives its connection back.
"""

from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.config import Settings
from backend.db import create_engine
from backend.main import create_app
from backend.models import Tag


@pytest.fixture
async def one_connection_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose pool holds one connection: every request reuses the same one."""
    settings = Settings(database_url=database_url, environment="test", db_pool_size=1)
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


async def test_reads_leave_the_pooled_connection_transactional(
    database_url: str, one_connection_engine: AsyncEngine
) -> None:
    settings = Settings(
        database_url=database_url, environment="test", anonymous_read=True, db_pool_size=1
    )
    app = create_app(settings, engine=one_connection_engine)
    transport = ASGITransport(app=app)
    async with LifespanManager(app), AsyncClient(transport=transport, base_url="http://t") as c:
        for _ in range(2):
            listed = await c.get("/api/tags")
            assert listed.status_code == 200, listed.text
            assert int(listed.headers["X-Total-Count"]) == len(listed.json())
            missing = await c.get("/api/tags/2147483647")
            assert missing.status_code == 404, missing.text

    # The same pooled connection, after the reads: a rolled-back insert leaves nothing (in
    # autocommit it would have stayed).
    count = select(func.count()).select_from(Tag)
    tags = Tag.__table__  # type: ignore[attr-defined]
    async with one_connection_engine.connect() as connection:
        before = (await connection.execute(count)).scalar_one()
        await connection.rollback()
        transaction = await connection.begin()
        await connection.execute(tags.insert().values(name="pooled-read-probe"))
        await transaction.rollback()
        after = (await connection.execute(count)).scalar_one()
    assert after == before
