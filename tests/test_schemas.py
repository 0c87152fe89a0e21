"""Schemas derived from the tables: the one validation the API, admin and seeds share."""

import re
import typing
from decimal import Decimal

import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter, ValidationError

from backend.crud.schemas import derive_replace_schema, derive_schemas, primary_key_parameter
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


def test_bytes_are_base64_text_in_json_and_bytes_in_python() -> None:
    specimens = derive_schemas(registry.get("fx_specimens"))
    field = {"photo": b"\x00\xff\x80raw"}
    update = specimens.update
    # From JSON (the API): base64 text, decoded; from Python (admin, seeds): bytes as they are.
    assert update.model_validate({"photo": "AP+AcmF3"}).photo == field["photo"]  # type: ignore[attr-defined]
    assert update.model_validate(field).photo == field["photo"]  # type: ignore[attr-defined]
    assert update.model_validate_json('{"photo": "AP+AcmF3"}').photo == field["photo"]  # type: ignore[attr-defined]
    assert "photo" in errors(update, {"photo": "not base64!"})
    assert "photo" in errors(update, {"photo": "AP+AcmF"})  # padding missing
    dumped = update.model_validate(field)
    assert dumped.model_dump_json(exclude_unset=True) == '{"photo":"AP+AcmF3"}'
    assert dumped.model_dump(exclude_unset=True) == field
    schema = update.model_json_schema()["properties"]["photo"]["anyOf"][0]
    assert schema["format"] == "base64" and schema["contentEncoding"] == "base64"
    assert re.fullmatch(schema["pattern"], "AP+AcmF3")
    assert not re.fullmatch(schema["pattern"], "AP+AcmF")
    # The Read schema writes the same text (the API's orjson path is compared with it).
    read: typing.Any = specimens.read.model_fields["photo"].annotation
    assert TypeAdapter(read).dump_json(field["photo"]) == b'"AP+AcmF3"'


def test_a_put_may_send_back_a_key_the_client_chose() -> None:
    """The key names the row: PUT accepts it (optional, ignored), as it does an `id`."""
    for name in ("fx_currencies", "fx_warehouses", "products"):
        resource = registry.get(name)
        replace = derive_replace_schema(resource)
        pk = resource.primary_key
        assert not replace.model_fields[pk].is_required(), name
    currencies = derive_schemas(registry.get("fx_currencies"))
    assert currencies.create.model_fields["code"].is_required()  # written on create


def test_the_id_path_parameter_follows_the_primary_key() -> None:
    def parameter_schema(name: str) -> dict[str, object]:
        annotation = primary_key_parameter(registry.get(name))
        app = FastAPI()

        @app.get("/{id}")
        def route(id: annotation) -> None:  # type: ignore[valid-type]
            return None

        (parameter,) = app.openapi()["paths"]["/{id}"]["get"]["parameters"]
        schema: dict[str, object] = parameter["schema"]
        return schema

    assert parameter_schema("fx_bins")["maximum"] == 2**63 - 1
    assert parameter_schema("products")["maximum"] == 2**31 - 1
    assert parameter_schema("fx_warehouses")["format"] == "uuid"
    code = parameter_schema("fx_currencies")
    assert (code["type"], code["pattern"], code["maxLength"]) == ("string", "^[A-Z]{3}$", 3)
