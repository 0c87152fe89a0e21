"""How each registered table appears in a seed set: load order, references and natural keys.

A row never carries ids. A foreign-key column `<name>_id` is written as `<name>`, holding the
referenced row's natural key: a scalar when that key is one column (`category: lamps`), a
mapping when it has several (`order: {customer: alice@example.com, reference: ORD-0001}`),
itself written the same way. A many-to-many relationship is a list of the other side's keys
(`tags: [desk, led]`). A reference to the same table (a tree's `parent`) is written the same
way and may name a row later in the same file.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import Column, Table
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.schema import sort_tables

from backend.crud.schemas import derive_schemas
from backend.registry import (
    SERVER_MANAGED,
    ResourceOptions,
    client_chosen_primary_key,
    data_columns,
    registry,
)
from backend.seeding.format import SeedError, describe_value

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Reference:
    """A foreign-key column, written in seed files as the referenced row's natural key."""

    field: str  # "category"
    column: str  # "category_id"
    target: str  # resource name of the referenced table, "categories"


@dataclass(frozen=True)
class Link:
    """A many-to-many relationship, written as a list of the other side's natural keys."""

    field: str  # "tags"
    schema_field: str  # "tag_ids" in the derived schemas
    target: str  # "tags"
    table: Table  # product_tags
    local_column: str  # product_id
    remote_column: str  # tag_id


@dataclass(frozen=True, eq=False)
class SeedTable:
    """One registered table as seeding sees it."""

    resource: ResourceOptions
    references: tuple[Reference, ...]
    links: tuple[Link, ...]

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def table(self) -> Table:
        return self.resource.table

    @property
    def primary_key(self) -> str:
        return self.resource.primary_key

    @property
    def natural_key(self) -> tuple[str, ...]:
        return self.resource.natural_key

    @property
    def create_schema(self) -> type[BaseModel]:
        return derive_schemas(self.resource).create

    @cached_property
    def self_references(self) -> tuple[Reference, ...]:
        """References to rows of this same table (a tree's `parent`)."""
        return tuple(r for r in self.references if r.target == self.name)

    @cached_property
    def writes_primary_key(self) -> bool:
        """Whether seed files carry the primary key: only when the client chooses it (a code)."""
        return client_chosen_primary_key(self.table)

    @cached_property
    def ordered_by_primary_key(self) -> bool:
        """Whether primary-key order is insertion order (a database-assigned integer), so that a
        dump keeps the order rows were created in; other tables are dumped by natural key."""
        column = self.table.c[self.primary_key]
        return not self.writes_primary_key and column.default is None

    def reference_for_column(self, column: str) -> Reference | None:
        return next((r for r in self.references if r.column == column), None)

    def reference_for_field(self, field: str) -> Reference | None:
        return next((r for r in self.references if r.field == field), None)

    def link_for_field(self, field: str) -> Link | None:
        return next((link for link in self.links if link.field == field), None)

    def seed_field(self, column: str) -> str:
        """The name a column goes by in seed files."""
        reference = self.reference_for_column(column)
        return reference.field if reference else column

    @cached_property
    def natural_key_fields(self) -> tuple[str, ...]:
        return tuple(self.seed_field(column) for column in self.natural_key)

    @cached_property
    def timestamp_columns(self) -> tuple[str, ...]:
        """Server-managed times: optional in seed files, so that a dump reloads exactly."""
        create = self.create_schema.model_fields
        return tuple(
            c.name for c in self.table.columns if c.name in SERVER_MANAGED and c.name not in create
        )

    @cached_property
    def seeded_columns(self) -> tuple[Column[Any], ...]:
        """The columns seed files carry - a dump writes, a load reads, `--fake` generates:
        the create schema's fields, server-managed times, a password hash; not the server's
        own bookkeeping (a row's version, a user's `auth_version`)."""
        create = self.create_schema.model_fields
        return tuple(
            c
            for c in data_columns(self.table)
            if c.name in create
            or c.name == self.primary_key
            or c.name in self.timestamp_columns
            or (self.password_columns and c.name == "hashed_password")
        )

    @cached_property
    def password_columns(self) -> bool:
        """True when the create schema takes `password` for a stored `hashed_password`."""
        return (
            "password" in self.create_schema.model_fields
            and "hashed_password" in self.table.columns
            and "hashed_password" not in self.create_schema.model_fields
        )

    def key_adapter(self, column: str) -> TypeAdapter[Any]:
        """Validates one natural-key value the way the create schema does (trims, lowers)."""
        return _key_adapter(self.resource, column)

    def unique_keys(self) -> list[tuple[str, ...]]:
        """Every set of columns the database keeps unique, the natural key first."""
        from sqlalchemy import UniqueConstraint

        keys: list[tuple[str, ...]] = [self.natural_key]
        for constraint in self.table.constraints:
            if isinstance(constraint, UniqueConstraint):
                keys.append(tuple(c.name for c in constraint.columns))
        keys += [(c.name,) for c in self.table.columns if c.unique]
        return list(dict.fromkeys(keys))


@cache
def _key_adapter(resource: ResourceOptions, column: str) -> TypeAdapter[Any]:
    schema = derive_schemas(resource).create
    info = schema.model_fields.get(column)
    if info is None:  # e.g. a key column the create schema does not take
        info = resource.model.model_fields[column]
    annotated: Any = Annotated[info.annotation, *info.metadata]
    return TypeAdapter(annotated)


def _references(
    resource: ResourceOptions, tables: Mapping[str, ResourceOptions]
) -> list[Reference]:
    references = []
    columns = set(resource.table.columns.keys())
    for foreign_key in sorted(resource.table.foreign_keys, key=lambda fk: fk.parent.name):
        column: Column[Any] = foreign_key.parent
        target_table = foreign_key.column.table.name
        if target_table not in tables:
            raise SeedError(
                f"{resource.name}.{column.name} refers to table {target_table!r}, "
                "which is not registered: seeding cannot write it"
            )
        target = tables[target_table]
        if foreign_key.column.name != target.primary_key:
            raise SeedError(
                f"{resource.name}.{column.name} refers to "
                f"{target_table}.{foreign_key.column.name}, not to its "
                f"primary key {target.primary_key!r}: seeding cannot write it"
            )
        field = column.name.removesuffix("_id")
        if field == column.name or field in columns:
            field = column.name  # no shorter name is free: keep the column's own
        references.append(Reference(field, column.name, tables[target_table].name))
    return references


def _links(resource: ResourceOptions, tables: Mapping[str, ResourceOptions]) -> list[Link]:
    links = []
    mapper = sa_inspect(resource.model)
    for schema_link in derive_schemas(resource).many_to_many:
        relationship = mapper.relationships[schema_link.relationship]
        secondary = relationship.secondary
        assert isinstance(secondary, Table)
        local = remote = None
        for foreign_key in secondary.foreign_keys:
            if foreign_key.column.table is resource.table:
                local = foreign_key.parent.name
            else:
                remote = foreign_key.parent.name
        target_table = relationship.mapper.local_table.name
        if local is None or remote is None or target_table not in tables:
            raise SeedError(f"{resource.name}.{schema_link.relationship}: cannot seed this link")
        links.append(
            Link(
                field=schema_link.relationship,
                schema_field=schema_link.field,
                target=tables[target_table].name,
                table=secondary,
                local_column=local,
                remote_column=remote,
            )
        )
    return links


@cache
def seed_tables() -> tuple[SeedTable, ...]:
    """The registered tables in dependency order: referenced tables first, and the far side
    of a many-to-many link before its owner, so that links go in after both sides."""
    by_table = {resource.table.name: resource for resource in registry}
    tables = {
        name: SeedTable(
            resource, tuple(_references(resource, by_table)), tuple(_links(resource, by_table))
        )
        for name, resource in by_table.items()
    }
    links = [
        (tables[seed_table_name(link.target)].table, table.table)
        for table in tables.values()
        for link in table.links
    ]
    ordered = sort_tables([t.table for t in tables.values()], extra_dependencies=links)
    return tuple(tables[t.name] for t in ordered)


def seed_table_name(resource_name: str) -> str:
    """The table behind the resource called `resource_name`."""
    return registry.get(resource_name).table.name


def seed_table(name: str) -> SeedTable:
    """The seed view of the resource called `name`; KeyError when there is none."""
    for table in seed_tables():
        if table.name == name:
            return table
    raise KeyError(name)


def link_tables() -> set[str]:
    """Tables written only through a many-to-many field of another table."""
    return {link.table.name for table in seed_tables() for link in table.links}


class KeyIndex:
    """Natural key <-> primary key of one table's rows, for resolving and writing references."""

    def __init__(self, table: SeedTable) -> None:
        self.table = table
        self.ids: dict[Key, Any] = {}
        self.keys: dict[Any, Key] = {}

    def add(self, key: Key, row_id: Any) -> None:
        self.ids[key] = row_id
        self.keys[row_id] = key


class KeyIndexes:
    """The KeyIndex of every table, and the translation of seed-file keys to ids and back."""

    def __init__(self) -> None:
        self.by_table: dict[str, KeyIndex] = {}

    def __getitem__(self, name: str) -> KeyIndex:
        if name not in self.by_table:
            self.by_table[name] = KeyIndex(seed_table(name))
        return self.by_table[name]

    def resolve(self, target: str, value: Any) -> Any:
        """The id of the `target` row whose natural key is written as `value`.

        Raises ValueError with a readable reason when the value is malformed or unknown.
        """
        table = seed_table(target)
        key = self.parse_key(table, value)
        row_id = self[target].ids.get(key)
        if row_id is None:
            shown = ", ".join(
                f"{f}={describe_value(v)}"
                for f, v in zip(table.natural_key_fields, key, strict=True)
            )
            raise ValueError(f"no {target} row with {shown}")
        return row_id

    def parse_key(self, table: SeedTable, value: Any) -> Key:
        """The natural-key tuple (ids for its foreign-key parts) written as `value`."""
        fields = table.natural_key_fields
        if len(fields) == 1:
            parts = {fields[0]: value}
        elif isinstance(value, Mapping):
            missing = [f for f in fields if f not in value]
            extra = [str(f) for f in value if f not in fields]
            if missing or extra:
                raise ValueError(
                    f"the {table.name} key is a mapping of {', '.join(fields)}"
                    + (f"; {', '.join(extra)} is not part of it" if extra else "")
                )
            parts = dict(value)
        else:
            raise ValueError(
                f"the {table.name} key is a mapping of {', '.join(fields)}, "
                f"not {describe_value(value)}"
            )
        key = []
        for column, field in zip(table.natural_key, fields, strict=True):
            part = parts[field]
            reference = table.reference_for_column(column)
            if reference is not None:
                key.append(self.resolve(reference.target, part))
                continue
            if isinstance(part, Mapping | list):
                raise ValueError(f"{field} must be a single value, not {describe_value(part)}")
            try:
                key.append(table.key_adapter(column).validate_python(part))
            except ValidationError as exc:
                reason = exc.errors()[0]["msg"]
                raise ValueError(f"{field} {describe_value(part)} is not valid: {reason}") from None
        return tuple(key)

    def render_key(self, target: str, row_id: Any) -> Any:
        """`row_id`'s natural key as seed files write it (scalar or mapping, ids replaced)."""
        table = seed_table(target)
        key = self[target].keys[row_id]
        rendered = []
        for column, part in zip(table.natural_key, key, strict=True):
            reference = table.reference_for_column(column)
            rendered.append(self.render_key(reference.target, part) if reference else part)
        if len(rendered) == 1:
            return rendered[0]
        return dict(zip(table.natural_key_fields, rendered, strict=True))
