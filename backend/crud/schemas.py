"""Create / Update / Read schemas derived from a table class, shared by the API, admin and seeds.

A table author writes only the table; its input and output shapes follow from it:
- Create: every column but the read-only ones (primary key, server-managed timestamps), with
  the table's own types and constraints, timezone-aware datetimes, unknown fields refused;
- Update: the same fields, all optional; a field sent as null is refused unless the column
  is nullable, and `model_dump(exclude_unset=True)` gives just what the client sent;
- Read: every column, plus `<name>_ids` lists for the registry's `many_to_many` links.
Bytes columns are base64 text in JSON, both ways (`Base64Data`).
A registry option (`create_schema`, `update_schema`, `read_schema`) replaces any of them.
"""

import base64
import binascii
import re
import types
import typing
import uuid
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from functools import cache
from typing import Annotated, Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from fastapi import Path
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from sqlalchemy import BigInteger, Column, Numeric, SmallInteger, inspect
from sqlmodel import SQLModel
from sqlmodel.main import FieldInfoMetadata

from backend.registry import ResourceOptions, client_chosen_primary_key, column_python_type


@dataclass(frozen=True)
class ManyToMany:
    """A many-to-many relationship exposed as a list of the related rows' ids."""

    field: str  # e.g. "tag_ids"
    relationship: str  # e.g. "tags"
    target: type[SQLModel]


@dataclass(frozen=True)
class Schemas:
    """The derived (or overridden) shapes of one resource."""

    create: type[BaseModel]
    update: type[BaseModel]
    read: type[BaseModel]
    many_to_many: tuple[ManyToMany, ...]


class InputSchema(BaseModel):
    """Base of derived input schemas: unknown fields are an error, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def many_to_many_links(resource: ResourceOptions) -> tuple[ManyToMany, ...]:
    """The resource's exposed many-to-many relationships, as `<singular>_ids` fields."""
    links = []
    for name in resource.many_to_many:
        relationship = inspect(resource.model).relationships[name]
        singular = name.removesuffix("s")
        links.append(ManyToMany(f"{singular}_ids", name, relationship.mapper.class_))
    return tuple(links)


BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def _from_base64(value: Any) -> Any:
    """Text (JSON) is base64 (RFC 4648, padded); bytes given in Python pass as they are."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("not valid base64 text (RFC 4648, with padding)") from None
    return value


def _to_base64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


# A bytes column as the API shows and takes it: base64 text in JSON; in Python (the admin, the
# seed loader) plain bytes. (pydantic's own Base64Bytes would decode bytes given in Python too.)
Base64Data = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(_to_base64, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "base64",
            "contentEncoding": "base64",
            "pattern": BASE64_PATTERN,
        }
    ),
]

# A time-of-day column holds no offset, and its values are written without one
# ("07:42:39"): RFC 3339's partial-time. JSON Schema's "time" format is RFC 3339's full-time,
# which requires the offset; a client validating responses would refuse every value.
TimeOfDay = Annotated[
    time, WithJsonSchema({"type": "string", "format": "partial-time", "example": "09:30:00"})
]

# Text no database stores: PostgreSQL refuses NUL in text, so every surface refuses it
# (backend.writes.values); the document says so on each text input without a pattern of its own.
NO_NUL_PATTERN = r"^[^\x00]*$"


def decimal_pattern(digits: int | None, places: int | None, *, signed: bool) -> str:
    """The text of a decimal column's values: `-?` unless it cannot be negative, at most
    `digits - places` digits before the point and `places` after it (no exponent, no `+`)."""
    sign = "-?" if signed else ""
    if digits is None:
        whole = r"\d+"
    else:
        before = digits - (places or 0)
        whole = rf"\d{{1,{before}}}" if before > 0 else "0"
    if places is None:
        fraction = r"(?:\.\d+)?"
    elif places == 0:
        fraction = ""
    else:
        fraction = rf"(?:\.\d{{1,{places}}})?"
    return f"^{sign}{whole}{fraction}$"


def decimal_text(pattern: str, *, output: bool = False) -> Any:
    """A decimal as the API shows and takes it: a JSON string matching `pattern` (a JSON number
    would pass through a binary float in most clients and lose digits, as DRF reasons too).

    Validating JSON (the API reads its bodies so), a JSON number is refused; in Python (the
    admin, the seed loader) a Decimal, an int or a float is still taken. Text must match the
    pattern everywhere, so the document and the validation agree.
    """
    schema = {"type": "string", "format": "decimal", "pattern": pattern}
    if output:
        return Annotated[Decimal, WithJsonSchema(schema)]
    compiled = re.compile(pattern)

    def as_text(value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            if compiled.fullmatch(value) is None:
                raise PydanticCustomError(
                    "decimal_text",
                    "Input should be a decimal written as text matching {pattern}, e.g. "
                    '"19.90" (no exponent, no spaces)',
                    {"pattern": pattern},
                )
            return Decimal(value)  # a strict (JSON) validation takes no text after this
        if isinstance(value, int | float) and not isinstance(value, bool) and info.mode == "json":
            raise PydanticCustomError(
                "decimal_type",
                'Input should be a string: a decimal is written as text, e.g. "19.90" '
                "(a JSON number may lose digits)",
            )
        return value

    return Annotated[Decimal, BeforeValidator(as_text), WithJsonSchema(schema)]


def _decimal_type(info: FieldInfo, column: Column[Any], *, output: bool) -> Any:
    """The `decimal_text` type of a Numeric column, after the field's or the column's scale."""
    metadata = info.metadata
    digits = next((m.max_digits for m in metadata if getattr(m, "max_digits", None)), None)
    places = next(
        (m.decimal_places for m in metadata if getattr(m, "decimal_places", None) is not None),
        None,
    )
    if isinstance(column.type, Numeric):
        digits = digits if digits is not None else column.type.precision
        places = places if places is not None else column.type.scale
    lower = [m.ge for m in metadata if isinstance(m, Ge)] + [
        m.gt for m in metadata if isinstance(m, Gt)
    ]
    signed = not any(isinstance(bound, int | float | Decimal) and bound >= 0 for bound in lower)
    return decimal_text(decimal_pattern(digits, places, signed=signed), output=output)


def _replace_type(annotation: Any, old: Any, new: Any) -> Any:
    """`annotation` with `old` replaced by `new`, also inside `X | None`."""
    if annotation is old:
        return new
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = tuple(_replace_type(arg, old, new) for arg in typing.get_args(annotation))
        return typing.Union[args]  # noqa: UP007  # built from a tuple of types
    return annotation


def _is_text(annotation: Any) -> bool:
    if annotation is str:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return str in typing.get_args(annotation)
    return False


def _is_text_list(annotation: Any) -> bool:
    """A list of text (an ARRAY column), nullable or not."""
    options = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    return any(
        typing.get_origin(option) is list and typing.get_args(option) == (str,)
        for option in options
    )


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _not_a_number(value: Any) -> Any:
    """A datetime parameter is RFC 3339 text: pydantic would also read `0` as 1970."""
    if (isinstance(value, str) and _NUMBER.fullmatch(value.strip())) or (
        isinstance(value, int | float) and not isinstance(value, bool)
    ):
        raise PydanticCustomError(
            "datetime_type",
            "Input should be a date and time in RFC 3339 form, e.g. 2024-05-01T12:00:00Z",
        )
    return value


# A date and time as a query parameter takes: RFC 3339 text only, as documented.
DatetimeText = Annotated[datetime, BeforeValidator(_not_a_number)]

# What a column's Python type becomes in the derived schemas: (as input, as output).
_API_TYPES: dict[Any, tuple[Any, Any]] = {
    datetime: (AwareDatetime, datetime),
    bytes: (Base64Data, Base64Data),
    time: (time, TimeOfDay),
}


def api_annotation(annotation: Any, *, output: bool = False) -> Any:
    """The annotation a derived schema gives a column's type (also inside `X | None`)."""
    found = _API_TYPES.get(annotation)
    if found is not None:
        return found[output]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        mapped = tuple(api_annotation(arg, output=output) for arg in args)
        if mapped != args:
            return typing.Union[mapped]  # noqa: UP007  # built from a tuple of types
    return annotation


def _field_copy(info: FieldInfo, *, optional: bool) -> tuple[Any, FieldInfo]:
    """The annotation and a copy of `info` without sqlmodel's column metadata."""
    annotation = api_annotation(info.annotation)
    metadata = [m for m in info.metadata if not isinstance(m, FieldInfoMetadata)]
    kwargs: dict[str, Any] = {}
    if optional:
        kwargs["default"] = None
    elif info.default_factory is not None:
        kwargs["default_factory"] = info.default_factory
    elif not info.is_required():
        kwargs["default"] = info.default
    if info.description:
        kwargs["description"] = info.description
    copy = FieldInfo(annotation=annotation, **kwargs)
    copy.metadata = metadata
    return annotation, copy


INT32_BOUNDS = (-(2**31), 2**31 - 1)


def integer_bounds(column: Column[Any]) -> tuple[int, int]:
    """The values an integer column holds on every supported database (PostgreSQL's sizes)."""
    if isinstance(column.type, BigInteger):
        return -(2**63), 2**63 - 1
    if isinstance(column.type, SmallInteger):
        return -(2**15), 2**15 - 1
    return INT32_BOUNDS


def _whole_number(value: Any) -> Any:
    """`24.0` as 24: JSON Schema's integers include numbers with a zero fraction, which the
    API's strict JSON validation would otherwise refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _bound_integers(field: tuple[Any, FieldInfo], column: Column[Any]) -> tuple[Any, FieldInfo]:
    """Add the column's integer range, so an out-of-range number is a 422, not a driver error."""
    if column_python_type(column) is int:
        low, high = integer_bounds(column)
        metadata = field[1].metadata
        lower = [m.ge for m in metadata if isinstance(m, Ge)] + [
            m.gt for m in metadata if isinstance(m, Gt)
        ]
        upper = [m.le for m in metadata if isinstance(m, Le)] + [
            m.lt for m in metadata if isinstance(m, Lt)
        ]
        if not lower:  # a bound the table declares is at least as tight; keep it alone
            metadata.append(Ge(low))
        if not upper:
            metadata.append(Le(high))
        # Last: wraps the bounds (before them, a nullable column's bounds would meet None).
        metadata.append(BeforeValidator(_whole_number))
    return field


def _column_rules(
    field: tuple[Any, FieldInfo], info: FieldInfo, column: Column[Any]
) -> tuple[Any, FieldInfo]:
    """An input field with the column's own rules: integer range, decimals as text, no NUL."""
    annotation, copy = _bound_integers(field, column)
    python_type = column_python_type(column)
    if python_type is Decimal:
        decimal = _decimal_type(info, column, output=False)
        annotation = _replace_type(annotation, Decimal, decimal)
        rebuilt = FieldInfo.merge_field_infos(copy, annotation=annotation)
        return annotation, rebuilt
    if _is_text(annotation) and not any(getattr(m, "pattern", None) for m in copy.metadata):
        extra = copy.json_schema_extra if isinstance(copy.json_schema_extra, dict) else {}
        if "pattern" not in extra:
            rules = {**extra, "pattern": NO_NUL_PATTERN}
            return annotation, FieldInfo.merge_field_infos(copy, json_schema_extra=rules)
    if _is_text_list(annotation):
        # beside the type: JSON Schema applies `items` to an array only (null still passes)
        extra = copy.json_schema_extra if isinstance(copy.json_schema_extra, dict) else {}
        if "items" not in extra:
            rules = {**extra, "items": {"type": "string", "pattern": NO_NUL_PATTERN}}
            return annotation, FieldInfo.merge_field_infos(copy, json_schema_extra=rules)
    return annotation, copy


def primary_key_parameter(resource: ResourceOptions) -> Any:
    """The `{id}` path parameter of a resource, typed after its primary key: an int within
    the column's range, a UUID, a string with the column's length and pattern."""
    name = resource.primary_key
    column = resource.table.columns[name]
    python_type = resource.primary_key_type
    description = f"The {resource.name} row's {name}"
    if python_type is int:
        low, high = integer_bounds(column)
        return Annotated[int, Path(ge=low, le=high, description=description)]
    if python_type is str:
        info = resource.model.model_fields.get(name)
        metadata = info.metadata if info is not None else []
        longest = next((m.max_length for m in metadata if isinstance(m, MaxLen)), None)
        shortest = next((m.min_length for m in metadata if isinstance(m, MinLen)), None)
        pattern = next((m.pattern for m in metadata if getattr(m, "pattern", None)), None)
        length = getattr(column.type, "length", None)
        return Annotated[
            str,
            Path(
                min_length=shortest if shortest is not None else 1,
                max_length=longest if longest is not None else length,
                pattern=pattern,
                description=description,
            ),
        ]
    if python_type is uuid.UUID:
        return Annotated[uuid.UUID, Path(description=description)]
    return Annotated[python_type, Path(description=description)]


# The validator last: it runs first, and the bounds stay in the document.
BoundedId = Annotated[
    int, Field(ge=INT32_BOUNDS[0], le=INT32_BOUNDS[1]), BeforeValidator(_whole_number)
]


def _read_validator(links: tuple[ManyToMany, ...]) -> Any:
    def collect_ids(cls: type[BaseModel], value: Any) -> Any:
        if isinstance(value, SQLModel):
            data = {name: getattr(value, name) for name in cls.model_fields if hasattr(value, name)}
            for link in links:
                data[link.field] = sorted(row.id for row in getattr(value, link.relationship))
            return data
        return value

    return model_validator(mode="before")(collect_ids)


def read_only_fields(resource: ResourceOptions) -> tuple[str, ...]:
    """Fields a client never writes: the primary key (unless the client chooses it, as a
    currency's code) and the registry's read-only fields."""
    chosen = client_chosen_primary_key(resource.table)
    return tuple(
        dict.fromkeys((*(() if chosen else (resource.primary_key,)), *resource.read_only_fields))
    )


@cache
def derive_schemas(resource: ResourceOptions) -> Schemas:
    """The Create / Update / Read schemas of a resource (cached per resource)."""
    model = resource.model
    title = model.__name__
    links = many_to_many_links(resource)
    read_only = set(read_only_fields(resource))
    columns = [name for name in model.model_fields if name in resource.table.columns]

    create_fields: dict[str, Any] = {}
    update_fields: dict[str, Any] = {}
    read_fields: dict[str, Any] = {}
    for name in columns:
        info = model.model_fields[name]
        shown = api_annotation(info.annotation, output=True)
        if column_python_type(resource.table.columns[name]) is Decimal:
            decimal = _decimal_type(info, resource.table.columns[name], output=True)
            shown = _replace_type(shown, Decimal, decimal)
        read_fields[name] = (shown, FieldInfo(annotation=shown))
        if name in read_only:
            continue
        column = resource.table.columns[name]
        create_fields[name] = _column_rules(_field_copy(info, optional=False), info, column)
        update_fields[name] = _column_rules(_field_copy(info, optional=True), info, column)
    for link in links:
        create_fields[link.field] = (
            list[BoundedId],
            FieldInfo(annotation=list[BoundedId], default_factory=list),
        )
        update_fields[link.field] = (
            list[BoundedId],
            FieldInfo(annotation=list[BoundedId], default=None),
        )
        read_fields[link.field] = (list[int], FieldInfo(annotation=list[int], default_factory=list))

    create = resource.create_schema or create_model(
        f"{title}Create", __base__=InputSchema, **create_fields
    )
    update = resource.update_schema or create_model(
        f"{title}Update", __base__=InputSchema, **update_fields
    )
    read = resource.read_schema or create_model(
        f"{title}Read",
        __config__=ConfigDict(from_attributes=True),
        __validators__={"collect_ids": _read_validator(links)} if links else None,
        **read_fields,
    )
    return Schemas(create=create, update=update, read=read, many_to_many=links)


def write_only_fields(resource: ResourceOptions) -> tuple[str, ...]:
    """Input fields the Read schema never shows (a user's `password`)."""
    schemas = derive_schemas(resource)
    return tuple(f for f in schemas.create.model_fields if f not in schemas.read.model_fields)


@cache
def derive_replace_schema(resource: ResourceOptions) -> type[BaseModel]:
    """The PUT body: the Create schema, also accepting (and ignoring) the read-only fields.

    A client may send back a record exactly as it read it: `id`, `created_at` and the like are
    allowed, typed as the Read schema shows them, and never written - the primary key too,
    even one the client chose on create (a currency's code). Write-only fields (in Create but
    never shown, like a user's `password`) become optional: a record read and sent back has
    none, and leaving one out keeps the stored value.
    """
    schemas = derive_schemas(resource)
    read_fields = schemas.read.model_fields
    extra: dict[str, Any] = {}
    for name in write_only_fields(resource):
        info = schemas.create.model_fields[name]
        written: Any = info.annotation
        optional_type: Any = written | None
        copy = FieldInfo.merge_field_infos(info, annotation=optional_type, default=None)
        extra[name] = (optional_type, copy)
    # The primary key names the row (the path's id): sent back, it is ignored, also when the
    # client chose it on create (a currency's code).
    for name in dict.fromkeys((*read_only_fields(resource), resource.primary_key)):
        if name in schemas.create.model_fields and name != resource.primary_key:
            continue
        annotation: Any = read_fields[name].annotation if name in read_fields else Any
        optional: Any = annotation | None
        if annotation is int:  # written 5.0, an integer all the same (JSON Schema's integer)
            optional = Annotated[optional, BeforeValidator(_whole_number)]
        extra[name] = (optional, FieldInfo(annotation=optional, default=None))
    title = schemas.create.__name__.removesuffix("Create") or resource.model.__name__
    return create_model(f"{title}Replace", __base__=schemas.create, **extra)
