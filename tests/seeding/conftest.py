"""Fixtures for the seeding tests: a migrated database per backend, emptied around each test.

Seeding commits (one transaction per load is the behaviour under test), so these tests do not
use the suite's rolled-back `connection`; they own a database and delete every row instead.
"""

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from backend import schema
from backend.config import PROJECT_ROOT, Settings
from backend.db import create_engine, metadata
from backend.models.history import HISTORY_TABLE
from backend.registry import client_chosen_primary_key, registry
from tests.databases import fresh_database

DEMO = PROJECT_ROOT / "seed" / "demo"
Snapshot = dict[str, list[tuple[tuple[str, Any], ...]]]


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real argon2 hashes at the lowest cost: the recommended cost is 0.1 s a hash per core.

    The hashes carry their parameters, so backend.auth's verify_password checks them as usual.
    """
    from backend.auth import passwords
    from backend.seeding import fake, loader
    from tests.passwords import cheap_hasher

    cheap = cheap_hasher()
    monkeypatch.setattr(passwords, "_hasher", lambda: cheap)  # the Writer's, for seed loads
    monkeypatch.setattr(fake, "hash_password", cheap.hash)
    monkeypatch.setattr(loader, "verify_password", cheap.verify)


@pytest.fixture(scope="session")
def seed_database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated to head, owned by the seeding tests of this backend."""
    with fresh_database(backend, tmp_path_factory.mktemp("seed")) as url:
        asyncio.run(schema.upgrade(url))
        yield url


async def empty_all_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            # a tree's RESTRICT is checked row by row (SQLite): cut the tree before deleting
            parents = {
                fk.parent.name: None for fk in table.foreign_keys if fk.column.table is table
            }
            if parents:
                await connection.execute(update(table).values(parents))
            await connection.execute(delete(table))


@pytest.fixture
async def seed_engine(seed_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the seeding database, which is empty when the test starts."""
    engine = create_engine(Settings(database_url=seed_database_url, environment="test"))
    await empty_all_tables(engine)
    yield engine
    await empty_all_tables(engine)
    await engine.dispose()


@pytest.fixture
def other_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty, migrated database of this test's own."""
    with fresh_database(backend, tmp_path) as url:
        asyncio.run(schema.upgrade(url))
        yield url


@pytest.fixture
async def other_engine(other_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the second database (the target of a dump -> load round trip)."""
    engine = create_engine(Settings(database_url=other_database_url, environment="test"))
    yield engine
    await engine.dispose()


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """A copy of the demo set that a test may edit."""
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target)
    return target


async def snapshot(engine: AsyncEngine) -> Snapshot:
    """Every row of every table, ids included, in primary-key order."""
    rows: Snapshot = {}
    async with engine.connect() as connection:
        for table in metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            result = await connection.execute(query)
            rows[table.name] = [tuple(dict(row).items()) for row in result.mappings()]
    return rows


def _identity_column(table: Table) -> str | None:
    """The surrogate id that differs between databases (not a key the client chose)."""
    keys = list(table.primary_key.columns)
    if len(keys) != 1 or keys[0].foreign_keys:
        return None
    return keys[0].name


def _data_tables() -> list[Table]:
    return [t for t in metadata.sorted_tables if t.name != HISTORY_TABLE]


async def natural_snapshot(engine: AsyncEngine) -> Snapshot:
    """Every row of every data table with ids replaced by the natural keys of the rows they
    name.

    Independent of the seeding code, so two databases loaded differently compare equal
    exactly when they hold the same data. The history is left out: it records how the data
    came to be (a load, a fake run: new entries, new times), not the data.
    """
    raw: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as connection:
        for table in _data_tables():
            raw[table.name] = [
                dict(r) for r in (await connection.execute(select(table))).mappings()
            ]
    by_id = {
        table.name: {row[column]: row for row in raw[table.name]}
        for table in _data_tables()
        if (column := _identity_column(table)) is not None
    }
    natural_keys = {resource.table.name: resource.natural_key for resource in registry}

    def value(table: Table, column: str, data: Any) -> Any:
        foreign_key = next(iter(table.c[column].foreign_keys), None)
        if foreign_key is None or data is None:
            return data
        target = foreign_key.column.table
        row = by_id[target.name][data]
        return tuple(value(target, c, row[c]) for c in natural_keys[target.name])

    result: Snapshot = {}
    for table in _data_tables():
        skip = None if client_chosen_primary_key(table) else _identity_column(table)
        rows = [
            tuple(
                (c.name, value(table, c.name, row[c.name])) for c in table.columns if c.name != skip
            )
            for row in raw[table.name]
        ]
        result[table.name] = sorted(rows, key=repr)
    return result


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    return {name: len(rows) for name, rows in (await snapshot(engine)).items()}
