"""A resource's rows as its Read schema shows them, read and written with Core statements.

The generated routes answer from plain rows, not ORM objects: SQLAlchemy Core statements
(compiled once, then served from the compiled cache) select exactly the Read schema's columns,
many-to-many ids come along in the same query (a correlated subquery per link), and orjson
writes the JSON from the rows. Nothing the database just returned is validated again: for a
derived Read schema its fields are the columns themselves, and orjson writes every column type
exactly as pydantic writes the Read schema (`tests/api/test_rows.py` compares the two for every
column of every resource): what orjson does not write itself (Decimal, UUIDs of the driver's
own class, timedelta, bytes) goes through `_json_default`, which costs nothing for the values
orjson writes natively. A Read schema given in the registry (`read_schema=`) still shapes its
output through pydantic, and so does a row holding a value of a type `_json_default` does not
know: the encoder never fails where pydantic would succeed.
"""

import base64
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_jsonable_python
from sqlalchemy import Column, Select, Table, bindparam, exists, func, literal_column, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement
from starlette.responses import Response

from backend.crud.schemas import ManyToMany, derive_schemas
from backend.registry import ResourceOptions, column_python_type

JSON_OPTIONS = orjson.OPT_UTC_Z  # pydantic writes UTC as `Z`, not `+00:00`


_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def _json_default(value: Any) -> Any:
    """What orjson does not write itself, as pydantic writes it in JSON."""
    if isinstance(value, Decimal):
        return str(value)  # as pydantic: a string, digits as stored
    if isinstance(value, uuid.UUID):  # asyncpg's own UUID class (orjson takes only uuid.UUID)
        return str(value)
    if isinstance(value, timedelta):
        return _DURATION.dump_python(value, mode="json")  # ISO 8601: "P1DT2H", "-PT1S"
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")  # as the schemas' Base64Data
    return to_jsonable_python(value)  # raises for what pydantic cannot write either


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
    """How one resource's rows are selected (with their link ids) and written as JSON."""

    def __init__(self, resource: ResourceOptions, dialect: str) -> None:
        schemas = derive_schemas(resource)
        table = resource.table
        fields = schemas.read.model_fields
        self.read: type[BaseModel] = schemas.read
        self.pk: Column[Any] = table.columns[resource.primary_key]
        self.columns: tuple[Column[Any], ...] = tuple(
            table.columns[name] for name in fields if name in table.columns
        )
        self.column_names = tuple(column.name for column in self.columns)
        self.links = tuple(
            link_table(resource, link) for link in schemas.many_to_many if link.field in fields
        )
        self._json_links = dialect == "sqlite"
        # Each row brings its link ids along: a correlated subquery per link, so a page (or one
        # row) is one query, not one more per link.
        # On PostgreSQL the ids come sorted, and `{}` rather than NULL for none: the rows need
        # no Python per link; SQLite's JSON text is decoded and sorted in `record`.
        self.link_columns = tuple(
            select(
                func.json_group_array(link.target)
                if self._json_links
                else func.coalesce(
                    func.array_agg(aggregate_order_by(link.target, link.target)),
                    literal_column("'{}'"),
                )
            )
            .where(link.owner == self.pk)
            .correlate(table)
            .scalar_subquery()
            for link in self.links
        )
        self.names = self.column_names + tuple(link.field for link in self.links)
        # orjson 3.13 drops the leading zero of microseconds below 100000 in a time of day
        # ("01:02:03.97245"); datetimes are right. Times are written as pydantic writes them.
        self._times = tuple(c.name for c in self.columns if column_python_type(c) is time)
        # A Read schema from the registry may rename, compute or hide: let pydantic shape it.
        self._shaped_by_pydantic = resource.read_schema is not None
        self._adapter: TypeAdapter[list[Any]] = TypeAdapter(list[schemas.read])  # type: ignore[name-defined]
        self.select_one = self.select().where(self.pk == bindparam("item_id"))

    @property
    def selected(self) -> tuple[ColumnElement[Any], ...]:
        """The Read schema's columns, then one subquery per link."""
        return (*self.columns, *self.link_columns)

    def select(self, *extra: ColumnElement[Any]) -> Select[Any]:
        """SELECT the Read schema's columns and links (and `extra` after them)."""
        return select(*self.selected, *extra)

    def record(self, row: Row[Any] | Sequence[Any], *, links: bool = True) -> dict[str, Any]:
        """A row of `selected` (or of `columns` only) as a dict in the Read schema's order."""
        record = dict(zip(self.names if links else self.column_names, row, strict=False))
        for name in self._times:
            value = record[name]
            if value is not None:
                record[name] = value.isoformat()
        if links and self._json_links:
            for link in self.links:
                ids = orjson.loads(record[link.field])
                record[link.field] = sorted(ids) if ids else []
        return record

    def records(self, rows: Iterable[Row[Any] | Sequence[Any]]) -> list[dict[str, Any]]:
        return [self.record(row) for row in rows]

    def json(self, content: dict[str, Any] | list[dict[str, Any]]) -> bytes:
        """The JSON of one record or a list of them, as the Read schema shows them."""
        if not self._shaped_by_pydantic:
            try:
                return dump_json(content)
            except orjson.JSONEncodeError:
                pass  # a value of a type only the Read schema knows how to write
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
def row_shape(resource: ResourceOptions, dialect: str) -> RowShape:
    """The RowShape of a resource on a database dialect (built once)."""
    return RowShape(resource, dialect)
