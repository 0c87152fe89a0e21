"""A resource's rows as its Read schema shows them, read and written with Core statements.

The generated routes answer from plain rows, not ORM objects: SQLAlchemy Core statements
(compiled once, then served from the compiled cache) select exactly the Read schema's columns,
many-to-many ids come from one query per page, and the JSON is written by orjson from the
rows. Nothing the database just returned is validated again: for a derived Read schema its
fields are the columns themselves, and orjson writes Decimal, datetime and enum values exactly
as pydantic does (`tests/api/test_rows.py` compares the two for every resource). A Read schema
given in the registry (`read_schema=`) still shapes its output through pydantic.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import Column, Select, Table, bindparam, exists, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from starlette.responses import Response

from backend.crud.schemas import ManyToMany, derive_schemas
from backend.registry import ResourceOptions

JSON_OPTIONS = orjson.OPT_UTC_Z  # pydantic writes UTC as `Z`, not `+00:00`


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # as pydantic: a string, digits as stored
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dump_json(content: Any) -> bytes:
    """JSON bytes as pydantic writes them (Decimal as a string, UTC datetimes ending in Z)."""
    return orjson.dumps(content, default=_json_default, option=JSON_OPTIONS)


class JSONBytesResponse(Response):
    """A response whose body is JSON already encoded (FastAPI leaves a Response alone)."""

    media_type = "application/json"


@dataclass(frozen=True)
class LinkTable:
    """A many-to-many relationship as its link table: `product_tags(product_id, tag_id)`."""

    field: str  # tag_ids
    table: Table  # product_tags
    owner: Column[Any]  # product_tags.product_id -> the resource's primary key
    target: Column[Any]  # product_tags.tag_id -> the related row's primary key
    target_table: Table  # tags
    target_pk: Column[Any]  # tags.id


def link_table(resource: ResourceOptions, link: ManyToMany) -> LinkTable:
    """The link table behind a registered many-to-many relationship."""
    relationship = sa_inspect(resource.model).relationships[link.relationship]
    secondary = relationship.secondary
    if not isinstance(secondary, Table):
        raise TypeError(f"{resource.name}.{link.relationship}: not a link-table relationship")
    (_, owner), *_ = relationship.synchronize_pairs
    (target_pk, target), *_ = relationship.secondary_synchronize_pairs
    return LinkTable(
        field=link.field,
        table=secondary,
        owner=owner,
        target=target,
        target_table=target_pk.table,
        target_pk=target_pk,
    )


def has_linked(resource: ResourceOptions, link: ManyToMany, ids: list[Any]) -> ColumnElement[bool]:
    """Rows linked to any of `ids` (an EXISTS over the link table)."""
    table = link_table(resource, link)
    pk = resource.table.columns[resource.primary_key]
    condition: ColumnElement[bool] = exists(
        select(table.owner).where(table.owner == pk, table.target.in_(ids))
    )
    return condition


class RowShape:
    """How one resource's rows are selected, completed with link ids and written as JSON."""

    def __init__(self, resource: ResourceOptions) -> None:
        schemas = derive_schemas(resource)
        table = resource.table
        fields = schemas.read.model_fields
        self.read: type[BaseModel] = schemas.read
        self.pk: Column[Any] = table.columns[resource.primary_key]
        self.columns: tuple[Column[Any], ...] = tuple(
            table.columns[name] for name in fields if name in table.columns
        )
        self.names = tuple(column.name for column in self.columns)
        self.links = tuple(
            link_table(resource, link) for link in schemas.many_to_many if link.field in fields
        )
        # A Read schema from the registry may rename, compute or hide: let pydantic shape it.
        self._adapter: TypeAdapter[list[Any]] | None = (
            TypeAdapter(list[schemas.read])  # type: ignore[name-defined]
            if resource.read_schema is not None
            else None
        )
        self.select_one = self.select().where(self.pk == bindparam("item_id"))
        self._link_selects = tuple(
            select(link.owner, link.target)
            .where(link.owner.in_(bindparam("ids", expanding=True)))
            .order_by(link.owner, link.target)
            for link in self.links
        )

    def select(self, *extra: ColumnElement[Any]) -> Select[Any]:
        """SELECT the Read schema's columns (and `extra` after them)."""
        return select(*self.columns, *extra)

    def record(self, row: Row[Any] | Sequence[Any]) -> dict[str, Any]:
        """One row as a dict of the Read schema's column fields, in its order."""
        return dict(zip(self.names, row, strict=False))

    async def records(
        self, connection: AsyncConnection, rows: Iterable[Row[Any] | Sequence[Any]]
    ) -> list[dict[str, Any]]:
        """Rows as records, with every `<name>_ids` list from one query per link for all."""
        records = [self.record(row) for row in rows]
        if self.links and records:
            ids = [record[self.pk.name] for record in records]
            for link, statement in zip(self.links, self._link_selects, strict=True):
                found: dict[Any, list[Any]] = {}
                for owner, target in await connection.execute(statement, {"ids": ids}):
                    found.setdefault(owner, []).append(target)
                for record in records:
                    record[link.field] = found.get(record[self.pk.name], [])
        return records

    async def get(self, connection: AsyncConnection, item_id: Any) -> dict[str, Any] | None:
        """One record by primary key, None when there is no such row."""
        row = (await connection.execute(self.select_one, {"item_id": item_id})).first()
        if row is None:
            return None
        return (await self.records(connection, [row]))[0]

    def json(self, content: dict[str, Any] | list[dict[str, Any]]) -> bytes:
        """The JSON of one record or a list of them, as the Read schema shows them."""
        if self._adapter is None:
            return dump_json(content)
        if isinstance(content, list):
            return self._adapter.dump_json([self.read.model_validate(r) for r in content])
        return self.read.model_validate(content).model_dump_json().encode()

    def response(
        self,
        content: dict[str, Any] | list[dict[str, Any]],
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return JSONBytesResponse(self.json(content), status_code=status_code, headers=headers)


@cache
def row_shape(resource: ResourceOptions) -> RowShape:
    """The RowShape of a resource (built once)."""
    return RowShape(resource)
