"""Latency of the generated list route over a realistic catalog, in-process (no network).

    .venv/bin/python bench/api_list.py [--rows 20000] [--requests 200] [--database-url URL]

Builds a throw-away database (SQLite by default; pass a PostgreSQL URL of an EMPTY database
to measure that), loads `--rows` products with two tags each, then times typical list calls a
frontend makes: a first page, a filtered + sorted page, a search, a deep page and the
react-admin dialect. Prints median and p95 per call.
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import insert

from backend import schema
from backend.auth.tokens import create_access_token
from backend.config import Settings
from backend.db import create_engine
from backend.main import create_app
from backend.models import Category, Product, ProductTag, Role, Tag, User

CALLS = {
    "first page": "/api/products",
    "filter+sort": "/api/products?price__gte=50&is_active=true&sort=-price,name&limit=50",
    "search": "/api/products?q=lamp&limit=25",
    "deep page": "/api/products?skip=15000&limit=25&sort=name",
    "react-admin": '/api/products?filter={"category_id":3}&sort=["stock","DESC"]&range=[0,24]',
    "by tag": "/api/products?tag_ids=2&limit=25",
}


async def load(settings: Settings, rows: int) -> int:
    engine = create_engine(settings)
    async with engine.begin() as connection:
        await connection.execute(
            insert(Category.__table__),  # type: ignore[attr-defined]
            [{"name": f"Category {i}", "slug": f"category-{i}"} for i in range(1, 21)],
        )
        await connection.execute(
            insert(Tag.__table__),  # type: ignore[attr-defined]
            [{"name": f"tag-{i}"} for i in range(1, 51)],
        )
        await connection.execute(
            insert(Product.__table__),  # type: ignore[attr-defined]
            [
                {
                    "sku": f"SKU-{i:06d}",
                    "name": f"{'Lamp' if i % 7 == 0 else 'Chair'} model {i}",
                    "price": Decimal(i % 200) + Decimal("0.99"),
                    "stock": i % 50,
                    "is_active": i % 10 != 0,
                    "category_id": i % 20 + 1,
                }
                for i in range(1, rows + 1)
            ],
        )
        await connection.execute(
            insert(ProductTag.__table__),  # type: ignore[attr-defined]
            [
                {"product_id": i, "tag_id": tag}
                for i in range(1, rows + 1)
                for tag in {i % 50 + 1, (i * 7) % 50 + 1}
            ],
        )
        result = await connection.execute(
            insert(User.__table__)  # type: ignore[attr-defined]
            .values(email="bench@example.com", hashed_password="x", role=Role.viewer.value)
            .returning(User.__table__.c.id)  # type: ignore[attr-defined]
        )
        user_id = int(result.scalar_one())
    await engine.dispose()
    return user_id


async def measure(settings: Settings, user_id: int, requests: int) -> None:
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {create_access_token(user_id, settings)}"}
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://bench") as client,
    ):
        print(f"{'call':<14} {'median ms':>10} {'p95 ms':>8}  total")
        for label, url in CALLS.items():
            await client.get(url, headers=headers)  # warm up
            times = []
            for _ in range(requests):
                start = time.perf_counter()
                response = await client.get(url, headers=headers)
                times.append((time.perf_counter() - start) * 1000)
                response.raise_for_status()
            p95 = statistics.quantiles(times, n=20)[-1]
            total = response.headers["x-total-count"]
            print(f"{label:<14} {statistics.median(times):>10.1f} {p95:>8.1f}  {total}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        settings = Settings(database_url=url, environment="test")
        asyncio.run(schema.upgrade(url))
        user_id = asyncio.run(load(settings, args.rows))
        print(f"{args.rows} products on {settings.database_url.split(':')[0]}")
        asyncio.run(measure(settings, user_id, args.requests))


if __name__ == "__main__":
    main()
