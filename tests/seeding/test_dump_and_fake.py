"""Dump -> load round trips, and fake rows that keep every constraint."""

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.auth.passwords import verify_password
from backend.registry import VERSION_COLUMN
from backend.seeding import fake
from backend.seeding.dumper import dump_set
from backend.seeding.fake import generate_fake
from backend.seeding.format import SeedError
from backend.seeding.loader import load_set
from backend.seeding.tables import seed_table, seed_tables
from backend.writes.actor import FAKE
from backend.writes.bulk import record_loads
from backend.writes.history import HISTORY
from tests.seeding.conftest import (
    DEMO,
    empty_all_tables,
    natural_snapshot,
    row_counts,
    snapshot,
)

FAKE_ROWS = 1000


async def test_dump_then_load_into_an_empty_database_reproduces_the_data(
    seed_engine: AsyncEngine, other_engine: AsyncEngine, tmp_path: Path
) -> None:
    await load_set(seed_engine, DEMO)
    await generate_fake(seed_engine, rows=40, random_seed=5)
    dumped = tmp_path / "dumped"
    report = await dump_set(seed_engine, dumped)
    assert report.rows["products"] == 70

    await load_set(other_engine, dumped)
    source, copy = await natural_snapshot(seed_engine), await natural_snapshot(other_engine)
    assert set(copy) == set(source)
    for name in source:  # table by table, for a readable failure
        assert copy[name] == source[name], name
    assert len(copy["product_tags"]) > 0

    products = yaml.safe_load((dumped / "products.yaml").read_text())
    assert "id" not in products[0] and "category_id" not in products[0]
    assert "row_version" not in products[0]
    assert products[0]["sku"] == "LAMP-001" and products[0]["category"] == "lamps"
    assert products[0]["tags"] == ["bestseller", "dimmable", "led"]
    users = yaml.safe_load((dumped / "users.yaml").read_text())
    assert "password" not in users[0] and users[0]["hashed_password"].startswith("$argon2")
    async with other_engine.connect() as connection:
        users = seed_table("users").table
        hashed = await connection.scalar(
            select(users.c.hashed_password).where(users.c.email == "admin@example.com")
        )
    assert hashed is not None and verify_password("tablestack-demo", hashed)

    # the dump is itself an idempotent seed set
    before = await snapshot(other_engine)
    assert not (await load_set(other_engine, dumped)).changed
    assert await snapshot(other_engine) == before


async def test_dump_refuses_to_overwrite_a_set_without_force(
    seed_engine: AsyncEngine, tmp_path: Path
) -> None:
    await load_set(seed_engine, DEMO)
    target = tmp_path / "mine"
    await dump_set(seed_engine, target)
    (target / "stale.yaml").write_text("- name: gone\n")
    with pytest.raises(SeedError, match="already holds a seed set .* use --force"):
        await dump_set(seed_engine, target)
    await dump_set(seed_engine, target, force=True)
    assert not (target / "stale.yaml").exists()


async def test_fake_rows_for_every_table_keep_every_constraint(seed_engine: AsyncEngine) -> None:
    await load_set(seed_engine, DEMO)  # fake rows must fit around existing data too
    before = await row_counts(seed_engine)
    report = await generate_fake(seed_engine, rows=FAKE_ROWS, random_seed=42)
    after = await row_counts(seed_engine)
    for table in seed_tables():
        assert report.rows[table.name] == FAKE_ROWS
        assert after[table.name] == before[table.name] + FAKE_ROWS, table.name
    assert after["product_tags"] == before["product_tags"] + report.links["product_tags"]
    # The database enforced uniques, foreign keys and checks on insert; the API's create
    # schemas check every row's types, lengths, enums and bounds here (not just a sample).
    async with seed_engine.connect() as connection:
        for table in seed_tables():
            schema = table.create_schema
            fields = set(schema.model_fields)
            result = await connection.execute(select(table.table))
            for row in result.mappings():
                payload: dict[str, Any] = {k: v for k, v in row.items() if k in fields}
                if table.password_columns:  # not stored: fake users have no password
                    payload["password"] = "any-password"
                try:
                    schema.model_validate(payload)
                except ValidationError as exc:  # pragma: no cover - the failure message
                    pytest.fail(f"{table.name} row {dict(row)}: {exc}")
        sku = seed_table("products").table.c.sku
        skus = await connection.scalar(select(func.count(func.distinct(sku))))
        assert skus == after["products"]


async def test_the_same_random_seed_gives_the_same_rows(seed_engine: AsyncEngine) -> None:
    await generate_fake(seed_engine, rows=30, random_seed=7)
    first = await natural_snapshot(seed_engine)
    await generate_fake(seed_engine, rows=30, random_seed=7, dry_run=True)
    assert await natural_snapshot(seed_engine) == first  # a dry run writes nothing
    assert len(await history(seed_engine)) == len(seed_tables())  # not even history
    await empty_all_tables(seed_engine)
    await generate_fake(seed_engine, rows=30, random_seed=7)
    second = await natural_snapshot(seed_engine)
    without_times = {
        name: [
            tuple(p for p in row if not p[0].endswith("_at") or p[0] == "placed_at") for row in rows
        ]
        for name, rows in second.items()
    }
    assert without_times == {
        name: [
            tuple(p for p in row if not p[0].endswith("_at") or p[0] == "placed_at") for row in rows
        ]
        for name, rows in first.items()
    }


async def test_fake_rows_need_rows_to_refer_to(seed_engine: AsyncEngine) -> None:
    with pytest.raises(SeedError, match="cannot fake products: categories has no rows"):
        await generate_fake(seed_engine, rows=5, tables=["products"])
    assert set((await row_counts(seed_engine)).values()) == {0}


async def test_fake_rows_skip_numbers_that_existing_rows_hold(seed_engine: AsyncEngine) -> None:
    await generate_fake(seed_engine, rows=10, tables=["categories", "tags", "products"])
    products = seed_table("products").table
    async with seed_engine.begin() as connection:  # 5 rows left, holding SKU-000006..10
        await connection.execute(products.delete().where(products.c.sku <= "SKU-000005"))
    await generate_fake(seed_engine, rows=10, tables=["products"])
    async with seed_engine.connect() as connection:
        skus = list(await connection.scalars(select(products.c.sku).order_by(products.c.sku)))
    assert len(skus) == len(set(skus)) == 15
    assert skus[0] == "SKU-000006" and skus[-1] == "SKU-000020"


async def history(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every history entry, oldest first."""
    async with engine.connect() as connection:
        result = await connection.execute(select(HISTORY).order_by(HISTORY.c.id))
        return [dict(row) for row in result.mappings()]


async def row_versions(engine: AsyncEngine) -> set[int]:
    """Every row_version of every registered table's rows."""
    versions: set[int] = set()
    async with engine.connect() as connection:
        for table in seed_tables():
            versions |= set(await connection.scalars(select(table.table.c[VERSION_COLUMN])))
    return versions


async def test_a_fake_load_is_one_history_entry_per_table(seed_engine: AsyncEngine) -> None:
    """COPY goes around the write service, but the load is in the history: one `loaded`
    entry per table, by `fake`, with the row count, committed with the rows."""
    started = dt.datetime.now(dt.UTC)
    report = await generate_fake(seed_engine, rows=12, random_seed=4)
    finished = dt.datetime.now(dt.UTC)
    entries = await history(seed_engine)
    assert [e["resource"] for e in entries] == [t.name for t in seed_tables()]
    for entry in entries:
        assert entry["action"] == "loaded" and entry["changes"] == {"rows": 12}
        assert entry["actor"] == FAKE.label == "fake" and entry["actor_id"] is None
        assert entry["row_id"] is None and entry["version"] is None
        assert started <= entry["at"] <= finished
    assert report.rows == {e["resource"]: e["changes"]["rows"] for e in entries}
    assert await row_versions(seed_engine) == {1}  # new rows take the server's default

    await generate_fake(seed_engine, rows=3, tables=["tags"], random_seed=5)
    latest = (await history(seed_engine))[-1]
    assert (latest["resource"], latest["changes"]) == ("tags", {"rows": 3})
    assert len(await history(seed_engine)) == len(entries) + 1


async def test_a_failed_fake_load_leaves_no_history_entry(
    seed_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entries are written in the load's transaction: when the load fails after writing
    them (here: right after), its rows and its entries are rolled back together."""
    written: list[int] = []

    async def record_then_fail(connection: AsyncConnection, *args: Any, **kwargs: Any) -> int:
        count = await record_loads(connection, *args, **kwargs)
        written.append(count)
        raise SeedError("the load failed after its history was written")

    monkeypatch.setattr(fake, "record_loads", record_then_fail)
    with pytest.raises(SeedError, match="after its history was written"):
        await generate_fake(seed_engine, rows=10, tables=["categories", "tags"])
    assert written == [2]
    assert set((await row_counts(seed_engine)).values()) == {0}  # no rows, no entries
    monkeypatch.undo()

    # a load refused half-way (products need categories) leaves none either
    with pytest.raises(SeedError, match="cannot fake products"):
        await generate_fake(seed_engine, rows=5, tables=["tags", "products"])
    assert await history(seed_engine) == []


async def test_the_row_version_is_the_servers_not_the_seed_sets(
    seed_engine: AsyncEngine, other_engine: AsyncEngine, tmp_path: Path
) -> None:
    """A dump carries no row_version (the database numbers each row's changes itself), and a
    load inserts rows without one: every loaded row starts at version 1."""
    await load_set(seed_engine, DEMO)
    await generate_fake(seed_engine, rows=5, random_seed=6)
    products = seed_table("products").table
    async with seed_engine.begin() as connection:
        await connection.execute(products.update().values({VERSION_COLUMN: 7}))
    dumped = tmp_path / "dumped"
    await dump_set(seed_engine, dumped)
    for path in sorted(dumped.glob("*.yaml")):
        for row in yaml.safe_load(path.read_text()):
            assert VERSION_COLUMN not in row, path.name

    assert await row_versions(seed_engine) == {1, 7}
    report = await load_set(other_engine, dumped)
    assert report.tables["products"].created == 35
    assert await row_versions(other_engine) == {1}
