"""Schemas derived from the tables: the one validation the API, admin and seeds share."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from backend.crud.schemas import derive_schemas
from backend.models import Product, Tag
from backend.registry import registry

PRODUCTS = derive_schemas(registry.get("products"))


def errors(schema: type, payload: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        schema.model_validate(payload)  # type: ignore[attr-defined]
    return {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}


def test_create_excludes_primary_key_and_server_managed_fields() -> None:
    fields = set(PRODUCTS.create.model_fields)
    assert {"id", "created_at", "updated_at"}.isdisjoint(fields)
    assert {"sku", "price", "category_id", "tag_ids"} <= fields


def test_create_keeps_the_tables_constraints() -> None:
    base = {"sku": "A-1", "name": "Lamp", "price": "9.99", "category_id": 1}
    assert PRODUCTS.create.model_validate(base).price == Decimal("9.99")  # type: ignore[attr-defined]
    assert "price" in errors(PRODUCTS.create, {**base, "price": "-1"})
    assert "price" in errors(PRODUCTS.create, {**base, "price": "1.234"})
    assert "stock" in errors(PRODUCTS.create, {**base, "stock": -2})
    assert "sku" in errors(PRODUCTS.create, {**base, "sku": "x" * 65})
    assert errors(PRODUCTS.create, {**base, "colour": "red"}) == {
        "colour": "Extra inputs are not permitted"
    }


def test_datetimes_must_be_timezone_aware() -> None:
    orders = derive_schemas(registry.get("orders"))
    payload = {"customer_id": 1, "reference": "R-1", "placed_at": "2024-05-01T10:00:00"}
    assert "placed_at" in errors(orders.create, payload)
    assert "status" in errors(orders.create, {**payload, "status": "lost"})


def test_update_is_partial_and_refuses_null_for_required_columns() -> None:
    update = PRODUCTS.update
    assert update.model_validate({"price": "3"}).model_dump(exclude_unset=True) == {
        "price": Decimal("3")
    }
    assert "name" in errors(update, {"name": None})
    assert update.model_validate({"description": None}).model_dump(exclude_unset=True) == {
        "description": None
    }


def test_read_lists_many_to_many_ids() -> None:
    product = Product(id=7, sku="S", name="N", price=Decimal(1), category_id=1)
    product.tags = [Tag(id=3, name="b"), Tag(id=1, name="a")]
    assert PRODUCTS.read.model_validate(product).tag_ids == [1, 3]  # type: ignore[attr-defined]


def test_users_never_show_the_password_hash() -> None:
    users = derive_schemas(registry.get("users"))
    assert "hashed_password" not in users.read.model_fields
    assert "password" in users.create.model_fields


def test_category_slugs_must_be_url_safe() -> None:
    categories = derive_schemas(registry.get("categories"))
    assert "slug" in errors(categories.create, {"name": "Desk lamps", "slug": "Desk Lamps"})
    categories.create.model_validate({"name": "Desk lamps", "slug": "desk-lamps"})
