"""List parameters: filters, search, sorting and pagination, parsed into SQLAlchemy clauses.

Two dialects share one route:
- plain query parameters: `price__gte=10&id__in=1,2,3&q=lamp&sort=-price,name&skip=0&limit=25`;
- react-admin's "simple REST": `filter={"q":"lamp","id":[1,2]}&sort=["price","DESC"]&range=[0,24]`.

Only columns the read schema shows can be filtered or sorted on (so `users.hashed_password`
cannot be probed). Values are parsed with the column's type; whatever is wrong becomes a
FastAPI-shaped 422 naming the parameter. Values always travel as bound parameters.

What each kind of column offers (the same on both databases, unless said otherwise):
- text: every operator, `like`/`ilike` included;
- numbers, dates, times, datetimes, durations, UUIDs: comparisons, `in`, `isnull`;
- booleans: `eq`, `ne`, `in`, `isnull`;
- enums: `eq`, `ne`, `in`, `isnull`; sorted in the order the members are declared (PostgreSQL's
  order for a native enum, a CASE over the stored labels elsewhere);
- JSON, arrays and bytes: `isnull`; on PostgreSQL also `contains` (JSONB `@>` a JSON value, or
  ARRAY `@>` a list) and, for JSON, `has_key` (JSONB `?`). They cannot be sorted on.
"""

import enum
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    ARRAY,
    JSON,
    Column,
    Enum,
    Interval,
    LargeBinary,
    Numeric,
    String,
    and_,
    case,
    cast,
    false,
    literal,
    literal_column,
    or_,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.types import TypeDecorator, TypeEngine

from backend.crud.rows import has_linked
from backend.crud.schemas import (
    INT32_BOUNDS,
    NO_NUL_PATTERN,
    ManyToMany,
    derive_schemas,
    integer_bounds,
)
from backend.registry import ResourceOptions, column_python_type

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "like", "ilike", "isnull")
COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "isnull")
POSTGRES_ONLY = ("contains", "has_key")
RESERVED = ("skip", "limit", "sort", "range", "filter", "q")
MAX_IN_VALUES = 1000
DEFAULT_MAX_JSON_DEPTH = 32  # the default of the MAX_JSON_DEPTH setting


class ParameterError(Exception):
    """One parameter value is wrong; `loc` says where, the message says why."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


def check_text(value: str) -> str:
    """Refuse text no database can store: NUL characters and unpaired surrogates."""
    if "\x00" in value:
        raise ParameterError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ParameterError("must be valid UTF-8 text") from None
    return value


_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_EMPTY_PAIR = re.compile(r"\[\]|\{\}")


def load_json(raw: str, max_depth: int) -> Any:
    """`raw` parsed as JSON, refused (ParameterError) when nested deeper than `max_depth`.

    Python's parser recurses once per level: a value nested a few thousand levels deep raised
    RecursionError (a 500), and one nested a few hundred deep recursed again in every step
    after it. The depth is measured before parsing, at C speed: text with no more brackets
    than `max_depth` cannot be deeper; otherwise, with strings taken out, each round removes
    the innermost empty pairs, one level per round.
    """
    if raw.count("[") + raw.count("{") > max_depth:
        brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", raw))
        for _ in range(max_depth):
            brackets = _EMPTY_PAIR.sub("", brackets)
            if not brackets:
                break
        else:
            raise ParameterError(f"must be valid JSON nested at most {max_depth} levels deep")
    return json.loads(raw)


_DIALECTS: dict[str, Dialect] = {
    "postgresql": postgresql.dialect(),  # type: ignore[no-untyped-call]
    "sqlite": sqlite.dialect(),
}


def _types(column_type: TypeEngine[Any]) -> tuple[TypeEngine[Any], ...]:
    """A column type and, for a TypeDecorator, the type it stores as."""
    if isinstance(column_type, TypeDecorator):
        return (column_type, column_type.impl_instance)
    return (column_type,)


@cache
def column_kind(column: Column[Any], dialect: str) -> str:
    """How `column` can be filtered and sorted on `dialect`: "text", "enum", "json", "array",
    "bytes" or "scalar" (numbers, booleans, dates, times, durations, UUIDs)."""
    types = _types(column.type.dialect_impl(_DIALECTS[dialect])) + _types(column.type)
    for column_type in types:
        if isinstance(column_type, ARRAY):
            return "array"
        if isinstance(column_type, JSON):
            return "json"
        if isinstance(column_type, LargeBinary):
            return "bytes"
        if isinstance(column_type, Enum):
            return "enum"
    if value_type(column) is str:
        return "text"
    return "scalar"


def value_type(column: Column[Any]) -> type:
    """The Python type of the column's values, as a filter value is parsed."""
    if isinstance(column.type, Interval):  # a TypeDecorator storing as DATETIME on SQLite
        return timedelta
    if isinstance(column.type, Enum) and column.type.enum_class is not None:
        enum_class: type = column.type.enum_class
        return enum_class
    python_type = column_python_type(column)
    return str if python_type is None or python_type is object else python_type


@dataclass(frozen=True)
class FieldSpec:
    """A filterable field: a column, or a many-to-many `<name>_ids` list."""

    name: str
    python_type: type
    column: Column[Any] | None = None
    nullable: bool = False
    bounds: tuple[int, int] | None = None
    link: ManyToMany | None = None

    @property
    def is_text(self) -> bool:
        return self.python_type is str and (self.column is None or self.kind("sqlite") == "text")

    def kind(self, dialect: str) -> str:
        """See `column_kind`; "link" for a many-to-many list."""
        if self.column is None:
            return "link"
        return column_kind(self.column, dialect)

    @property
    def operators(self) -> tuple[str, ...]:
        """Every operator of the field on some database (see `operators_on`)."""
        return self.operators_on("postgresql")

    def operators_on(self, dialect: str) -> tuple[str, ...]:
        """The operators the field takes on `dialect`."""
        kind = self.kind(dialect)
        if kind == "link":
            return ("eq", "in")
        if kind == "text":
            return OPERATORS
        if kind == "enum" or self.python_type is bool:  # unordered (or two-valued)
            return ("eq", "ne", "in", "isnull")
        if kind == "scalar":
            return COMPARISONS
        if dialect != "postgresql":
            return ("isnull",)
        if kind == "json":
            return ("isnull", "contains", "has_key")
        if kind == "array":
            return ("isnull", "contains")
        return ("isnull",)

    @property
    def sortable(self) -> bool:
        """Whether lists can be sorted on the field (not on links, JSON, arrays or bytes)."""
        return self.column is not None and all(
            self.kind(dialect) in ("text", "enum", "scalar") for dialect in _DIALECTS
        )

    def sort_key(self, dialect: str) -> ColumnElement[Any]:
        """What ORDER BY sorts on: the column; for an enum, its members' declaration order."""
        column = self.column
        assert column is not None
        column_type = column.type
        if not isinstance(column_type, Enum) or self.kind(dialect) != "enum":
            return column
        if column_type.native_enum and dialect == "postgresql":
            return column  # PostgreSQL orders an enum type by its declared labels
        positions: dict[Any, Any] = {
            literal(label, String()): literal_column(str(position))
            for position, label in enumerate(column_type.enums)
        }
        return case(positions, value=column)

    def bind(self, raw: Any) -> Any:
        """`raw` parsed, as a value to compare the column with.

        Decimals are bound as plain NUMERIC: PostgreSQL would otherwise cast the parameter to
        the column's NUMERIC(p, s), rounding it (price = 1.234 matching 1.23) or overflowing.
        """
        value = self.parse(raw)
        if isinstance(value, Decimal):
            return literal(value, Numeric(asdecimal=True))
        return value

    def parse(self, raw: Any) -> Any:
        """`raw` (query text or a JSON value) as a value of this field's type."""
        if isinstance(raw, str):
            check_text(raw)
        if self.is_text:
            if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
                raise ParameterError("must be text")
            return str(raw)
        column_type = None if self.column is None else self.column.type
        if isinstance(column_type, Enum) and column_type.enum_class is None:  # Enum("a", "b")
            labels = column_type.enums
            if raw not in labels:
                raise ParameterError(f"must be one of {', '.join(labels)}")
            return raw
        if issubclass(self.python_type, enum.Enum):
            for member in self.python_type:
                if raw == member.value or (isinstance(raw, str) and raw == str(member.value)):
                    return member
            allowed = ", ".join(str(member.value) for member in self.python_type)
            raise ParameterError(f"must be one of {allowed}")
        if isinstance(raw, bool) and self.python_type is not bool:
            raise ParameterError(f"must be a {_TYPE_NAMES.get(self.python_type, 'value')}")
        if self.python_type in _TEMPORAL and (not isinstance(raw, str) or _NUMBER.fullmatch(raw)):
            # pydantic reads a number as seconds since 1970 (`created_at=0`); the document
            # says ISO 8601 text, as a body's strict validation takes it
            name = _TYPE_NAMES[self.python_type]
            raise ParameterError(f"must be a {name} written as ISO 8601 text, not a number")
        if self.python_type is time and not _TIME.fullmatch(raw):
            raise ParameterError("must be a time of day as HH:MM:SS[.ffffff], without a timezone")
        if self.python_type is Decimal and isinstance(raw, str) and not _DECIMAL.fullmatch(raw):
            raise ParameterError(
                f"must be a decimal written as text matching {DECIMAL_FILTER_PATTERN}, "
                'e.g. "19.90" (no exponent, no spaces)'
            )
        try:
            value = _adapter(self.python_type).validate_python(raw)
        except ValidationError as exc:
            raise ParameterError(exc.errors()[0]["msg"]) from None
        return self._check_range(value)

    def _check_range(self, value: Any) -> Any:
        if self.bounds is not None and isinstance(value, int):
            low, high = self.bounds
            if not low <= value <= high:
                raise ParameterError(f"must be between {low} and {high}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterError("must be a finite number")
        if isinstance(value, Decimal) and (not value.is_finite() or abs(value.adjusted()) > 100):
            raise ParameterError("must be a finite number of reasonable size")
        if isinstance(value, time) and value.tzinfo is not None:
            raise ParameterError("must be a time of day without a timezone")
        if isinstance(value, timedelta) and abs(value) > _LONGEST_INTERVAL:
            raise ParameterError("is out of the supported range of durations")
        if isinstance(value, datetime):
            try:
                value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
                value = value.astimezone(UTC)
            except (OverflowError, ValueError):
                raise ParameterError("is out of the supported date range") from None
        return value


_TEMPORAL = (datetime, date, time, timedelta)
_NUMBER = re.compile(r"\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*")
# A decimal filter value: the text of the body's decimals (`decimal_text`), any sign (a bound
# to compare with need not be a storable value) and at most 50 digits each side of the point
# (what `_check_range` takes).
DECIMAL_FILTER_PATTERN = r"^-?\d{1,50}(?:\.\d{1,50})?$"
_DECIMAL = re.compile(DECIMAL_FILTER_PATTERN)
# A time of day, without a timezone (what the columns hold): JSON Schema's `time` format is
# RFC 3339's full-time, which requires one, so the document says `partial-time` and the text.
TIME_FILTER_PATTERN = r"^(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?$"
_TIME = re.compile(TIME_FILTER_PATTERN)

# SQLite stores a duration as the date 1970-01-01 plus the duration.
_LONGEST_INTERVAL = datetime(1970, 1, 1) - datetime(1, 1, 1)
_TYPE_NAMES: dict[type, str] = {
    int: "integer",
    float: "number",
    Decimal: "number",
    date: "date",
    datetime: "datetime",
    time: "time",
    timedelta: "duration",
    uuid.UUID: "UUID",
}

_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(python_type: type) -> TypeAdapter[Any]:
    if python_type not in _ADAPTERS:
        _ADAPTERS[python_type] = TypeAdapter(python_type)
    return _ADAPTERS[python_type]


@cache
def field_specs(resource: ResourceOptions) -> dict[str, FieldSpec]:
    """The resource's filterable and sortable fields, by name."""
    schemas = derive_schemas(resource)
    shown = set(schemas.read.model_fields)
    specs: dict[str, FieldSpec] = {}
    for column in resource.table.columns:
        if column.name not in shown:
            continue
        python_type = value_type(column)
        bounds = integer_bounds(column) if python_type is int else None
        specs[column.name] = FieldSpec(
            name=column.name,
            python_type=python_type,
            column=column,
            nullable=bool(column.nullable),
            bounds=bounds,
        )
    for link in schemas.many_to_many:
        if link.field in shown:
            specs[link.field] = FieldSpec(
                name=link.field, python_type=int, link=link, bounds=INT32_BOUNDS
            )
    return specs


PLAIN_OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte")


@dataclass(frozen=True)
class PlainFilter:
    """`field__operator=value` comparing a column with one value."""

    spec: FieldSpec
    operator: str
    value: Any

    def condition(self, value: Any) -> ColumnElement[bool]:
        """The comparison with `value` (a bound parameter, when building a reusable shape)."""
        column = self.spec.column
        assert column is not None
        compare: dict[str, Callable[[Any], ColumnElement[bool]]] = {
            "eq": column.__eq__,
            "ne": column.__ne__,
            "gt": column.__gt__,
            "gte": column.__ge__,
            "lt": column.__lt__,
            "lte": column.__le__,
        }
        return compare[self.operator](value)

    @property
    def bind_type(self) -> Any:
        """The parameter's type: plain NUMERIC for decimals (see `FieldSpec.bind`)."""
        if isinstance(self.value, Decimal):
            return Numeric(asdecimal=True)
        assert self.spec.column is not None
        return self.spec.column.type


class ListParser:
    """Parses one list request of one resource, collecting every error before raising."""

    def __init__(
        self,
        resource: ResourceOptions,
        *,
        dialect: str,
        page_size_max: int,
        max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
    ) -> None:
        self.resource = resource
        self.specs = field_specs(resource)
        self.dialect = dialect
        self.page_size_max = page_size_max
        self.max_json_depth = max_json_depth
        self.errors: list[dict[str, Any]] = []

    def error(self, loc: Sequence[str | int], msg: str, value: Any = None) -> None:
        error: dict[str, Any] = {"type": "value_error", "loc": ("query", *loc), "msg": msg}
        if value is not None:  # echoed as given (see backend.crud.validation_errors)
            error["input"] = value
        self.errors.append(error)

    def raise_errors(self) -> None:
        if self.errors:
            raise RequestValidationError(self.errors)

    # Filters -----------------------------------------------------------------------------

    def query_filters(self, params: Iterable[tuple[str, str]]) -> list[ColumnElement[bool]]:
        """Conditions from `field[__op]=value` query parameters (everything not reserved)."""
        conditions = []
        for key, raw in params:
            if key in RESERVED:
                continue
            condition = self._condition(key, raw, loc=(key,), from_json=False)
            if condition is not None:
                conditions.append(condition)
        return conditions

    def plain_filters(self, params: Iterable[tuple[str, str]]) -> list[PlainFilter] | None:
        """The filters as (field, operator, value) when each is a plain comparison of a column
        with one value (`=`, `gt`, `gte`, `lt`, `lte`, and `ne` on a NOT NULL column): a list
        statement of that shape can be built once and reused with other values. None when one
        is not, or is wrong: `query_filters` then builds the conditions (or the errors)."""
        filters = []
        for key, raw in params:
            if key in RESERVED:
                continue
            name, _, operator = key.partition("__")
            spec = self.specs.get(name)
            operator = operator or "eq"
            if (
                spec is None
                or spec.column is None
                or operator not in PLAIN_OPERATORS
                or operator not in spec.operators_on(self.dialect)
                or (operator == "ne" and spec.nullable)
            ):
                return None
            try:
                value = spec.parse(raw)
            except ParameterError:
                return None
            filters.append(PlainFilter(spec, operator, value))
        return filters

    def json_filter(self, raw: str) -> list[ColumnElement[bool]]:
        """Conditions from react-admin's `filter={"field": value, "q": "..."}`."""
        try:
            check_text(raw)
            data = load_json(raw, self.max_json_depth)
        except ParameterError as exc:
            self.error(("filter",), exc.msg, raw)
            return []
        except ValueError:
            self.error(("filter",), "must be a JSON object", raw)
            return []
        if not isinstance(data, dict):
            self.error(("filter",), "must be a JSON object", raw)
            return []
        conditions = []
        for key, value in data.items():
            if key == "q":
                if isinstance(value, str):
                    condition: ColumnElement[bool] | None = self.search(value, loc=("filter", "q"))
                else:
                    self.error(("filter", "q"), "must be text", value)
                    condition = None
            else:
                condition = self._condition(key, value, loc=("filter", key), from_json=True)
            if condition is not None:
                conditions.append(condition)
        return conditions

    def _condition(
        self, key: str, raw: Any, *, loc: tuple[str, ...], from_json: bool
    ) -> ColumnElement[bool] | None:
        name, _, operator = key.partition("__")
        spec = self.specs.get(name)
        if spec is None:
            known = ", ".join(sorted(self.specs))
            self.error(loc, f"unknown field {name!r}; filterable fields: {known}")
            return None
        if not operator:
            operator = "in" if from_json and isinstance(raw, list) else "eq"
            if from_json and raw is None:
                operator, raw = "isnull", True
        available = spec.operators_on(self.dialect)
        if operator not in available:
            if operator in spec.operators:
                self.error(loc, f"{name}__{operator} is only available on PostgreSQL")
            else:
                self.error(
                    loc,
                    f"unknown operator {operator!r} for {name}; use one of " + ", ".join(available),
                )
            return None
        try:
            return self._build(spec, operator, raw, from_json=from_json)
        except ParameterError as exc:
            self.error(loc, f"{name}: {exc.msg}", raw)
            return None

    def _build(self, spec: FieldSpec, op: str, raw: Any, *, from_json: bool) -> ColumnElement[bool]:
        if op == "isnull":
            flag = _adapter(bool).validate_python(raw) if _is_bool(raw) else None
            if flag is None:
                raise ParameterError("isnull takes true or false")
            assert spec.column is not None
            null: ColumnElement[bool] = spec.column.is_(None) if flag else spec.column.is_not(None)
            return null
        if op == "contains":
            return self._contains(spec, raw, from_json=from_json)
        if op == "has_key":
            if not isinstance(raw, str):
                raise ParameterError("has_key takes a key (text)")
            assert spec.column is not None
            key: ColumnElement[bool] = _as_jsonb(spec.column).has_key(check_text(raw))
            return key
        if op == "in":
            values = self._list(raw, from_json=from_json)
            if len(values) > MAX_IN_VALUES:
                raise ParameterError(f"at most {MAX_IN_VALUES} values")
            if spec.link is not None:
                return self._has_linked(spec.link, [spec.parse(value) for value in values])
            parsed = [spec.bind(value) for value in values]
            assert spec.column is not None
            return spec.column.in_(parsed) if parsed else false()
        if spec.link is not None:
            return self._has_linked(spec.link, [spec.parse(raw)])
        value = spec.bind(raw)
        column = spec.column
        assert column is not None
        if op in ("like", "ilike"):
            if (len(value) - len(value.rstrip("\\"))) % 2:
                raise ParameterError("a pattern cannot end with the escape character \\")
            return _like(column, value, case_insensitive=op == "ilike", dialect=self.dialect)
        comparisons: dict[str, Callable[[Any], ColumnElement[bool]]] = {
            "eq": column.__eq__,
            "ne": lambda v: or_(column != v, column.is_(None)) if spec.nullable else column != v,
            "gt": column.__gt__,
            "gte": column.__ge__,
            "lt": column.__lt__,
            "lte": column.__le__,
        }
        return comparisons[op](value)

    def _contains(self, spec: FieldSpec, raw: Any, *, from_json: bool) -> ColumnElement[bool]:
        """PostgreSQL's `@>`: a JSON column containing a JSON value (`{"a": 1}`, `[2]`), or an
        array column containing every item of a list (`a,b` or, in `filter=`, `["a","b"]`)."""
        column = spec.column
        assert column is not None
        if spec.kind(self.dialect) == "array":
            array_type = column.type.dialect_impl(_DIALECTS[self.dialect])
            assert isinstance(array_type, ARRAY)
            items = self._list(raw, from_json=from_json)
            if len(items) > MAX_IN_VALUES:
                raise ParameterError(f"at most {MAX_IN_VALUES} values")
            item_type = array_type.item_type
            item_spec = FieldSpec(
                name=spec.name,
                python_type=_item_python_type(item_type),
            )
            values = [item_spec.parse(item) for item in items]
            array_of_items = postgresql.ARRAY(item_type)
            array: ColumnElement[bool] = type_coerce(column, array_of_items).contains(values)
            return array
        if from_json:
            value = raw
        else:
            try:
                value = load_json(check_text(str(raw)), self.max_json_depth)
            except ValueError:
                raise ParameterError("contains takes a JSON value") from None
        if not isinstance(value, dict | list):
            raise ParameterError("contains takes a JSON object or array")
        _check_json(value)
        json_value: ColumnElement[bool] = _as_jsonb(column).contains(value)
        return json_value

    @staticmethod
    def _list(raw: Any, *, from_json: bool) -> list[Any]:
        if isinstance(raw, list):
            return raw
        if from_json and not isinstance(raw, str):
            return [raw]
        text = str(raw)
        return [part.strip() for part in text.split(",")] if text.strip() else []

    def _has_linked(self, link: ManyToMany, ids: list[Any]) -> ColumnElement[bool]:
        if not ids:
            return false()
        return has_linked(self.resource, link, ids)

    def search(self, raw: str, *, loc: tuple[str, ...] = ("q",)) -> ColumnElement[bool] | None:
        """`q=`: every word must appear in one of the resource's search fields."""
        try:
            check_text(raw)
        except ParameterError as exc:
            self.error(loc, exc.msg, raw)
            return None
        columns = [
            self.resource.table.columns[name]
            for name in self.resource.search_fields
            if name in self.specs and self.specs[name].is_text
        ]
        words = raw.split()
        if not words:
            return None
        if not columns:
            self.error(loc, f"{self.resource.name} has no searchable fields", raw)
            return None
        return and_(
            true(),
            *(
                or_(*(c.ilike(f"%{_escape_like(word)}%", escape="\\") for c in columns))
                for word in words
            ),
        )

    # Sorting -----------------------------------------------------------------------------

    def sort(self, raw: str | None) -> list[UnaryExpression[Any]]:
        """`-price,name` or `["price","DESC"]`, with the primary key as the last tie-breaker."""
        fields: list[tuple[str, bool]] = []
        if raw is not None and raw.strip().startswith("["):
            try:
                data = load_json(raw, self.max_json_depth)
            except ParameterError as exc:
                self.error(("sort",), exc.msg, raw)
                return []
            except ValueError:
                data = None
            if (
                not isinstance(data, list)
                or len(data) != 2
                or not all(isinstance(part, str) for part in data)
                or data[1].upper() not in ("ASC", "DESC")
            ):
                self.error(("sort",), 'must look like ["field","ASC"] or ["field","DESC"]', raw)
                return []
            fields.append((data[0], data[1].upper() == "DESC"))
        elif raw is not None:
            for part in raw.split(","):
                name = part.strip()
                if not name:  # `sort=` or a trailing comma: nothing asked
                    continue
                descending = name.startswith("-")
                fields.append((name.removeprefix("-").removeprefix("+"), descending))
        order: list[UnaryExpression[Any]] = []
        seen = set()
        for name, descending in fields:
            spec = self.specs.get(name)
            if spec is None or not spec.sortable:
                sortable = ", ".join(n for n, s in sorted(self.specs.items()) if s.sortable)
                self.error(("sort",), f"cannot sort on {name!r}; sortable fields: {sortable}", raw)
                continue
            if name in seen:
                continue
            seen.add(name)
            # NULL sorts as the largest value on both databases (PostgreSQL's default).
            key = spec.sort_key(self.dialect)
            order.append(key.desc().nulls_first() if descending else key.asc().nulls_last())
        pk = self.resource.primary_key
        if pk not in seen:
            order.append(self.resource.table.columns[pk].asc())
        return order

    # Pagination --------------------------------------------------------------------------

    def range(self, raw: str) -> tuple[int, int] | None:
        """react-admin's inclusive `[first, last]` as (skip, limit)."""
        try:
            data = load_json(raw, self.max_json_depth)
        except ParameterError as exc:
            self.error(("range",), exc.msg, raw)
            return None
        except ValueError:
            data = None
        if (
            not isinstance(data, list)
            or len(data) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in data)
            or not 0 <= data[0] <= data[1]
        ):
            self.error(("range",), "must look like [first, last] with 0 <= first <= last", raw)
            return None
        first, last = data
        if last - first + 1 > self.page_size_max:
            self.error(
                ("range",), f"asks for more than the maximum page size {self.page_size_max}", raw
            )
            return None
        if last >= 2**62:
            self.error(("range",), "is too large", raw)
            return None
        return first, last - first + 1


def _as_jsonb(column: Column[Any]) -> ColumnElement[Any]:
    """A JSON column as JSONB, whose operators `@>` and `?` PostgreSQL's json type lacks."""
    if isinstance(column.type.dialect_impl(_DIALECTS["postgresql"]), JSONB):
        return type_coerce(column, JSONB())
    return cast(column, JSONB())


def _check_json(value: Any) -> None:
    """Refuse what PostgreSQL's jsonb cannot hold: NaN or infinite numbers, NUL characters."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError("must be JSON with finite numbers")
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key)
            _check_json(item)
    elif isinstance(value, list):
        for item in value:
            _check_json(item)


def _item_python_type(item_type: TypeEngine[Any]) -> type:
    try:
        python_type: type = item_type.python_type
    except NotImplementedError:
        return str
    return str if python_type is object else python_type


def _is_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return True
    return isinstance(raw, str) and raw.strip().lower() in ("true", "false", "1", "0", "yes", "no")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(
    column: Column[Any], pattern: str, *, case_insensitive: bool, dialect: str
) -> ColumnElement[bool]:
    """SQL LIKE (`%` any run, `_` one character, `\\` escapes); case-sensitive unless `ilike`.

    SQLite's LIKE ignores ASCII case, so a case-sensitive match there uses GLOB with the
    pattern translated (GLOB's own wildcards escaped as one-character classes).
    """
    if case_insensitive:
        return column.ilike(pattern, escape="\\")
    if dialect != "sqlite":
        return column.like(pattern, escape="\\")
    glob_literal = {"*": "[*]", "?": "[?]", "[": "[[]"}
    glob, escaped = [], False
    for char in pattern:
        if escaped:
            glob.append(glob_literal.get(char, char))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            glob.append({"%": "*", "_": "?", **glob_literal}.get(char, char))
    condition: ColumnElement[bool] = column.op("GLOB")("".join(glob))
    return condition


def openapi_filter_parameters(resource: ResourceOptions) -> list[dict[str, Any]]:
    """OpenAPI descriptions of the equality filter of every filterable column (`isnull` for a
    column that has no equality: JSON, arrays, bytes)."""
    parameters = []
    for name, spec in field_specs(resource).items():
        others = [
            f"`{name}__{op}`" + (" (PostgreSQL)" if op in POSTGRES_ONLY else "")
            for op in spec.operators
            if op != "eq"
        ]
        if "eq" in spec.operators:
            parameter, schema = name, _json_schema(spec)
            description = f"{name} equals this value. Operators: " + ", ".join(others) + "."
        else:
            parameter, schema = f"{name}__isnull", {"type": "boolean"}
            description = f"{name} is (or is not) null. Operators: " + ", ".join(others) + "."
        parameters.append(
            {
                "name": parameter,
                "in": "query",
                "required": False,
                "description": description,
                "schema": schema,
            }
        )
    return parameters


_STRING_FORMATS: dict[type, str] = {
    datetime: "date-time",
    date: "date",
    time: "time",
    timedelta: "duration",
    uuid.UUID: "uuid",
}


def _json_schema(spec: FieldSpec) -> dict[str, Any]:
    python_type = spec.python_type
    if spec.link is not None or python_type is int:
        low, high = spec.bounds or INT32_BOUNDS
        return {"type": "integer", "minimum": low, "maximum": high}
    if python_type is bool:
        return {"type": "boolean"}
    if python_type is float:
        return {"type": "number"}
    if python_type is Decimal:
        return {"type": "string", "format": "decimal", "pattern": DECIMAL_FILTER_PATTERN}
    if python_type is time:
        return {"type": "string", "format": "partial-time", "pattern": TIME_FILTER_PATTERN}
    if python_type in _STRING_FORMATS:
        return {"type": "string", "format": _STRING_FORMATS[python_type]}
    if issubclass(python_type, enum.Enum):
        return {"type": "string", "enum": [member.value for member in python_type]}
    return {"type": "string", "pattern": NO_NUL_PATTERN}
