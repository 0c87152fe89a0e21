"""Seeding benchmark: `tablestack seed --fake N --table products` against one ORM object a row.

Creates its own PostgreSQL database (and drops it), migrates it, gives it 100 categories and
100 tags, then measures in one run:
- fast: the fake-data path (column-wise generation, binary COPY, tags linked per batch);
- naive: the same generator's rows, inserted as one `Product` ORM object per row with
  `session.add()` + `flush()` per row (one commit at the end), on a fresh database.
Writes JSON and a Markdown table under bench/results/ and prints the table.

    .venv/bin/python bench/seeding/bench_seed.py [--rows 100000] [--naive-rows 10000]
"""

import argparse
import asyncio
import json
import os
import platform
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from backend import schema
from backend.config import PROJECT_ROOT, Settings
from backend.db import create_engine
from backend.models import Product
from backend.seeding.fake import Pools, _TableFaker, generate_fake
from backend.seeding.tables import seed_table

ADMIN_URL = os.environ.get(
    "TABLESTACK_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
RESULTS = PROJECT_ROOT / "bench" / "results"
SEED = 1


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def scratch_database() -> AsyncIterator[AsyncEngine]:
    """A new, migrated PostgreSQL database with 100 categories and 100 tags; dropped after."""
    name = f"tablestack_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_dsn(ADMIN_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        await schema.upgrade(url)
        engine = create_engine(Settings(database_url=url, environment="test"))
        try:
            await generate_fake(engine, rows=100, tables=["categories", "tags"], random_seed=SEED)
            yield engine
        finally:
            await engine.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def fast(rows: int) -> dict[str, Any]:
    async with scratch_database() as engine:
        started = time.perf_counter()
        report = await generate_fake(engine, rows=rows, tables=["products"], random_seed=SEED)
        elapsed = time.perf_counter() - started
    return {
        "products": report.rows["products"],
        "product_tags": report.links["product_tags"],
        "seconds": round(elapsed, 3),
        "products_per_s": round(report.rows["products"] / elapsed),
        "rows_per_s": round(report.total / elapsed),
    }


async def naive(rows: int) -> dict[str, Any]:
    async with scratch_database() as engine:
        async with engine.connect() as connection:  # the same generator, the same rows
            products = seed_table("products")
            faker = _TableFaker(connection, products, random.Random(SEED), Pools(SEED))
            await faker.prepare()
            payloads = faker.batch(rows)
        started = time.perf_counter()
        async with AsyncSession(engine, expire_on_commit=False) as session:
            for payload in payloads:
                session.add(Product(**payload))
                await session.flush()
            await session.commit()
        elapsed = time.perf_counter() - started
    return {
        "products": rows,
        "seconds": round(elapsed, 3),
        "products_per_s": round(rows / elapsed),
    }


def markdown(result: dict[str, Any]) -> str:
    fast_run, naive_run = result["fast"], result["naive"]
    return "\n".join(
        [
            f"# Seeding benchmark ({result['when']})",
            "",
            f"PostgreSQL, {result['cpus']} CPUs, load average before the run "
            f"{result['load_average_before']}.",
            "",
            "| path | products | product_tags | seconds | products/s | all rows/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            f"| `seed --fake {fast_run['products']} --table products` | {fast_run['products']} "
            f"| {fast_run['product_tags']} | {fast_run['seconds']} "
            f"| {fast_run['products_per_s']:,} | {fast_run['rows_per_s']:,} |",
            f"| naive: ORM object + flush per row | {naive_run['products']} | - "
            f"| {naive_run['seconds']} | {naive_run['products_per_s']:,} "
            f"| {naive_run['products_per_s']:,} |",
            "",
            f"Speed-up (products/s): **{result['speedup']}x**.",
            "",
        ]
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="products on the fast path")
    parser.add_argument(
        "--naive-rows", type=int, default=10_000, help="products on the naive path (it is slow)"
    )
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    fast_run = await fast(args.rows)
    naive_run = await naive(args.naive_rows)
    result = {
        "when": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "fast": fast_run,
        "naive": naive_run,
        "speedup": round(fast_run["products_per_s"] / naive_run["products_per_s"], 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = result["when"].replace(":", "").replace("-", "")
    path = Path(RESULTS / f"seeding-{stamp}")
    path.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    path.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {path.with_suffix('.json').relative_to(PROJECT_ROOT)} and .md")


if __name__ == "__main__":
    asyncio.run(main())
