"""Seed loads write through the one write path (backend.writes): each created or changed row
leaves a history entry and a version bump in the load's transaction, a refused row - by the
write service's checks or by a table's hook - is one line naming the file, row and field, and
a failed load leaves neither rows nor entries."""

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.registry import ResourceOptions, registry
from backend.seeding import loader
from backend.seeding.format import SeedError
from backend.seeding.loader import load_set
from backend.seeding.tables import seed_table
from backend.writes.errors import refuse
from backend.writes.history import HISTORY, shown_changes
from backend.writes.hooks import Change, Hooks
from backend.writes.service import Writer, writer_for
from tests.seeding.conftest import row_counts
from tests.seeding.test_loader import edit

PRODUCTS = seed_table("products").table


async def entries(engine: AsyncEngine, resource: str | None = None) -> list[dict[str, Any]]:
    """The history entries, oldest first (of one resource when given)."""
    statement = select(HISTORY).order_by(HISTORY.c.id)
    if resource is not None:
        statement = statement.where(HISTORY.c.resource == resource)
    async with engine.connect() as connection:
        return [dict(row) for row in (await connection.execute(statement)).mappings()]


async def product(engine: AsyncEngine, sku: str) -> dict[str, Any]:
    async with engine.connect() as connection:
        result = await connection.execute(select(PRODUCTS).where(PRODUCTS.c.sku == sku))
        return dict(result.mappings().one())


async def test_a_load_leaves_one_entry_per_created_or_changed_row(
    seed_engine: AsyncEngine, demo_copy: Path
) -> None:
    report = await load_set(seed_engine, demo_copy)
    counts = await row_counts(seed_engine)
    logged = await entries(seed_engine)
    created = {name: table.created for name, table in report.tables.items()}
    assert {e["resource"] for e in logged} == set(created)
    for name, count in created.items():
        assert sum(e["resource"] == name for e in logged) == count == counts[name], name
    assert {(e["actor"], e["actor_id"], e["action"], e["version"]) for e in logged} == {
        ("seed:demo", None, "created", 1)
    }
    lamp = await product(seed_engine, "LAMP-001")
    [entry] = [e for e in logged if e["resource"] == "products" and e["row_id"] == str(lamp["id"])]
    changes = shown_changes(registry.get("products"), entry["changes"])
    assert changes["sku"] == [None, "LAMP-001"] and changes["price"] == [None, "149.00"]
    assert changes["tag_ids"][0] is None and len(changes["tag_ids"][1]) == 3
    user_entries = [e["changes"] for e in logged if e["resource"] == "users"]
    assert user_entries and all(c["hashed_password"] == "changed" for c in user_entries)

    await load_set(seed_engine, demo_copy)  # unchanged: no entry, no version bump
    assert len(await entries(seed_engine)) == len(logged)
    assert (await product(seed_engine, "LAMP-001"))["row_version"] == 1

    def reprice(rows: list[dict[str, Any]]) -> None:
        rows[0]["price"] = "155.50"
        rows[0]["tags"] = ["led"]

    edit(demo_copy / "products.yaml", reprice)
    await load_set(seed_engine, demo_copy)
    [*_, last] = await entries(seed_engine)
    assert len(await entries(seed_engine)) == len(logged) + 1
    assert (last["action"], last["actor"], last["version"]) == ("updated", "seed:demo", 2)
    assert last["row_id"] == str(lamp["id"])
    changes = shown_changes(registry.get("products"), last["changes"])
    assert set(changes) == {"price", "tag_ids"} and changes["price"] == ["149.00", "155.50"]
    assert len(changes["tag_ids"][0]) == 3 and len(changes["tag_ids"][1]) == 1
    changed = await product(seed_engine, "LAMP-001")
    assert changed["row_version"] == 2 and changed["price"] == Decimal("155.50")


async def test_a_bad_row_in_the_middle_leaves_no_rows_and_no_entries(
    seed_engine: AsyncEngine, demo_copy: Path
) -> None:
    def break_one(rows: list[dict[str, Any]]) -> None:
        rows[15]["stock"] = -3  # the database's CHECK, past the rows before it

    edit(demo_copy / "products.yaml", break_one)
    with pytest.raises(SeedError) as caught:
        await load_set(seed_engine, demo_copy)
    message = str(caught.value)
    assert (
        message.startswith(f"{demo_copy}/products.yaml row 16 (sku=") and "field stock" in message
    )
    assert "\n" not in message and "SQL" not in message and "INSERT" not in message
    assert set((await row_counts(seed_engine)).values()) == {0}  # history included


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("Arc\x00lamp", "must not contain NUL characters"),
        ("x" * 201, "at most 200 characters"),
    ],
    ids=["NUL", "oversize"],
)
async def test_an_unstorable_value_is_one_line_naming_file_row_and_field(
    seed_engine: AsyncEngine, demo_copy: Path, value: str, reason: str
) -> None:
    def spoil(rows: list[dict[str, Any]]) -> None:
        rows[2]["name"] = value

    edit(demo_copy / "products.yaml", spoil)
    with pytest.raises(SeedError) as caught:
        await load_set(seed_engine, demo_copy)
    message = str(caught.value)
    assert message.startswith(f"{demo_copy}/products.yaml row 3 (sku=LAMP-003): field name: ")
    assert reason in message
    assert "\n" not in message and "SQL" not in message and "[parameters" not in message
    assert set((await row_counts(seed_engine)).values()) == {0}


class NoClearance(Hooks):
    """Refuses products priced under 1.00, on every surface."""

    async def before_create(self, change: Change) -> None:
        price = change.values.get("price")
        if price is not None and price < Decimal("1.00"):
            raise refuse("price", "no clearance sales below 1.00")

    async def before_update(self, change: Change) -> None:
        await self.before_create(change)


def with_hooks(monkeypatch: pytest.MonkeyPatch, name: str, hooks: Hooks) -> None:
    """Make the loader write `name` through a Writer whose resource has `hooks`."""

    def writer(resource: ResourceOptions, dialect: str) -> Writer:
        if resource.name == name:
            return Writer(dataclasses.replace(resource, hooks=hooks), dialect)
        return writer_for(resource, dialect)

    monkeypatch.setattr(loader, "writer_for", writer)


async def test_a_hook_refusing_a_row_fails_the_load_naming_the_field(
    seed_engine: AsyncEngine, demo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_hooks(monkeypatch, "products", NoClearance())
    await load_set(seed_engine, demo_copy)  # every demo price passes
    before = len(await entries(seed_engine))

    def clearance(rows: list[dict[str, Any]]) -> None:
        rows[4]["price"] = "0.50"

    edit(demo_copy / "products.yaml", clearance)
    with pytest.raises(SeedError) as caught:
        await load_set(seed_engine, demo_copy)
    assert str(caught.value).startswith(f"{demo_copy}/products.yaml row 5 (sku=")
    assert str(caught.value).endswith(": field price: no clearance sales below 1.00")
    assert len(await entries(seed_engine)) == before


async def test_a_dry_run_writes_no_entries(seed_engine: AsyncEngine, demo_copy: Path) -> None:
    report = await load_set(seed_engine, demo_copy, dry_run=True)
    assert report.tables["products"].created > 0
    assert set((await row_counts(seed_engine)).values()) == {0}


class MissingCategory(Hooks):
    async def before_create(self, change: Change) -> None:
        change.values["category_id"] = 999999


async def test_a_statement_the_database_refuses_still_names_the_row(
    seed_engine: AsyncEngine, demo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes run without savepoints; on PostgreSQL a refused statement aborts the load's
    transaction, so the load is replayed with savepoints to name the row (not "current
    transaction is aborted")."""
    with_hooks(monkeypatch, "products", MissingCategory())
    with pytest.raises(SeedError) as caught:
        await load_set(seed_engine, demo_copy)
    message = str(caught.value)
    assert message.startswith(f"{demo_copy}/products.yaml row 1 (sku=LAMP-001): ")
    assert "does not exist" in message
    assert "aborted" not in message and "SQL" not in message
    assert set((await row_counts(seed_engine)).values()) == {0}


async def test_a_load_writes_without_a_savepoint_per_row(
    seed_engine: AsyncEngine, demo_copy: Path
) -> None:
    """The load owns its one transaction: each write runs in it directly (a SAVEPOINT and a
    RELEASE per row made a load of 14,000 rows 3x slower on SQLite)."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(seed_engine.sync_engine, "before_cursor_execute", seen)
    try:
        await load_set(seed_engine, demo_copy)
    finally:
        event.remove(seed_engine.sync_engine, "before_cursor_execute", seen)
    assert any(s.lstrip().upper().startswith("INSERT") for s in statements)
    assert not [s for s in statements if "SAVEPOINT" in s.upper()]
