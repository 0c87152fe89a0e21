"""The admin's own form fields, and one test per SQLAdmin behaviour they work around or rely on
(when an upgrade changes one, the test that pins it fails here, not a page in production)."""

import csv
import enum
import io
import uuid
from datetime import time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqladmin import ModelView
from sqladmin.ajax import QueryAjaxModelLoader
from sqladmin.exceptions import NoConverterFound
from sqladmin.fields import IntervalField
from sqladmin.fields import JSONField as SQLAdminJSONField
from sqladmin.forms import ModelConverter
from sqladmin.helpers import object_identifier_values
from sqlalchemy import Enum
from sqlalchemy import inspect as sa_inspect
from wtforms import Form

from backend.admin.fields import (
    Base64Field,
    DurationField,
    JSONField,
    ResourceConverter,
    TimeOfDayField,
    csv_cell,
    csv_lines,
    enum_choices,
    export_value,
)
from tests.fixture_app.models import Currency, Specimen


class _Post:
    """Form data as WTForms reads it (a multidict with getlist)."""

    def __init__(self, **values: str) -> None:
        self.values = values

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def __iter__(self) -> Any:
        return iter(self.values)

    def getlist(self, name: str) -> list[str]:
        return [self.values[name]] if name in self.values else []


def _bound(field: Any, posted: str | None = None, data: Any = None) -> Any:
    form_class = type("F", (Form,), {"f": field})
    form = form_class(_Post(f=posted) if posted is not None else None, data={"f": data})
    form.validate()
    return form.f


# -- what SQLAdmin 0.32 does on its own (why the fields exist) --------------------------------


def test_sqladmin_has_no_converter_for_float_columns() -> None:
    prop = sa_inspect(Specimen).column_attrs["ratio"]
    with pytest.raises(NoConverterFound):
        ModelConverter().get_converter(prop)
    assert ResourceConverter().get_converter(prop) is not None


def test_sqladmin_cannot_parse_a_sqlmodel_string_key() -> None:
    with pytest.raises(TypeError):
        object_identifier_values("EUR", Currency)


def test_sqladmin_refuses_a_zero_duration_and_shows_an_empty_list_as_an_object() -> None:
    assert _bound(IntervalField(), "0:00:00").errors
    assert _bound(SQLAdminJSONField(), data=[])._value() == "{}"


def test_sqladmin_internals_the_views_rely_on() -> None:
    for name in ("_stmt_by_identifier", "_run_query", "get_form_data_for_edit"):
        assert callable(getattr(ModelView, name)), name
    assert callable(QueryAjaxModelLoader.format_by_pk)
    assert callable(ModelConverter._prepare_column)


# -- our fields ---------------------------------------------------------------------------------


def test_json_field_round_trips_any_json_and_explains_errors() -> None:
    assert _bound(JSONField(), data=[])._value() == "[]"
    assert _bound(JSONField(), data=None)._value() == ""
    assert _bound(JSONField(), '{"a": [1, null]}').data == {"a": [1, None]}
    assert _bound(JSONField(), "  ").data is None
    bad = _bound(JSONField(), '{"a": 1,}')
    assert bad.errors == [
        "Invalid JSON: Expecting property name enclosed in double quotes (line 1, column 9)"
    ]


def test_base64_field() -> None:
    assert _bound(Base64Field(), data=b"\x00\xff")._value() == "AP8="
    assert _bound(Base64Field(), "AP8=\n").data == b"\x00\xff"
    assert _bound(Base64Field(), "").data is None
    assert _bound(Base64Field(), "AP8").errors  # no padding
    assert _bound(Base64Field(), "A_8=").errors  # URL-safe alphabet is not RFC 4648 base64


def test_time_field_keeps_seconds_and_refuses_time_zones() -> None:
    assert _bound(TimeOfDayField(), data=time(8, 30, 15))._value() == "08:30:15"
    assert _bound(TimeOfDayField(), data=time(8, 30, 15, 5))._value() == "08:30:15.000005"
    assert _bound(TimeOfDayField(), "08:30").data == time(8, 30)
    assert _bound(TimeOfDayField(), "08:30+02:00").errors
    assert _bound(TimeOfDayField(), "8h30").errors


def test_duration_field_takes_zero_and_iso_8601() -> None:
    assert _bound(DurationField(), "0:00:00").data == timedelta(0)
    assert _bound(DurationField(), "P1DT2H").data == timedelta(days=1, hours=2)
    assert _bound(DurationField(), "").data is None
    assert "Not a valid duration" in _bound(DurationField(), "soon").errors[0]


class _Shade(enum.Enum):
    light_blue = "lb"
    dark_blue = "db"


def test_enum_options_are_the_values_the_schemas_take() -> None:
    assert enum_choices(Enum(_Shade)) == [("lb", "lb"), ("db", "db")]
    assert enum_choices(Enum("a", "b", name="plain")) == [("a", "a"), ("b", "b")]


def test_exported_values_are_written_as_the_api_writes_them() -> None:
    assert export_value(b"\xfb\xff") == "+/8="
    assert export_value(Decimal("1.50")) == "1.50"
    assert export_value(_Shade.dark_blue) == "db"
    assert export_value(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert export_value(timedelta(days=1, seconds=1)) == "P1DT1S"
    assert csv_cell({"a": [1]}) == '{"a": [1]}' and csv_cell(None) == ""


@pytest.mark.parametrize(
    "text", ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\tx"]
)
def test_csv_export_keeps_formulas_as_text(text: str) -> None:
    """A spreadsheet would run these: the export writes them with a leading apostrophe."""
    [_, line] = list(csv_lines(["name"], [[text]]))
    assert next(csv.reader(io.StringIO(line))) == ["'" + text]


def test_csv_export_leaves_numbers_and_plain_text_alone() -> None:
    lines = list(csv_lines(["a", "b", "c"], [[-5, Decimal("-1.50"), "plain = text"]]))
    assert next(csv.reader(io.StringIO(lines[1]))) == ["-5", "-1.50", "plain = text"]
