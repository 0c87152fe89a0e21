"""The README's hooks example works as written, on both databases."""

import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI

from backend.config import PROJECT_ROOT
from backend.crud.connection import Connection
from backend.crud.schemas import derive_schemas
from backend.registry import registry
from backend.writes.actor import CLI
from backend.writes.errors import WriteError
from backend.writes.service import Writer

MOMENT = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def readme_hooks() -> Any:
    """The OrderHooks class of the README's ```python block, defined as pasted."""
    text = (PROJECT_ROOT / "README.md").read_text()
    [block] = [b for b in re.findall(r"```python\n(.*?)```", text, re.DOTALL) if "Hooks)" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["OrderHooks"]


@pytest.fixture
async def db(app: FastAPI) -> AsyncIterator[Connection]:
    async with app.state.database.api_connection() as connection:
        yield connection


def validated(resource: str, /, **values: Any) -> dict[str, Any]:
    return derive_schemas(registry.get(resource)).create.model_validate(values).model_dump()


async def test_the_readme_hook_stamps_paid_orders_and_keeps_shipped_ones(
    db: Connection, backend: str
) -> None:
    hooked = dataclasses.replace(registry.get("orders"), hooks=readme_hooks()())
    orders = Writer(hooked, backend, clock=lambda: MOMENT)
    customers = Writer(registry.get("customers"), backend)
    customer = await customers.create(
        db, validated("customers", email="h@example.com", name="H"), CLI
    )
    order = await orders.create(
        db, validated("orders", customer_id=customer.row_id, reference="R-1"), CLI
    )
    assert order.record["placed_at"] != MOMENT
    paid = await orders.update(db, order.row_id, {"status": "paid"}, CLI)
    assert paid.record["placed_at"] == MOMENT
    await orders.update(db, order.row_id, {"status": "shipped"}, CLI)
    with pytest.raises(WriteError) as caught:
        await orders.update(db, order.row_id, {"status": "pending"}, CLI)
    assert caught.value.problems[0].field == "status"
    assert "shipped order" in caught.value.problems[0].message
