"""A lost database connection is a 503 the client may retry, never a 500; the next call works."""

import asyncpg
import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import make_url

from backend import schema
from backend.config import Settings
from backend.main import create_app


async def test_a_dropped_connection_is_503_then_the_pool_recovers(
    backend: str, empty_database_url: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no server connection to lose")
    database_url = empty_database_url  # its own database: terminating its sessions hurts no one
    await schema.upgrade(database_url)
    settings = Settings(database_url=database_url, environment="test", anonymous_read=True)
    app = create_app(settings)
    url = make_url(database_url)
    async with LifespanManager(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            assert (await client.get("/api/categories")).status_code == 200
            admin = await asyncpg.connect(
                url.set(drivername="postgresql", database="postgres").render_as_string(False)
            )
            try:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = $1 AND pid <> pg_backend_pid()",
                    url.database,
                )
            finally:
                await admin.close()
            lost = await client.get("/api/categories")
            assert lost.status_code == 503, lost.text
            assert lost.headers["retry-after"] == "1"
            assert "unavailable" in lost.json()["detail"]
            assert (await client.get("/api/categories")).status_code == 200
