"""Integrity errors name the table, the fields and the constraint on both backends."""

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import insert

from backend.integrity import Violation, describe_integrity_error
from backend.models import Category, Product


async def violation_of(connection: AsyncConnection, statement: Any) -> Violation:
    savepoint = await connection.begin_nested()
    with pytest.raises(IntegrityError) as caught:
        await connection.execute(statement)
    await savepoint.rollback()
    return describe_integrity_error(caught.value)


async def test_unique_check_and_foreign_key(connection: AsyncConnection) -> None:
    await connection.execute(insert(Category).values(id=1, name="Lamps", slug="lamps"))
    row = {"sku": "L-1", "name": "Lamp", "price": Decimal("5"), "category_id": 1, "stock": 0}
    await connection.execute(insert(Product).values(**row, is_active=True))

    unique = await violation_of(connection, insert(Product).values(**row, is_active=True))
    assert (unique.kind, unique.table, unique.fields) == ("unique", "products", ("sku",))
    assert "sku must be unique" in unique.message()

    check = await violation_of(
        connection,
        insert(Product).values(**{**row, "sku": "L-2", "price": Decimal("-1")}, is_active=True),
    )
    assert check.kind == "check"
    assert check.fields == ("price",)
    assert check.constraint == "ck_products_price_non_negative"

    missing = await violation_of(
        connection,
        insert(Product).values(**{**row, "sku": "L-3", "category_id": 999}, is_active=True),
    )
    assert missing.kind == "foreign_key"
