"""Form fields and display of the column types SQLAdmin 0.32 handles badly or not at all.

SQLAdmin's converter picks a WTForms field by SQL type. With SQLAlchemy 2.1 some of its picks
fail or lose data, each pinned by a test in tests/admin/test_fields.py:
- `Float` no longer subclasses `Numeric`: no converter at all (`NoConverterFound`, a 500);
- `Enum` offers the members' *names* while the schemas validate *values*;
- `JSON` shows `{}` for an empty list and says only "Invalid JSON";
- `LargeBinary` is a text area holding `str(bytes)`: we use base64 text, as the API does;
- `Time` takes "HH:MM" only and drops the seconds of the value it shows;
- `Interval` says "Invalid timedelta format." without saying which format.
Everything else (UUID, dates, aware datetimes, decimals, booleans) keeps SQLAdmin's fields.
"""

import base64
import binascii
import csv
import enum
import io
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import time, timedelta
from typing import Any, TypeVar

from markupsafe import Markup
from pydantic import ConfigDict, TypeAdapter
from sqladmin.fields import IntervalField, SelectField, TextAreaField
from sqladmin.forms import ModelConverter, converts
from sqladmin.helpers import parse_interval
from sqlalchemy import Enum, LargeBinary
from sqlalchemy.orm import ColumnProperty
from wtforms import FloatField, StringField, widgets

from backend.crud.query import ParameterError, load_json
from backend.writes.values import MAX_VALUE_DEPTH


class JSONField(TextAreaField):
    """Any JSON value (an object, a list...) as text; blank is null."""

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        if self.data is None:
            return ""
        return json.dumps(self.data, ensure_ascii=False)

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        text = str(valuelist[0]).strip()
        if not text:
            self.data = None
            return
        try:
            self.data = load_json(text, MAX_VALUE_DEPTH)  # deeper recursed to a 500
        except ParameterError as exc:
            self.data = None
            raise ValueError(exc.msg) from None
        except json.JSONDecodeError as exc:
            self.data = None
            raise ValueError(
                f"Invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
        except RecursionError:  # `[[[[...` a few thousand deep: Python's parser recurses
            self.data = None
            raise ValueError("Invalid JSON: nested too deeply.") from None


class Base64Field(TextAreaField):
    """Bytes, entered and shown as base64 text (as the API reads and writes them)."""

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        if isinstance(self.data, bytes):
            return base64.b64encode(self.data).decode("ascii")
        return ""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        text = "".join(str(valuelist[0]).split())  # line breaks of wrapped base64 are fine
        if not text:
            self.data = None
            return
        try:
            self.data = base64.b64decode(text, validate=True)  # type: ignore[assignment]
        except (binascii.Error, ValueError):
            self.data = None
            raise ValueError("Not valid base64 (letters, digits, +, / and = padding).") from None


class TimeOfDayField(StringField):
    """A time of day, HH:MM or HH:MM:SS[.ffffff], without a time zone; seconds are kept."""

    widget = widgets.TimeInput()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("render_kw", {})["step"] = "1"  # the browser's input shows seconds
        super().__init__(*args, **kwargs)

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        if isinstance(self.data, time):
            spec = "microseconds" if self.data.microsecond else "seconds"
            return self.data.isoformat(timespec=spec)
        return ""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        text = str(valuelist[0]).strip()
        if not text:
            self.data = None
            return
        try:
            value = time.fromisoformat(text)
        except ValueError:
            value = None
        if value is None or value.tzinfo is not None:
            self.data = None
            raise ValueError("Not a valid time: write it as HH:MM or HH:MM:SS.")
        self.data = value  # type: ignore[assignment]


class DurationField(IntervalField):
    """A timedelta, as `1 day, 2:30:00`, `2:30:00` or ISO 8601 `P1DT2H30M`."""

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist:
            return
        text = str(valuelist[0]).strip()
        # SQLAdmin's own field also refuses a zero duration (its check is `if not interval`)
        try:
            duration = parse_interval(text) if text else None
        except (OverflowError, ValueError):  # `99999999999 days`: past timedelta's range
            duration = None
        self.data = duration  # type: ignore[assignment]
        if text and duration is None:
            raise ValueError(
                "Not a valid duration: write it like 2:30:00, 1 day, 2:30:00 or P1DT2H30M."
            )


def enum_choices(column_type: Enum) -> list[tuple[str, str]]:
    """The select's options: the values the schemas accept (the members' values)."""
    enum_class = column_type.enum_class
    if enum_class is None:
        return [(value, value) for value in column_type.enums]
    return [(str(member.value), str(member.value)) for member in enum_class]


def _enum_value(value: Any) -> Any:
    return str(value.value) if isinstance(value, enum.Enum) else value


_F = TypeVar("_F", bound=Callable[..., Any])


def _converts(*type_names: str) -> Callable[[_F], _F]:
    """SQLAdmin's `converts` (untyped there): the SQL type names a converter handles."""
    decorate: Callable[[_F], _F] = converts(*type_names)
    return decorate


class ResourceConverter(ModelConverter):
    """SQLAdmin's converter with the fields above, and foreign-key columns kept.

    SQLAdmin skips every foreign-key column, expecting a relationship to stand in for it; the
    generated views only ask for such a column when no relationship covers it.
    """

    def _prepare_column(self, prop: Any, form_include_pk: bool, kwargs: dict[str, Any]) -> Any:
        column = prop.columns[0]
        if column.foreign_keys and not column.primary_key:
            form_include_pk = True
        return super()._prepare_column(prop=prop, form_include_pk=form_include_pk, kwargs=kwargs)

    @_converts("Float")  # SQLAlchemy 2.1: Float (and Double) no longer subclass Numeric
    def conv_float(self, model: type, prop: ColumnProperty[Any], kwargs: dict[str, Any]) -> Any:
        return FloatField(**kwargs)

    @_converts("Text", "LargeBinary", "Binary")
    def conv_text(self, model: type, prop: ColumnProperty[Any], kwargs: dict[str, Any]) -> Any:
        if isinstance(prop.columns[0].type, LargeBinary):
            kwargs["description"] = kwargs.get("description") or "Base64-encoded bytes."
            return Base64Field(**kwargs)
        return super().conv_text(model, prop, kwargs)

    @_converts("Enum")
    def conv_enum(self, model: type, prop: ColumnProperty[Any], kwargs: dict[str, Any]) -> Any:
        column = prop.columns[0]
        column_type = column.type
        assert isinstance(column_type, Enum)
        kwargs["choices"] = enum_choices(column_type)
        kwargs["coerce"] = _enum_value
        if column.nullable:
            kwargs["allow_blank"] = True
        return SelectField(**kwargs)

    @_converts("JSON", "JSONB")
    def conv_json(self, model: type, prop: ColumnProperty[Any], kwargs: dict[str, Any]) -> Any:
        kwargs["description"] = kwargs.get("description") or "JSON."
        return JSONField(**kwargs)

    @_converts("Time")
    def conv_time(self, model: type, prop: ColumnProperty[Any], kwargs: dict[str, Any]) -> Any:
        return TimeOfDayField(**kwargs)

    @_converts("Interval")
    def conv_interval(self, model: type, prop: ColumnProperty[Any], kwargs: dict[str, Any]) -> Any:
        kwargs["render_kw"]["placeholder"] = "Like 2:30:00, 1 day, 2:30:00 or P1DT2H30M"
        return DurationField(**kwargs)


# -- showing values ---------------------------------------------------------------------------


def json_formatter(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def bytes_formatter(value: bytes) -> str:
    return f"{len(value)} bytes"


def bytes_detail_formatter(value: bytes) -> Markup:
    encoded = base64.b64encode(value).decode("ascii")
    return Markup('<span title="base64">{}</span> ({} bytes)').format(encoded, len(value))


def duration_formatter(value: timedelta) -> str:
    return str(value)


# -- exporting values ----------------------------------------------------------------------------

_EXPORT = TypeAdapter[Any](Any, config=ConfigDict(ser_json_timedelta="iso8601"))


def export_value(value: Any) -> Any:
    """A value as JSON data, as the API writes it: bytes in base64 (RFC 4648, not pydantic's
    URL-safe alphabet), enums by value, decimals and UUIDs as strings, durations in ISO 8601."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return _EXPORT.dump_python(value, mode="json")


# A spreadsheet runs a cell that starts with one of these as a formula (`=HYPERLINK(...)`,
# `+cmd|...`, `@SUM(...)`): text cells that do are written with a leading apostrophe, which
# spreadsheets show as text (OWASP's "CSV injection" advice). Numbers are never text cells.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A value as one CSV cell: JSON text for objects and lists, blank for null, and text
    that a spreadsheet would run as a formula kept as text."""
    encoded = export_value(value)
    if encoded is None:
        return ""
    if isinstance(encoded, (dict, list)):
        return json.dumps(encoded, ensure_ascii=False)
    text = str(encoded)
    if isinstance(value, str) and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Iterable[str]:
    """The CSV text of `rows`, one line at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for values in (header, *([csv_cell(v) for v in row] for row in rows)):
        writer.writerow(values)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
