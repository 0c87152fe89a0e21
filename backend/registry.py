"""The one list of exposed tables and their per-table options, validated at import.

Adding a table to the product: write the SQLModel class in `backend/models/`, register it at
the bottom of this module, then `tablestack makemigrations -m "add <table>"`.
"""

import dataclasses
import importlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, Table, UniqueConstraint, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import configure_mappers, relationship
from sqlalchemy.orm import registry as orm_registry
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from backend.auth.hooks import USER_AUTH_COLUMNS, UserHooks
from backend.auth.schemas import UserCreate, UserRead, UserUpdate
from backend.config import get_settings
from backend.models import Category, Customer, Order, OrderItem, Product, Role, Tag, User
from backend.writes.hooks import Hooks

# The version every registered row carries, bumped by the server on each change (the API's
# ETag, the admin's stale-save check). A column of the row itself, not a history lookup: an
# UPDATE ... WHERE row_version = :seen re-reads the locked row under concurrent writers, so
# two writers who saw the same version cannot both succeed.
VERSION_COLUMN = "row_version"


class RegistryError(Exception):
    """A table's registration is invalid; the message names the table and the option."""


class AlreadyRegistered(RegistryError):
    """The table, or its resource name, is registered twice."""


@dataclass(frozen=True, kw_only=True)
class AdminOptions:
    """How SQLAdmin shows one table; `None` means "derive a sensible default"."""

    column_list: tuple[str, ...] | None = None
    column_searchable_list: tuple[str, ...] | None = None
    column_sortable_list: tuple[str, ...] | None = None
    column_details_exclude_list: tuple[str, ...] = ()
    column_labels: Mapping[str, str] = field(default_factory=dict)
    form_excluded_columns: tuple[str, ...] = ()
    readonly_columns: tuple[str, ...] = ()
    icon: str | None = None
    category: str | None = None
    page_size: int = 25
    # Who may download the whole table as CSV or JSON (besides being able to read it): a bulk
    # copy is more than browsing, so by default editors and admins, as Directus makes export
    # a permission of its own. `Role.viewer` lets every reader export.
    export_role: Role = Role.editor

    def column_names(self) -> dict[str, tuple[str, ...]]:
        """Every option that names columns, by option name, for validation."""
        return {
            "admin.column_list": self.column_list or (),
            "admin.column_searchable_list": self.column_searchable_list or (),
            "admin.column_sortable_list": self.column_sortable_list or (),
            "admin.column_details_exclude_list": self.column_details_exclude_list,
            "admin.column_labels": tuple(self.column_labels),
            "admin.form_excluded_columns": self.form_excluded_columns,
            "admin.readonly_columns": self.readonly_columns,
        }


@dataclass(frozen=True, kw_only=True, eq=False)  # hashed by identity: one object per table
class ResourceOptions:
    """One registered table: its resource name and everything generated from it."""

    model: type[SQLModel]
    name: str
    label: str
    natural_key: tuple[str, ...]
    search_fields: tuple[str, ...]
    read_only_fields: tuple[str, ...]
    many_to_many: tuple[str, ...] = ()
    read_role: Role = Role.viewer
    write_role: Role = Role.editor
    delete_all: bool = False
    # A foreign key from the table to itself that forms a tree (`parent_id`): every surface
    # refuses a write that would make a row its own ancestor.
    tree: str | None = None
    create_schema: type[BaseModel] | None = None
    update_schema: type[BaseModel] | None = None
    read_schema: type[BaseModel] | None = None
    # Run by the one write path on every surface (see `backend.writes.hooks`).
    hooks: Hooks | None = None
    admin: AdminOptions = field(default_factory=AdminOptions)

    @property
    def table(self) -> Table:
        table: Table = self.model.__table__  # type: ignore[attr-defined]
        return table

    @property
    def primary_key(self) -> str:
        return self.table.primary_key.columns.values()[0].name

    @property
    def version_column(self) -> Column[Any]:
        column: Column[Any] = self.table.columns[VERSION_COLUMN]
        return column

    @property
    def primary_key_type(self) -> type:
        """The Python type of the primary key's values (int, uuid.UUID, str...)."""
        return column_python_type(self.table.columns[self.primary_key]) or str


_COLUMN_ONLY_OPTIONS = ("natural_key", "search_fields", "read_only_fields")
_OPTION_NAMES = {f.name for f in dataclasses.fields(ResourceOptions)} - {"model"}


def column_python_type(column: Column[Any]) -> type | None:
    """The Python type of a column's values (None when SQLAlchemy does not say)."""
    column_type = column.type
    try:
        python_type: type = column_type.python_type
    except NotImplementedError:
        if not isinstance(column_type, TypeDecorator):
            return None
        python_type = object
    if python_type is object and isinstance(column_type, TypeDecorator):
        # sqlmodel's AutoString reports `object`: its impl says str. (Interval, another
        # TypeDecorator, reports timedelta itself; its impl would say datetime.)
        try:
            python_type = column_type.impl_instance.python_type
        except NotImplementedError:
            return None
    return python_type


def data_columns(table: Table) -> list[Column[Any]]:
    """The table's columns that hold the row's data: all but the server's version."""
    return [c for c in table.columns if c.name != VERSION_COLUMN]


def add_version_column(table: Table) -> None:
    """Give a registered table its `row_version` column (a migration then adds it).

    Appended to the mapped table, not declared on the model: the ORM never reads or writes it
    (only `backend.writes` does) and no schema derived from the model shows it.
    """
    existing = table.columns.get(VERSION_COLUMN)
    if existing is not None:
        if existing.info.get("tablestack_version"):
            return
        raise RegistryError(
            f"{table.name}: column {VERSION_COLUMN!r} is reserved for the row's version"
        )
    column = Column(VERSION_COLUMN, BigInteger, nullable=False, server_default=text("1"))
    column.info["tablestack_version"] = True
    table.append_column(column)


def _text_columns(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if column_python_type(c) is str)


SERVER_MANAGED = ("created_at", "updated_at")


def _server_managed_columns(table: Table) -> tuple[str, ...]:
    """Columns the server maintains: creation and modification times, anything `onupdate`."""
    return tuple(
        c.name for c in table.columns if c.name in SERVER_MANAGED or c.onupdate is not None
    )


def _unique_keys(table: Table) -> list[tuple[str, ...]]:
    keys = [
        tuple(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    keys += [(c.name,) for c in table.columns if c.unique]
    return keys


def client_chosen_primary_key(table: Table) -> bool:
    """Whether the client writes the primary key (a code, a slug), rather than the database
    (an autoincrementing integer) or a Python default (a UUID) choosing it."""
    columns = list(table.primary_key.columns)
    if len(columns) != 1:
        return True
    column = columns[0]
    if column.default is not None or column.server_default is not None:
        return False
    return not (column.autoincrement in (True, "auto") and column_python_type(column) is int)


def _default_natural_key(table: Table) -> tuple[str, ...] | None:
    keys = sorted(set(_unique_keys(table)), key=lambda key: (len(key), key))
    if keys:
        return keys[0]
    if client_chosen_primary_key(table):
        return tuple(table.primary_key.columns.keys())
    return None


def _check_mappings(model: type[SQLModel]) -> None:
    """Configure the model's relationships now, so that a mistake in them is reported as the
    model's (naming the table and relationship) rather than by the first query that needs them."""
    try:
        configure_mappers()
    except SQLAlchemyError as exc:
        message = str(exc).split("\n")[0]
        if "remote_side" in message or "self-referential" in message:
            message += (
                " (for a relationship of a table to itself, give "
                "sa_relationship_kwargs={'remote_side': '<Class>.id'} on the many-to-one side)"
            )
        where = sa_inspect(model).local_table.name
        raise RegistryError(f"{where}: a relationship is invalid: {message}") from None


def derive_relationships(model: type[SQLModel]) -> None:
    """Give every foreign key that has no relationship of its own a many-to-one relationship,
    named after the column without `_id` (`parent_id` -> `parent`), so that the admin can show
    and pick the related row without a hand-written `Relationship()`."""
    mapper = sa_inspect(model)
    table = mapper.local_table
    covered = {
        column
        for relationship in mapper.relationships
        if relationship.secondary is None
        for column in relationship.local_columns
    }
    for foreign_key in sorted(table.foreign_keys, key=lambda fk: fk.parent.name):
        column = foreign_key.parent
        if column in covered or len(column.foreign_keys) != 1:
            continue
        target = _mapped_class(foreign_key.column.table, mapper.registry)
        if target is None:
            continue
        name = column.name.removesuffix("_id")
        if name == column.name:  # `currency_code` -> `currency`, after the related class
            name = re.sub(r"(?<!^)(?=[A-Z])", "_", target.__name__).lower()
        if hasattr(model, name) or name in table.columns:
            continue
        kwargs: dict[str, Any] = {"foreign_keys": [column], "lazy": "select"}
        if foreign_key.column.table is table:
            kwargs["remote_side"] = [foreign_key.column]
        mapper.add_property(name, relationship(target, **kwargs))
        covered.add(column)


def _mapped_class(table: Any, mapper_registry: orm_registry) -> type | None:
    """The class mapped to `table` in the model's mapper registry, if any."""
    for mapper in mapper_registry.mappers:
        if mapper.local_table is table:
            mapped: type = mapper.class_
            return mapped
    return None


class Registry:
    """The exposed tables, in registration order."""

    def __init__(self) -> None:
        self._by_name: dict[str, ResourceOptions] = {}

    def register(self, model: type[SQLModel], **options: Any) -> ResourceOptions:
        """Expose `model`; raise RegistryError naming the table and option when invalid."""
        table: Table | None = getattr(model, "__table__", None)
        if table is None:
            raise RegistryError(f"{model.__name__}: not a table model (declare it table=True)")
        where = table.name
        unknown = sorted(set(options) - _OPTION_NAMES)
        if unknown:
            raise RegistryError(
                f"{where}: unknown option {unknown[0]!r}; known options: "
                + ", ".join(sorted(_OPTION_NAMES))
            )
        if any(r.model is model for r in self._by_name.values()):
            raise AlreadyRegistered(f"{where}: the table is already registered")
        options.setdefault("name", table.name)
        options.setdefault("label", table.name.replace("_", " ").capitalize())
        options.setdefault("search_fields", _text_columns(table))
        options.setdefault("read_only_fields", _server_managed_columns(table))
        if "natural_key" not in options:
            natural_key = _default_natural_key(table)
            if natural_key is None:
                raise RegistryError(
                    f"{where}: option 'natural_key' is required: the table has no unique "
                    "column or constraint to default to"
                )
            options["natural_key"] = natural_key
        for key in ("natural_key", "search_fields", "read_only_fields", "many_to_many"):
            options.setdefault(key, ())
            if isinstance(options[key], str):
                raise RegistryError(f"{where}: option {key!r} must be a tuple of column names")
            options[key] = tuple(options[key])
        try:
            resource = ResourceOptions(model=model, **options)
        except TypeError as exc:
            raise RegistryError(f"{where}: {exc}") from None
        _check_mappings(model)
        derive_relationships(model)
        self._validate(resource)
        if resource.name in self._by_name:
            raise AlreadyRegistered(f"{where}: resource name {resource.name!r} is already taken")
        add_version_column(table)
        self._by_name[resource.name] = resource
        return resource

    def _validate(self, resource: ResourceOptions) -> None:
        where = resource.table.name
        columns = set(resource.table.columns.keys())
        relationships = set(resource.model.__sqlmodel_relationships__)
        named: dict[str, tuple[str, ...]] = {
            "natural_key": resource.natural_key,
            "search_fields": resource.search_fields,
            "read_only_fields": resource.read_only_fields,
            **resource.admin.column_names(),
        }
        for option, names in named.items():
            allowed = columns if option in _COLUMN_ONLY_OPTIONS else columns | relationships
            for name in names:
                if name not in allowed:
                    raise RegistryError(f"{where}: option {option!r} names unknown column {name!r}")
        mapper = sa_inspect(resource.model)
        for name in resource.many_to_many:
            relationship = mapper.relationships.get(name)
            if relationship is None or relationship.secondary is None:
                raise RegistryError(
                    f"{where}: option 'many_to_many' names {name!r}, which is not a "
                    "many-to-many relationship (declare it with link_model=...)"
                )
        if not resource.natural_key:
            raise RegistryError(f"{where}: option 'natural_key' must name at least one column")
        unique = {frozenset(key) for key in _unique_keys(resource.table)}
        unique.add(frozenset(resource.table.primary_key.columns.keys()))
        if not any(key <= set(resource.natural_key) for key in unique):
            raise RegistryError(
                f"{where}: option 'natural_key' {resource.natural_key} is not unique: "
                "add a unique constraint over those columns"
            )
        for option in ("read_role", "write_role"):
            if not isinstance(getattr(resource, option), Role):
                raise RegistryError(f"{where}: option {option!r} must be a Role")
        if not resource.name.replace("_", "").replace("-", "").isalnum():
            raise RegistryError(f"{where}: option 'name' {resource.name!r} is not a URL segment")
        if resource.tree is not None:
            column = resource.table.columns.get(resource.tree)
            if column is None or not any(
                fk.column.table is resource.table for fk in column.foreign_keys
            ):
                raise RegistryError(
                    f"{where}: option 'tree' must name a foreign key of the table to itself, "
                    f"not {resource.tree!r}"
                )
        if resource.hooks is not None and not isinstance(resource.hooks, Hooks):
            raise RegistryError(
                f"{where}: option 'hooks' must be an instance of a Hooks subclass "
                "(backend.writes.hooks.Hooks)"
            )
        if resource.admin.page_size < 1:
            raise RegistryError(f"{where}: option 'admin.page_size' must be at least 1")
        if not isinstance(resource.admin.export_role, Role):
            raise RegistryError(f"{where}: option 'admin.export_role' must be a Role")
        for option in ("create_schema", "update_schema", "read_schema"):
            schema = getattr(resource, option)
            if schema is not None and not (
                isinstance(schema, type) and issubclass(schema, BaseModel)
            ):
                raise RegistryError(f"{where}: option {option!r} must be a pydantic model class")

    def __iter__(self) -> Iterator[ResourceOptions]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> ResourceOptions:
        """The resource called `name`; KeyError if none is."""
        return self._by_name[name]

    def for_model(self, model: type[SQLModel]) -> ResourceOptions:
        """The resource registered for `model`; KeyError if none is."""
        for resource in self._by_name.values():
            if resource.model is model:
                return resource
        raise KeyError(model.__name__)


registry = Registry()

registry.register(
    Category,
    admin=AdminOptions(icon="fa-solid fa-folder-tree", category="Catalog"),
)
registry.register(
    Product,
    many_to_many=("tags",),
    admin=AdminOptions(
        column_list=("id", "sku", "name", "price", "stock", "is_active", "category"),
        column_searchable_list=("sku", "name"),
        column_labels={"sku": "SKU", "is_active": "Active"},
        readonly_columns=("created_at", "updated_at"),
        icon="fa-solid fa-box",
        category="Catalog",
    ),
)
registry.register(Tag, admin=AdminOptions(icon="fa-solid fa-tag", category="Catalog"))
registry.register(
    Customer,
    admin=AdminOptions(
        column_list=("id", "email", "name", "phone", "created_at"),
        icon="fa-solid fa-user",
        category="Sales",
    ),
)
registry.register(
    Order,
    admin=AdminOptions(
        column_list=("id", "reference", "customer", "status", "placed_at"),
        icon="fa-solid fa-cart-shopping",
        category="Sales",
    ),
)
registry.register(
    OrderItem,
    label="Order items",
    admin=AdminOptions(icon="fa-solid fa-list", category="Sales"),
)
registry.register(
    User,
    read_role=Role.admin,
    write_role=Role.admin,
    search_fields=("email", "full_name"),
    create_schema=UserCreate,
    update_schema=UserUpdate,
    read_schema=UserRead,
    hooks=UserHooks(),  # there is always an active admin
    admin=AdminOptions(
        column_list=("id", "email", "full_name", "role", "is_active", "created_at"),
        column_details_exclude_list=("hashed_password", *USER_AUTH_COLUMNS),
        form_excluded_columns=("hashed_password", "created_at", *USER_AUTH_COLUMNS),
        icon="fa-solid fa-user-shield",
        category="Administration",
    ),
)


def import_apps(modules: list[str]) -> None:
    """Import the modules of the `APPS` setting: each defines and registers its own tables."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise RegistryError(f"APPS: cannot import {module!r}: {exc}") from None


import_apps(get_settings().apps)
