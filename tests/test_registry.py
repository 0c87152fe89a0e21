"""The registry validates per-table options at registration, naming the table and option."""

import pytest
from sqlmodel import Field, SQLModel

from backend.models import Category, Product
from backend.registry import AdminOptions, AlreadyRegistered, Registry, RegistryError, registry


def test_every_domain_table_is_registered() -> None:
    assert [r.name for r in registry] == [
        "categories",
        "products",
        "tags",
        "customers",
        "orders",
        "order_items",
        "users",
    ]


def test_natural_keys_default_to_unique_columns() -> None:
    assert registry.get("categories").natural_key == ("slug",)
    assert registry.get("products").natural_key == ("sku",)
    assert registry.get("orders").natural_key == ("customer_id", "reference")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "red"}, "products: unknown option 'colour'"),
        ({"natural_key": ("nope",)}, "products: option 'natural_key' names unknown column 'nope'"),
        ({"natural_key": ("name",)}, "products: option 'natural_key' ('name',) is not unique"),
        ({"natural_key": "sku"}, "products: option 'natural_key' must be a tuple"),
        ({"search_fields": ("ghost",)}, "option 'search_fields' names unknown column 'ghost'"),
        (
            {"admin": AdminOptions(column_list=("id", "ghost"))},
            "products: option 'admin.column_list' names unknown column 'ghost'",
        ),
        ({"write_role": "root"}, "products: option 'write_role' must be a Role"),
        ({"name": "bad/name"}, "products: option 'name' 'bad/name' is not a URL segment"),
        ({"create_schema": dict}, "products: option 'create_schema' must be a pydantic model"),
    ],
)
def test_invalid_options_name_table_and_option(options: dict[str, object], message: str) -> None:
    with pytest.raises(RegistryError) as caught:
        Registry().register(Product, **options)
    assert message in str(caught.value)


def test_registering_twice_is_refused() -> None:
    local = Registry()
    local.register(Category)
    with pytest.raises(AlreadyRegistered, match="categories: the table is already registered"):
        local.register(Category)


def test_a_table_without_unique_column_needs_a_natural_key() -> None:
    class Note(SQLModel, table=True):
        __tablename__ = "test_registry_notes"
        id: int | None = Field(default=None, primary_key=True)
        text: str

    SQLModel.metadata.remove(Note.__table__)  # type: ignore[attr-defined]
    with pytest.raises(
        RegistryError, match="test_registry_notes: option 'natural_key' is required"
    ):
        Registry().register(Note)


def test_not_a_table() -> None:
    class Plain(SQLModel):
        x: int

    with pytest.raises(RegistryError, match="Plain: not a table model"):
        Registry().register(Plain)


def test_many_to_many_must_name_a_link_relationship() -> None:
    with pytest.raises(RegistryError, match="products: option 'many_to_many' names 'category'"):
        Registry().register(Product, many_to_many=("category",))
