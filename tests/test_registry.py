"""The registry validates per-table options at registration, naming the table and option."""

import os
import subprocess
import sys
import textwrap
import uuid

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import RelationshipDirection
from sqlmodel import Field, SQLModel

from backend.config import PROJECT_ROOT, get_settings
from backend.models import Category, HistoryEntry, Product
from backend.registry import (
    AdminOptions,
    AlreadyRegistered,
    Registry,
    RegistryError,
    client_chosen_primary_key,
    registry,
)
from tests.fixture_app.models import Bin, Currency, Node, Specimen, Warehouse


def test_every_table_of_the_models_and_apps_is_registered() -> None:
    """Each table class of backend.models and of the APPS modules is a resource, except the
    link tables of many-to-many relationships; no list of names to keep up to date."""
    modules = ("backend.models", *get_settings().apps)
    tables = {
        mapper.local_table
        for mapper in SQLModel._sa_registry.mappers
        if mapper.class_.__module__.startswith(modules)
    }
    links = {
        relationship.secondary
        for resource in registry
        for relationship in sa_inspect(resource.model).relationships
        if relationship.secondary is not None
    }
    registered = {resource.table for resource in registry}
    history = HistoryEntry.__table__  # type: ignore[attr-defined]  # the framework's own table
    assert tables - links - {history} == registered
    assert len(registry) == len({resource.name for resource in registry})
    assert {"tests.fixture_app"} <= set(get_settings().apps)  # the suite runs with the app


def test_natural_keys_default_to_unique_columns() -> None:
    assert registry.get("categories").natural_key == ("slug",)
    assert registry.get("products").natural_key == ("sku",)
    assert registry.get("orders").natural_key == ("customer_id", "reference")
    assert registry.for_model(Warehouse).natural_key == ("code", "region")


def test_a_client_chosen_primary_key_is_the_default_natural_key() -> None:
    """A string key without a default is written by the client, and identifies the row."""
    assert client_chosen_primary_key(registry.for_model(Currency).table)
    for database_chosen in (Node, Warehouse, Bin, Specimen, Category):  # serial, UUID default
        assert not client_chosen_primary_key(registry.for_model(database_chosen).table)
    assert registry.for_model(Currency).natural_key == ("code",)


def test_the_primary_key_type_follows_the_column() -> None:
    assert registry.for_model(Currency).primary_key_type is str
    assert registry.for_model(Warehouse).primary_key_type is uuid.UUID
    assert registry.for_model(Bin).primary_key_type is int
    assert registry.for_model(Node).primary_key_type is int


def test_foreign_keys_without_a_relationship_get_a_derived_one() -> None:
    """Named after the column without `_id` (or after the class), many-to-one, and to the
    same table with remote_side set; a hand-written relationship is left alone."""
    expected = {
        (Node, "parent"): Node,
        (Warehouse, "node"): Node,
        (Bin, "warehouse"): Warehouse,
        (Specimen, "bin"): Bin,
        (Specimen, "currency"): Currency,
    }
    for (model, name), target in expected.items():
        relationship = sa_inspect(model).relationships[name]
        assert relationship.mapper.class_ is target, name
        assert relationship.direction is RelationshipDirection.MANYTOONE, name
    parent = sa_inspect(Node).relationships["parent"]
    assert set(parent.remote_side) == {Node.__table__.c.id}  # type: ignore[attr-defined]
    categories = [r for r in sa_inspect(Product).relationships if r.mapper.class_ is Category]
    assert [r.key for r in categories] == ["category"]  # the hand-written one, not a second


@pytest.mark.parametrize(
    ("model", "tree", "message"),
    [
        (
            Node,
            "name",
            "fx_nodes: option 'tree' must name a foreign key of the table to itself, not 'name'",
        ),
        (Node, "ghost", "fx_nodes: option 'tree' must name a foreign key of the table to itself"),
        (
            Warehouse,
            "node_id",
            "fx_warehouses: option 'tree' must name a foreign key of the "
            "table to itself, not 'node_id'",
        ),
    ],
)
def test_tree_must_be_a_foreign_key_to_the_same_table(
    model: type[SQLModel], tree: str, message: str
) -> None:
    with pytest.raises(RegistryError) as caught:
        Registry().register(model, tree=tree)
    assert message in str(caught.value)
    assert Registry().register(Node, tree="parent_id").tree == "parent_id"


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


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter: a broken mapper would poison this process's others."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_wrong_self_relationship_is_the_models_mistake() -> None:
    """Reported at registration naming the table, with the remote_side hint; not as a
    database error from the first query."""
    result = _python(
        """
        from typing import Optional
        from sqlmodel import Field, Relationship, SQLModel
        from backend.registry import Registry, RegistryError

        class Folder(SQLModel, table=True):
            __tablename__ = "test_registry_folders"
            id: int | None = Field(default=None, primary_key=True)
            name: str = Field(unique=True)
            parent_id: int | None = Field(default=None, foreign_key="test_registry_folders.id")
            parent: Optional["Folder"] = Relationship(back_populates="children")
            children: list["Folder"] = Relationship(back_populates="parent")

        try:
            Registry().register(Folder)
        except RegistryError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    message = result.stdout.strip()
    assert message.startswith("test_registry_folders: a relationship is invalid: "), message
    assert "remote_side" in message
    assert "give sa_relationship_kwargs={'remote_side': '<Class>.id'}" in message
    assert len(message.splitlines()) == 1


def test_an_apps_module_that_cannot_be_imported_is_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from backend.cli import main; main()", "check"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "APPS": '["tests.no_such_app"]'},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "tablestack: error: APPS: cannot import 'tests.no_such_app': "
        "No module named 'tests.no_such_app'\n"
    )
