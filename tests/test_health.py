"""Liveness and readiness, and what a served app does at start-up."""

import gc

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient

from backend.config import Settings
from backend.main import create_app


async def test_healthz(client: AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_migrated(client: AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


async def test_readyz_reports_missing_migrations(empty_database_url: str) -> None:
    app = create_app(Settings(database_url=empty_database_url, environment="test"))
    async with LifespanManager(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert "migrations not at head" in body["reason"]
    assert "tablestack migrate" in body["reason"]


async def test_readyz_reports_unreachable_database() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:9/none", environment="test"
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("database unreachable")


async def test_a_served_app_freezes_its_startup_objects(database_url: str) -> None:
    """`tablestack serve`'s app moves what start-up built out of the collector's way."""
    gc.unfreeze()
    settings = Settings(database_url=database_url, environment="test")
    app = create_app(settings, freeze_startup_objects=True)
    try:
        async with LifespanManager(app):
            frozen = gc.get_freeze_count()
            transport = ASGITransport(app=app)
            async with AsyncClient(transport=transport, base_url="http://testserver") as client:
                assert (await client.get("/healthz")).status_code == 200
    finally:
        gc.unfreeze()  # the rest of the test run collects as usual
    assert frozen > 10_000  # the models, schemas, routes and metadata, at least
    plain = create_app(settings)
    async with LifespanManager(plain):
        assert gc.get_freeze_count() == 0


async def test_readyz_with_several_branches(empty_database_url: str) -> None:
    """Ready only when every branch (the project's and each APPS module's) is at its head."""
    from backend import schema

    heads = schema.head_revisions()
    assert len(heads) >= 2  # the project's branch and the fixture app's
    await schema.migrate(empty_database_url, "project@head")
    app = create_app(Settings(database_url=empty_database_url, environment="test"))
    async with LifespanManager(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            partly = await client.get("/readyz")
            await schema.migrate(empty_database_url)
            ready = await client.get("/readyz")
    assert partly.status_code == 503
    assert "migrations not at head" in partly.json()["reason"]
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["revision"].split(",")) == heads
