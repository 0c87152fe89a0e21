"""Loading seed sets: idempotent upserts by natural key, precise errors, nothing half-written."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.auth.passwords import verify_password
from backend.db import metadata
from backend.seeding import loader
from backend.seeding.format import SeedError
from backend.seeding.loader import load_set
from backend.seeding.tables import SeedTable, seed_table
from tests.seeding.conftest import DEMO, row_counts, snapshot

DEMO_PASSWORD = "tablestack-demo"  # documented in README.md
USERS = seed_table("users").table


def edit(path: Path, change: Any) -> None:
    """Apply `change` to the parsed rows of a seed file and write it back."""
    rows = yaml.safe_load(path.read_text())
    change(rows)
    path.write_text(yaml.safe_dump(rows, sort_keys=False))


async def test_demo_set_loads_in_dependency_order(seed_engine: AsyncEngine) -> None:
    report = await load_set(seed_engine, DEMO)
    assert list(report.tables) == [
        "categories", "tags", "customers", "users", "products", "orders", "order_items",
    ]  # fmt: skip
    counts = await row_counts(seed_engine)
    assert counts["products"] == 30
    assert counts["order_items"] == report.tables["order_items"].created > 0
    assert counts["product_tags"] == report.tables["products"].links_added > 0
    products, categories, tags_table, links, users = (
        metadata.tables[name]
        for name in ("products", "categories", "tags", "product_tags", "users")
    )
    async with seed_engine.connect() as connection:
        lamp = (
            await connection.execute(select(products).where(products.c.sku == "LAMP-001"))
        ).one()
        slug = await connection.scalar(
            select(categories.c.slug).where(categories.c.id == lamp.category_id)
        )
        tags = await connection.scalars(
            select(tags_table.c.name).join(links).where(links.c.product_id == lamp.id)
        )
        admin = (
            await connection.execute(select(users).where(users.c.email == "admin@example.com"))
        ).one()
    assert slug == "lamps"
    assert sorted(tags) == ["bestseller", "dimmable", "led"]
    assert lamp.price == Decimal("149.00")
    assert admin.role == "admin"
    assert verify_password(DEMO_PASSWORD, admin.hashed_password)


async def test_loading_twice_changes_nothing(seed_engine: AsyncEngine) -> None:
    await load_set(seed_engine, DEMO)
    before = await snapshot(seed_engine)
    report = await load_set(seed_engine, DEMO)
    assert not report.changed
    assert all(t.unchanged > 0 and not t.created for t in report.tables.values())
    assert await snapshot(seed_engine) == before  # same ids, timestamps, password hashes


async def test_a_changed_value_updates_that_row_only(
    seed_engine: AsyncEngine, demo_copy: Path
) -> None:
    await load_set(seed_engine, demo_copy)
    before = await snapshot(seed_engine)

    def reprice(rows: list[dict[str, Any]]) -> None:
        rows[0]["price"] = "155.50"
        rows[0]["tags"] = ["led", "new"]
        rows[0]["category"] = "accessories"

    edit(demo_copy / "products.yaml", reprice)
    report = await load_set(seed_engine, demo_copy)
    products = report.tables["products"]
    assert (products.created, products.updated, products.unchanged) == (0, 1, 29)
    assert (products.links_added, products.links_removed) == (1, 2)
    assert not report.tables["categories"].updated
    after = await snapshot(seed_engine)
    assert {name: len(rows) for name, rows in after.items()} == {
        name: len(rows) - (name == "product_tags") for name, rows in before.items()
    }
    changed = [
        (old, new)
        for old, new in zip(before["products"], after["products"], strict=True)
        if old != new
    ]
    assert len(changed) == 1
    old, new = (dict(row) for row in changed[0])
    assert old["id"] == new["id"] and old["sku"] == new["sku"] == "LAMP-001"
    assert new["price"] == Decimal("155.50")
    assert new["updated_at"] > old["updated_at"]
    assert {k for k in new if new[k] != old[k]} == {"price", "category_id", "updated_at"}


async def test_a_changed_password_is_rehashed_and_unchanged_one_is_kept(
    seed_engine: AsyncEngine, demo_copy: Path
) -> None:
    await load_set(seed_engine, demo_copy)

    def new_password(rows: list[dict[str, Any]]) -> None:
        rows[0]["password"] = "a-brand-new-password"

    edit(demo_copy / "users.yaml", new_password)
    report = await load_set(seed_engine, demo_copy)
    assert (report.tables["users"].updated, report.tables["users"].unchanged) == (1, 1)
    async with seed_engine.connect() as connection:
        hashed = await connection.scalar(
            select(USERS.c.hashed_password).where(USERS.c.email == "admin@example.com")
        )
    assert hashed is not None and verify_password("a-brand-new-password", hashed)


async def test_dry_run_validates_but_writes_nothing(seed_engine: AsyncEngine) -> None:
    report = await load_set(seed_engine, DEMO, dry_run=True)
    assert report.dry_run and report.tables["products"].created == 30
    assert set((await row_counts(seed_engine)).values()) == {0}


def _set_row(file: str, index: int, **fields: Any) -> Any:
    def change(rows: list[dict[str, Any]]) -> None:
        rows[index].update(fields)

    return file, change


def _append_row(file: str, row: dict[str, Any]) -> Any:
    return file, lambda rows: rows.append(row)


BROKEN = {
    "bad value": (
        _set_row("products.yaml", 2, price=-3),
        "products.yaml row 3 (sku=LAMP-003): field price: "
        "Input should be greater than or equal to 0",
    ),
    "unknown field": (
        _set_row("categories.yaml", 1, colour="red"),
        "categories.yaml row 2 (slug=desks): field colour: Extra inputs are not permitted",
    ),
    "the server's row version": (
        _set_row("products.yaml", 0, row_version=3),
        "products.yaml row 1 (sku=LAMP-001): field row_version: Extra inputs are not permitted",
    ),
    "unknown reference": (
        _set_row("products.yaml", 4, category="sofas"),
        "products.yaml row 5 (sku=LAMP-005): field category: no categories row with slug=sofas",
    ),
    "unknown composite reference": (
        _set_row("order_items.yaml", 0, order={"customer": "alice@example.com", "reference": "X"}),
        "order_items.yaml row 1 (order={customer: alice@example.com, reference: X}, "
        "product=DESK-001): field order: no orders row with customer=",
    ),
    "unknown tag": (
        _set_row("products.yaml", 0, tags=["led", "glitter"]),
        "products.yaml row 1 (sku=LAMP-001): field tags[1]: no tags row with name=glitter",
    ),
    "an id instead of a natural key": (
        _set_row("products.yaml", 1, category_id=1),
        "products.yaml row 2 (sku=LAMP-002): field category_id: seed files carry no ids: "
        "write category: followed by the categories row's slug",
    ),
    "duplicate natural key": (
        _append_row("tags.yaml", {"name": "led"}),
        "tags.yaml row 12 (name=led): same natural key (name) as row 1",
    ),
    "missing required field": (
        _append_row("customers.yaml", {"email": "zoe@example.com"}),
        "customers.yaml row 9 (email=zoe@example.com): field name: Field required",
    ),
    "bad enum": (
        _set_row("orders.yaml", 3, status="lost"),
        "orders.yaml row 4 (customer=bob@example.com, reference=ORD-0002): field status: "
        "Input should be 'pending', 'paid', 'shipped' or 'cancelled'",
    ),
    "naive datetime": (
        _set_row("orders.yaml", 0, placed_at="2026-01-01T10:00:00"),
        "orders.yaml row 1 (customer=alice@example.com, reference=ORD-0001): field placed_at: "
        "Input should have timezone info",
    ),
    "weak password": (
        _set_row("users.yaml", 0, password="short"),
        "users.yaml row 1 (email=admin@example.com): field password: "
        "String should have at least 8 characters",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
async def test_a_broken_row_aborts_the_whole_load(
    seed_engine: AsyncEngine, demo_copy: Path, case: str
) -> None:
    await load_set(seed_engine, DEMO)
    # change something early in the load, so a half-written load would show
    edit(demo_copy / "categories.yaml", lambda rows: rows[0].update(name="Lighting"))
    edit(demo_copy / "tags.yaml", lambda rows: rows.append({"name": "brand-new"}))
    before = await snapshot(seed_engine)
    (file, change), message = BROKEN[case]
    edit(demo_copy / file, change)
    with pytest.raises(SeedError) as caught:
        await load_set(seed_engine, demo_copy)
    assert str(caught.value).startswith(f"{demo_copy}/{message}")
    assert "\n" not in str(caught.value)
    assert await snapshot(seed_engine) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- name: a\n  - b: [\n", "tags.yaml line 2 column 3: malformed YAML"),
        ("name: led\n", "tags.yaml: expected a list of rows"),
        ("- just a string\n", "tags.yaml row 1: expected a mapping of field: value"),
    ],
)
async def test_malformed_files_are_named(
    seed_engine: AsyncEngine, demo_copy: Path, content: str, message: str
) -> None:
    (demo_copy / "tags.yaml").write_text(content)
    with pytest.raises(SeedError, match=message.replace("[", r"\[")):
        await load_set(seed_engine, demo_copy)
    assert set((await row_counts(seed_engine)).values()) == {0}


async def test_unknown_and_link_table_files_are_refused(
    seed_engine: AsyncEngine, demo_copy: Path
) -> None:
    (demo_copy / "widgets.yaml").write_text("- name: x\n")
    with pytest.raises(SeedError, match="widgets.yaml: no registered table 'widgets'"):
        await load_set(seed_engine, demo_copy)
    (demo_copy / "widgets.yaml").rename(demo_copy / "product_tags.yaml")
    with pytest.raises(SeedError, match="written through products.yaml, as each row's 'tags'"):
        await load_set(seed_engine, demo_copy)


async def test_a_database_constraint_the_schema_misses_names_the_row(
    seed_engine: AsyncEngine, demo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is the last line: a CHECK the schema does not mirror still names the row."""
    products = seed_table("products")
    lenient = _without_price_bound(products)
    original = loader._seed_schema
    monkeypatch.setattr(loader, "_seed_schema", lambda t: lenient if t is products else original(t))
    await load_set(seed_engine, DEMO)
    before = await snapshot(seed_engine)
    edit(demo_copy / "products.yaml", lambda rows: rows.append({**rows[0], "sku": "NEW-1"}))
    edit(demo_copy / "products.yaml", lambda rows: rows.append({**rows[1], "sku": "NEW-2"}))
    edit(demo_copy / "products.yaml", lambda rows: rows[-1].update(price=-1))
    with pytest.raises(SeedError) as caught:
        await load_set(seed_engine, demo_copy)
    assert "products.yaml row 32 (sku=NEW-2): field price: price violates the rule" in str(
        caught.value
    )
    assert await snapshot(seed_engine) == before


def _without_price_bound(table: SeedTable) -> type[BaseModel]:
    from pydantic import create_model

    return create_model("LenientProduct", __base__=table.create_schema, price=(Decimal, ...))
