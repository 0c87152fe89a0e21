"""The benchmark database: dropped, recreated, migrated by Tablestack, then bulk-loaded.

50 categories, 100,000 products and 10,000 customers go in with COPY (asyncpg), which takes a
few seconds; the data is generated from a fixed seed, so every run measures the same rows.
"""

import asyncio
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TABLESTACK = Path(sys.executable).parent / "tablestack"

ADJECTIVES = (
    "Compact Durable Elegant Ergonomic Fresh Gentle Handmade Heavy Light Modern Organic Portable "
    "Premium Quiet Rugged Sleek Smart Solid Sturdy Vintage Wireless Classic Deluxe Eco"
).split()
MATERIALS = "Bamboo Brass Ceramic Cotton Glass Granite Leather Linen Oak Steel Walnut Wool".split()
NOUNS = (
    "Backpack Blender Bottle Chair Desk Headphones Jacket Kettle Lamp Mug Notebook Pan Pillow "
    "Scarf Shelf Speaker Table Teapot Towel Umbrella Vase Wallet Watch"
).split()
WORDS = (
    "built to last with a careful finish and a simple design that fits every home and office "
    "easy to clean light to carry made from responsibly sourced materials tested for daily use"
).split()
FIRST = "Ada Alan Barbara Claude Edsger Frances Grace John Katherine Linus Margaret Tim".split()
LAST = "Allen Dijkstra Hamilton Hopper Johnson Kay Knuth Liskov Lovelace Ritchie Turing".split()


@dataclass(frozen=True)
class Volume:
    categories: int = 50
    products: int = 100_000
    customers: int = 10_000


def admin_url(database_url: str) -> str:
    """The maintenance database on the same server (to create and drop the bench database)."""
    return database_url.rsplit("/", 1)[0] + "/postgres"


def database_name(database_url: str) -> str:
    return database_url.rsplit("/", 1)[1].split("?", 1)[0]


def asyncpg_url(database_url: str) -> str:
    """`postgresql+asyncpg://...` for Tablestack from a plain `postgresql://...` URL."""
    return "postgresql+asyncpg://" + database_url.split("://", 1)[1]


async def recreate(database_url: str) -> None:
    """Drop the bench database (closing its connections) and create it empty."""
    name = database_name(database_url)
    if not name.replace("_", "").isalnum():
        raise ValueError(f"refusing to drop database {name!r}: not a plain identifier")
    connection = await asyncpg.connect(admin_url(database_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def tablestack(args: list[str], env: dict[str, str]) -> None:
    """Run the `tablestack` command; its one-line error is the benchmark's error."""
    completed = subprocess.run(
        [str(TABLESTACK), *args],
        env={**os.environ, **env},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"tablestack {args[0]} failed: {(completed.stderr or completed.stdout).strip()}"
        )


def categories(volume: Volume) -> list[tuple[object, ...]]:
    return [
        (f"Category {i:02d}", f"category-{i:02d}", f"Everything in category {i:02d}.")
        for i in range(1, volume.categories + 1)
    ]


def products(volume: Volume, rng: random.Random) -> list[tuple[object, ...]]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows: list[tuple[object, ...]] = []
    for i in range(1, volume.products + 1):
        created = start + timedelta(minutes=rng.randrange(500_000))
        rows.append(
            (
                f"SKU-{i:07d}",
                f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(NOUNS)}",
                " ".join(rng.choices(WORDS, k=rng.randrange(8, 30))).capitalize() + ".",
                Decimal(rng.randrange(100, 100_000)) / 100,
                rng.randrange(0, 500),
                rng.random() < 0.9,
                rng.randrange(1, volume.categories + 1),
                created,
                created,
            )
        )
    return rows


def customers(volume: Volume, rng: random.Random) -> list[tuple[object, ...]]:
    return [
        (
            f"customer{i:05d}@example.com",
            f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            f"+1-555-{rng.randrange(10_000):04d}" if rng.random() < 0.7 else None,
        )
        for i in range(1, volume.customers + 1)
    ]


async def load(database_url: str, volume: Volume, seed: int = 6) -> None:
    """Bulk-load the rows with COPY and refresh the planner's statistics."""
    rng = random.Random(seed)
    connection = await asyncpg.connect(database_url)
    try:
        await connection.copy_records_to_table(
            "categories", records=categories(volume), columns=["name", "slug", "description"]
        )
        await connection.copy_records_to_table(
            "products",
            records=products(volume, rng),
            columns=[
                "sku",
                "name",
                "description",
                "price",
                "stock",
                "is_active",
                "category_id",
                "created_at",
                "updated_at",
            ],
        )
        await connection.copy_records_to_table(
            "customers", records=customers(volume, rng), columns=["email", "name", "phone"]
        )
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


async def restore(database_url: str, products: int) -> None:
    """Undo a write scenario: drop the rows it created, and vacuum away the dead tuples.

    Keeps every run on the same table: without it the list's count(*) would grow with each
    create run, and the later targets would pay for the earlier ones' rows.
    """
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("DELETE FROM products WHERE id > $1", products)
        await connection.execute("VACUUM ANALYZE products")
    finally:
        await connection.close()


def prepare(database_url: str, env: dict[str, str], volume: Volume) -> None:
    """Recreate, migrate (with `tablestack migrate`) and load the bench database."""
    asyncio.run(recreate(database_url))
    tablestack(["migrate"], {**env, "DATABASE_URL": asyncpg_url(database_url)})
    asyncio.run(load(database_url, volume))
