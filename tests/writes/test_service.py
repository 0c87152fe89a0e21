"""The write service on both databases: versions, history in the same transaction, hooks,
and errors that name the field (never SQL)."""

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from backend.crud.connection import Connection
from backend.crud.schemas import derive_schemas
from backend.registry import registry
from backend.writes.actor import CLI, Actor
from backend.writes.errors import RowNotFound, StillReferenced, VersionMismatch, WriteError, refuse
from backend.writes.history import HISTORY, changed_fields_since, shown_changes
from backend.writes.hooks import Change, Hooks
from backend.writes.service import Writer

MOMENT = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


@pytest.fixture
async def db(app: FastAPI) -> AsyncIterator[Connection]:
    async with app.state.database.api_connection() as connection:
        yield connection


def writer(name: str, backend: str, **changes: Any) -> Writer:
    resource = registry.get(name)
    if changes:
        resource = dataclasses.replace(resource, **changes)
    return Writer(resource, backend, clock=lambda: MOMENT)


async def entries(db: Connection, resource: str, row_id: Any) -> list[dict[str, Any]]:
    statement = (
        select(HISTORY)
        .where(HISTORY.c.resource == resource, HISTORY.c.row_id == str(row_id))
        .order_by(HISTORY.c.id)
    )
    return [dict(zip(HISTORY.columns.keys(), row, strict=True)) for row in await db.all(statement)]


def validated(resource: str, /, **values: Any) -> dict[str, Any]:
    """`values` through the resource's Create schema, as every surface passes them."""
    schema = derive_schemas(registry.get(resource)).create
    return schema.model_validate(values).model_dump()


async def category(db: Connection, backend: str, name: str = "Lamps") -> Any:
    values = validated("categories", name=name, slug=name.lower())
    return (await writer("categories", backend).create(db, values, CLI)).row_id


async def product(db: Connection, backend: str, **values: Any) -> Any:
    category_id = await category(db, backend, f"c-{values.get('sku', 'X')}")
    payload = validated(
        "products",
        **{
            "sku": "LMP-1",
            "name": "Desk lamp",
            "price": Decimal("12.50"),
            "stock": 3,
            "category_id": category_id,
            **values,
        },
    )
    return await writer("products", backend).create(db, payload, Actor("ann@example.com", 7))


async def test_create_update_delete_leave_versions_and_history(
    db: Connection, backend: str
) -> None:
    created = await product(db, backend)
    assert created.version == 1
    assert created.record["sku"] == "LMP-1"
    [entry] = await entries(db, "products", created.row_id)
    assert (entry["action"], entry["actor"], entry["actor_id"]) == ("created", "ann@example.com", 7)
    assert entry["version"] == 1 and entry["at"] == MOMENT
    changes = shown_changes(registry.get("products"), entry["changes"])
    assert changes["price"] == [None, "12.50"] and changes["sku"] == [None, "LMP-1"]

    products = writer("products", backend)
    updated = await products.update(
        db, created.row_id, {"price": Decimal("14.00"), "name": "Desk lamp"}, CLI
    )
    assert updated.version == 2 and updated.record["price"] == Decimal("14.00")
    entry = (await entries(db, "products", created.row_id))[-1]
    assert entry["action"] == "updated" and entry["actor"] == "cli" and entry["version"] == 2
    # only what changed: the name was written unchanged
    assert shown_changes(registry.get("products"), entry["changes"]) == {
        "price": ["12.50", "14.00"]
    }

    deleted = await products.delete(db, created.row_id, CLI, expected_version=2)
    assert deleted.version == 2 and deleted.record["price"] == Decimal("14.00")
    entry = (await entries(db, "products", created.row_id))[-1]
    assert entry["action"] == "deleted" and entry["version"] == 2
    assert shown_changes(registry.get("products"), entry["changes"])["price"] == ["14.00", None]
    with pytest.raises(RowNotFound):
        await products.update(db, created.row_id, {"stock": 1}, CLI)


async def test_a_stale_version_is_refused_and_leaves_no_entry(db: Connection, backend: str) -> None:
    created = await product(db, backend)
    products = writer("products", backend)
    await products.update(db, created.row_id, {"stock": 4}, CLI, expected_version=1)
    with pytest.raises(VersionMismatch) as caught:
        await products.update(db, created.row_id, {"stock": 5}, CLI, expected_version=1)
    assert (caught.value.expected, caught.value.current) == (1, 2)
    with pytest.raises(VersionMismatch):
        await products.delete(db, created.row_id, CLI, expected_version=1)
    assert [e["action"] for e in await entries(db, "products", created.row_id)] == [
        "created",
        "updated",
    ]


@pytest.mark.parametrize("value", ["nul\x00here", "x" * 201])
async def test_unstorable_text_names_the_field(db: Connection, backend: str, value: str) -> None:
    created = await product(db, backend)
    with pytest.raises(WriteError) as caught:
        await writer("products", backend).update(db, created.row_id, {"name": value}, CLI)
    [problem] = caught.value.problems
    assert problem.field == "name" and problem.kind == "invalid"
    assert "SQL" not in problem.message and "INSERT" not in problem.message
    assert len(await entries(db, "products", created.row_id)) == 1


async def test_database_refusals_name_the_field_and_leave_no_entry(
    db: Connection, backend: str
) -> None:
    first = await product(db, backend, sku="A-1")
    again = validated(
        "products", sku="A-1", name="Lamp", price="1", category_id=first.record["category_id"]
    )
    with pytest.raises(WriteError) as caught:
        await writer("products", backend).create(db, again, CLI)
    assert caught.value.problems[0].field == "sku" and caught.value.problems[0].kind == "unique"
    with pytest.raises(WriteError) as caught:
        await writer("products", backend).update(db, first.row_id, {"category_id": 999999}, CLI)
    problem = caught.value.problems[0]
    assert (problem.field, problem.kind) == ("category_id", "foreign_key")
    count = await db.scalar(select(HISTORY.c.id).where(HISTORY.c.resource == "products").limit(9))
    assert count is not None
    assert [e["action"] for e in await entries(db, "products", first.row_id)] == ["created"]


async def test_a_referenced_row_is_not_deleted(db: Connection, backend: str) -> None:
    created = await product(db, backend)
    category_id = created.record["category_id"]
    with pytest.raises(StillReferenced) as caught:
        await writer("categories", backend).delete(db, category_id, CLI)
    assert caught.value.referenced_by == ("products.category_id",)
    assert [e["action"] for e in await entries(db, "categories", category_id)] == ["created"]


class PaidOrders(Hooks):
    """An order's `placed_at` set on its first change to paid; cancelling a paid order refused."""

    async def before_update(self, change: Change) -> None:
        assert change.before is not None
        if change.values.get("status") == "paid" and change.before["status"] != "paid":
            change.values["placed_at"] = change.at
        if change.values.get("status") == "cancelled" and change.before["status"] == "paid":
            raise refuse("status", "a paid order cannot be cancelled")


async def test_hooks_change_values_and_refuse(db: Connection, backend: str) -> None:
    customers = writer("customers", backend)
    customer = await customers.create(
        db, validated("customers", email="bo@example.com", name="Bo"), CLI
    )
    orders = writer("orders", backend, hooks=PaidOrders())
    order = await orders.create(
        db,
        validated("orders", reference="ORD-9", customer_id=customer.row_id, status="pending"),
        CLI,
    )
    paid = await orders.update(db, order.row_id, {"status": "paid"}, CLI)
    assert paid.record["placed_at"] == MOMENT
    with pytest.raises(WriteError) as caught:
        await orders.update(db, order.row_id, {"status": "cancelled"}, CLI)
    assert caught.value.problems[0].field == "status"
    assert caught.value.problems[0].kind == "refused"
    actions = [e["action"] for e in await entries(db, "orders", order.row_id)]
    assert actions == ["created", "updated"]


async def test_links_and_passwords_in_history(db: Connection, backend: str) -> None:
    tags = writer("tags", backend)
    lamp = await tags.create(db, validated("tags", name="lamp"), CLI)
    desk = await tags.create(db, validated("tags", name="desk"), CLI)
    created = await product(db, backend, tag_ids=[lamp.row_id])
    assert created.record["tag_ids"] == [lamp.row_id]
    updated = await writer("products", backend).update(
        db, created.row_id, {"tag_ids": [desk.row_id, lamp.row_id]}, CLI
    )
    assert updated.record["tag_ids"] == sorted([lamp.row_id, desk.row_id])
    entry = (await entries(db, "products", created.row_id))[-1]
    assert entry["changes"] == {"tag_ids": [[lamp.row_id], sorted([lamp.row_id, desk.row_id])]}

    users = writer("users", backend)
    user = await users.create(
        db, validated("users", email="cy@example.com", password="correct horse battery"), CLI
    )
    await users.update(db, user.row_id, {"password": "another long secret"}, CLI)
    for entry in await entries(db, "users", user.row_id):
        assert entry["changes"]["hashed_password"] == "changed"
        assert "argon2" not in str(entry["changes"])


async def test_unknown_rows(db: Connection, backend: str) -> None:
    with pytest.raises(RowNotFound):
        await writer("products", backend).delete(db, 987654, CLI)
    with pytest.raises(RowNotFound):
        await writer("products", backend).update(db, 987654, {"stock": 1}, CLI)
    assert await db.scalar(select(HISTORY.c.id).where(HISTORY.c.row_id == "987654")) is None


async def test_changes_since_a_version_are_the_rows_own(db: Connection, backend: str) -> None:
    """SQLite gives a deleted row's id to the next row: its entries are not the new row's."""
    first = await product(db, backend, sku="R-1")
    products = writer("products", backend)
    await products.update(db, first.row_id, {"stock": 9}, CLI)
    await products.update(db, first.row_id, {"name": "Old name"}, CLI)
    await products.delete(db, first.row_id, CLI)
    values = validated(
        "products", sku="R-2", name="New", price="2", category_id=first.record["category_id"]
    )
    again = await products.create(db, values, CLI)
    await products.update(db, again.row_id, {"price": Decimal("3")}, CLI)
    assert await changed_fields_since(db, "products", again.row_id, 1) == ["price"]
