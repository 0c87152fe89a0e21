"""No lost updates: many clients doing read-modify-write on one row at once, on PostgreSQL.

The app runs over its own pool (not a test transaction), so requests really run side by
side: 20 clients each add 1 to a product's stock 25 times. With `If-Match` every increment
lands (a client whose version went stale gets a 412, reads again and retries); without it,
the same clients overwrite each other's increments, which the test measures and reports.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import insert

from backend import schema
from backend.auth.passwords import hash_password
from backend.auth.tokens import create_access_token
from backend.config import Settings
from backend.db import create_engine
from backend.main import create_app
from backend.models import User

CLIENTS = 20
CYCLES = 25


@dataclass
class Served:
    app: FastAPI
    headers: dict[str, str]


@pytest.fixture
async def served(backend: str, empty_database_url: str) -> AsyncIterator[Served]:
    if backend != "postgresql":
        pytest.skip("concurrent writers: PostgreSQL (SQLite has one writer at a time)")
    await schema.upgrade(empty_database_url)
    settings = Settings(database_url=empty_database_url, environment="test", db_pool_size=CLIENTS)
    engine = create_engine(settings)
    async with engine.begin() as connection:
        users = User.__table__  # type: ignore[attr-defined]
        result = await connection.execute(
            insert(users)
            .values(
                email="racer@example.com", hashed_password=hash_password("x" * 12), role="editor"
            )
            .returning(users.c.id)
        )
        user_id = int(result.scalar_one())
    app = create_app(settings, engine=engine)
    token = create_access_token(user_id, settings)
    async with LifespanManager(app):
        yield Served(app, {"Authorization": f"Bearer {token}"})
    await engine.dispose()


async def _product(client: AsyncClient, headers: dict[str, str]) -> str:
    category = await client.post(
        "/api/categories", json={"name": "Race", "slug": "race"}, headers=headers
    )
    assert category.status_code == 201, category.text
    body = {"sku": "RACE-1", "name": "Racer", "price": "1.00", "stock": 0}
    product = await client.post(
        "/api/products", json={**body, "category_id": category.json()["id"]}, headers=headers
    )
    assert product.status_code == 201, product.text
    return f"/api/products/{product.json()['id']}"


async def _increment(
    client: AsyncClient, path: str, headers: dict[str, str], *, if_match: bool
) -> int:
    """Add 1 to the stock CYCLES times; how many 412s it took."""
    stale = 0
    for _ in range(CYCLES):
        while True:
            read = await client.get(path, headers=headers)
            assert read.status_code == 200, read.text
            condition = {"If-Match": read.headers["etag"]} if if_match else {}
            written = await client.patch(
                path, json={"stock": read.json()["stock"] + 1}, headers={**headers, **condition}
            )
            if written.status_code == 412:
                stale += 1
                continue
            assert written.status_code == 200, written.text
            break
    return stale


async def _race(served: Served, *, if_match: bool) -> tuple[int, int]:
    transport = ASGITransport(app=served.app)
    async with AsyncClient(transport=transport, base_url="http://race") as client:
        path = await _product(client, served.headers)
        stale = await asyncio.gather(
            *(_increment(client, path, served.headers, if_match=if_match) for _ in range(CLIENTS))
        )
        final = (await client.get(path, headers=served.headers)).json()["stock"]
        await client.delete(path, headers=served.headers)
    return final, sum(stale)


async def test_if_match_loses_no_update(served: Served) -> None:
    final, refused = await _race(served, if_match=True)
    assert final == CLIENTS * CYCLES  # 0 lost updates
    assert refused > 0  # the losers of each race were told, with a 412


async def test_without_if_match_updates_are_lost(
    served: Served, record_property: Callable[[str, object], None]
) -> None:
    final, refused = await _race(served, if_match=False)
    lost = CLIENTS * CYCLES - final
    record_property("lost_updates_without_if_match", lost)
    print(f"without If-Match: {lost} of {CLIENTS * CYCLES} increments lost")
    assert refused == 0 and 0 <= lost < CLIENTS * CYCLES
