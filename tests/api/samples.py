"""Values that exercise each column type: not defaults, not nulls, not plain ASCII.

The encoding and driver tests (`test_rows.py`, `test_direct_path.py`, `test_any_key.py`) need,
for every column of every registered table, a value that would show a difference between two
ways of writing or reading it: a Decimal with a trailing zero, a datetime in another zone, a
negative duration, bytes that are not text, nested JSON with non-ASCII keys. The values follow
the field's type and constraints (bounds, lengths, decimal places, patterns - the latter drawn
by hypothesis, deterministically), so they are valid for the derived schemas.

`variant` picks one of several distinct values per type; a running counter keeps text unique.
"""

import enum
import itertools
import types
import typing
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from httpx import AsyncClient
from hypothesis import Phase, find, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import Column

from backend.crud.schemas import derive_schemas, integer_bounds
from backend.registry import ResourceOptions, column_python_type, registry

_counter = itertools.count(1)
_POOL = 200
_DRAWN = settings(database=None, derandomize=True, phases=[Phase.generate], max_examples=200)


def unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, nullable) of `X | None`; `Annotated[X, ...]` gives X."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        inner, _ = unwrap(args[0])
        return inner, len(args) < len(typing.get_args(annotation))
    if origin is typing.Annotated:
        return unwrap(typing.get_args(annotation)[0])
    return annotation, False


def _first(metadata: list[Any], attribute: str) -> Any:
    return next((getattr(m, attribute) for m in metadata if hasattr(m, attribute)), None)


@cache
def _matching(pattern: str, shortest: int, longest: int) -> list[str]:
    """Distinct strings that fully match `pattern`, within the lengths (the same every run)."""
    text = st.from_regex(pattern, fullmatch=True).filter(lambda s: shortest <= len(s) <= longest)
    strings = st.lists(text, min_size=_POOL, max_size=_POOL, unique=True)
    drawn: list[str] = find(strings, lambda _: True, settings=_DRAWN)
    return drawn


def text_value(metadata: list[Any], column: Column[Any] | None, variant: int) -> str:
    """A unique string within the field's lengths and pattern."""
    n = next(_counter)
    longest = _first(metadata, "max_length") or getattr(getattr(column, "type", None), "length", 0)
    longest = longest or 200
    shortest = _first(metadata, "min_length") or 0
    pattern = _first(metadata, "pattern")
    if pattern is not None:
        pool = _matching(pattern, shortest, longest)
        return pool[n % len(pool)]
    value = f'{n}-{variant} Ünïcödé ‘quoted’ "q" \\ ✓ {"x" * 40}'[:longest]
    return value.ljust(shortest, "x")


def number_bounds(metadata: list[Any], column: Column[Any] | None) -> tuple[Any, Any]:
    """The lowest and highest value the field allows (inclusive, roughly for floats)."""
    low: Any
    high: Any
    low, high = (None, None) if column is None else integer_bounds(column)
    for item in metadata:
        if isinstance(item, Ge):
            low = item.ge
        elif isinstance(item, Gt):
            low = item.gt + 1  # type: ignore[operator]
        elif isinstance(item, Le):
            high = item.le
        elif isinstance(item, Lt):
            high = item.lt - 1  # type: ignore[operator]
    return low, high


def sample_value(
    name: str, annotation: Any, metadata: list[Any], column: Column[Any] | None, variant: int
) -> Any:
    """A Python value for a field of this type and constraints (valid for its schema)."""
    inner, _ = unwrap(annotation)
    if column is not None and inner is Any:
        inner = column_python_type(column) or Any
    type_name = getattr(inner, "__name__", "")
    if "email" in name or type_name in ("EmailStr", "NameEmail"):
        return f"sample-{next(_counter)}-{variant}@example.com"
    if inner is bool:
        return variant % 2 == 0
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        members = list(inner)
        return members[-1 - variant % len(members)]
    if inner is int:
        low, high = number_bounds(metadata, column)
        start = 0 if low is None else max(low, 0)
        value = start + 1234 + variant
        return value if high is None else min(value, high)
    if inner is float:
        low, high = number_bounds(metadata, column)
        value = (1234.5625, -0.015625, 1e-7)[variant % 3]
        if (low is not None and value < low) or (high is not None and value > high):
            value = float(low if low is not None else 0) + 0.5
        return value
    if inner is Decimal:
        places = _first(metadata, "decimal_places") or 2
        digits = _first(metadata, "max_digits") or 10
        whole = "9876"[: max(1, min(digits - places, 4 - variant % 3))]
        fraction = ("12" + "0" * places)[:places]  # a trailing zero, kept as stored
        return Decimal(f"{whole}.{fraction}" if places else whole)
    if inner is datetime or type_name == "AwareDatetime":
        zone = timezone(timedelta(hours=5, minutes=30) * (1 if variant % 2 else -1))
        return datetime(2024, 2, 29, 23, 59, 58, 654321, tzinfo=zone) + timedelta(days=variant)
    if inner is date:
        return date(1999, 12, 31) + timedelta(days=variant)
    if inner is time:
        # Microseconds below 100000: orjson 3.13 drops their leading zero ("01:02:03.97245").
        return time(23, 59, 58, 97245 - variant)
    if inner is timedelta:
        return (
            timedelta(days=400, seconds=3723, microseconds=5),
            timedelta(days=-3, seconds=5, microseconds=7),
            timedelta(microseconds=1),
        )[variant % 3]
    if inner is uuid.UUID:
        return uuid.UUID(int=0x1234_5678_9ABC_DEF0_0FED_CBA9_8765_4321 + variant)
    if inner is bytes:
        return bytes([0, 255, 10, 13, variant]) + "ünï".encode() + b"\x80"
    if inner is str or type_name == "str":
        return text_value(metadata, column, variant)
    origin = typing.get_origin(inner)
    if inner is dict or origin is dict:
        return {"ünï": [1, 2.5, None, True, {"deep": "✓"}], "empty": {}, "n": variant}
    if inner is list or origin is list:
        (item,) = typing.get_args(inner) or (Any,)
        if item is str:
            return ["ä ö", "", f"q\"'{variant}"]
        return [1, "two", None, {"a": [3.5]}, variant]
    raise NotImplementedError(f"no sample value for {name}: {annotation!r}")


def _references(resource: ResourceOptions) -> dict[str, Column[Any]]:
    """Each foreign-key column, with the column it refers to."""
    return {
        column.name: next(iter(column.foreign_keys)).column
        for column in resource.table.columns
        if column.foreign_keys
    }


class FullRows:
    """Rows of any resource created through the API with every field set (`sample_value`),
    referenced rows created first; a nullable reference back to a table already on the way
    (a tree's parent's parent) is left empty."""

    def __init__(self, client: AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    async def values(
        self,
        name: str,
        variant: int = 0,
        *,
        schema: type[BaseModel] | None = None,
        chain: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Python values for every field of `schema` (the Create schema by default)."""
        resource = registry.get(name)
        schemas = derive_schemas(resource)
        fields = (schema or schemas.create).model_fields
        references = _references(resource)
        links = {link.field: link.target.__tablename__ for link in schemas.many_to_many}
        values: dict[str, Any] = {}
        for field, info in fields.items():
            column = resource.table.columns.get(field)
            if field in references:
                target = references[field]
                if target.table.name in chain and column is not None and column.nullable:
                    values[field] = None  # the row on the way refers back: end the chain
                    continue
                created = await self.create(target.table.name, chain=(*chain, name))
                values[field] = created[target.name]
            elif field in links:
                created = await self.create(str(links[field]), chain=(*chain, name))
                values[field] = [created["id"]]
            elif field in resource.table.columns or field in schemas.create.model_fields:
                values[field] = sample_value(field, info.annotation, info.metadata, column, variant)
        return values

    async def body(
        self, name: str, variant: int = 0, *, schema: type[BaseModel] | None = None
    ) -> dict[str, Any]:
        """The JSON body of those values, as a client sends it."""
        resource = registry.get(name)
        shape = schema or derive_schemas(resource).create
        values = await self.values(name, variant, schema=shape)
        body: dict[str, Any] = shape.model_validate(values).model_dump(
            mode="json", exclude_unset=True
        )
        return body

    async def create(
        self, name: str, variant: int = 0, *, chain: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """POST a row with every field set; the record as the API shows it."""
        resource = registry.get(name)
        create = derive_schemas(resource).create
        values = await self.values(name, variant, chain=chain)
        body = create.model_validate(values).model_dump(mode="json")
        response = await self.client.post(f"/api/{name}", json=body, headers=self.headers)
        assert response.status_code == 201, (name, body, response.text)
        record: dict[str, Any] = response.json()
        return record
