"""List parsing per column type, below the HTTP layer: what each kind of column offers.

The contract suite checks the behaviour over HTTP for every registered column; these pin the
classification it rests on, including column shapes the fixture app does not have.
"""

import pytest
from sqlalchemy import Column, Enum, MetaData, String, Table
from sqlalchemy.dialects import postgresql

from backend.crud.query import FieldSpec, ParameterError, column_kind, field_specs
from backend.registry import registry

KINDS = {
    "slug": ("text", "text"),
    "count": ("scalar", "scalar"),
    "flag": ("scalar", "scalar"),
    "found_on": ("scalar", "scalar"),
    "opens_at": ("scalar", "scalar"),
    "duration": ("scalar", "scalar"),
    "token": ("scalar", "scalar"),
    "kind": ("enum", "enum"),
    "grade": ("enum", "enum"),
    "attributes": ("json", "json"),
    "readings": ("json", "json"),
    "labels": ("json", "array"),  # JSON on SQLite, an ARRAY on PostgreSQL
    "photo": ("bytes", "bytes"),
}


@pytest.mark.parametrize(("column", "kinds"), KINDS.items())
def test_each_fixture_column_has_its_kind_on_each_database(
    column: str, kinds: tuple[str, str]
) -> None:
    table = registry.get("fx_specimens").table
    assert (column_kind(table.c[column], "sqlite"), column_kind(table.c[column], "postgresql")) == (
        kinds
    )


def test_operators_and_sorting_follow_the_kind() -> None:
    specs = field_specs(registry.get("fx_specimens"))
    assert specs["duration"].python_type.__name__ == "timedelta"  # not Interval's DATETIME
    assert "like" in specs["slug"].operators and "gt" in specs["found_on"].operators
    assert specs["flag"].operators == ("eq", "ne", "in", "isnull")
    assert specs["kind"].operators == ("eq", "ne", "in", "isnull")
    assert specs["attributes"].operators_on("sqlite") == ("isnull",)
    assert specs["attributes"].operators_on("postgresql") == ("isnull", "contains", "has_key")
    assert specs["labels"].operators_on("postgresql") == ("isnull", "contains")
    assert [name for name, spec in specs.items() if not spec.sortable] == [
        "attributes",
        "readings",
        "labels",
        "photo",
    ]


def test_an_enum_of_plain_strings_is_an_enum_not_text() -> None:
    table = Table("t", MetaData(), Column("state", Enum("draft", "done", name="state")))
    spec = FieldSpec(name="state", python_type=str, column=table.c.state)
    assert not spec.is_text  # no like/ilike, no search: PostgreSQL has no LIKE on enum types
    assert spec.operators == ("eq", "ne", "in", "isnull")
    assert spec.parse("done") == "done"
    with pytest.raises(ParameterError, match="draft, done"):
        spec.parse("gone")
    sorted_by = spec.sort_key("postgresql").compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    assert str(sorted_by) == "t.state"  # a native enum type sorts in declared order itself
    plain = Table("p", MetaData(), Column("state", Enum("b", "a", native_enum=False)))
    key = FieldSpec(name="state", python_type=str, column=plain.c.state).sort_key("sqlite")
    assert "CASE p.state WHEN" in str(key) and "THEN 0" in str(key)


def test_a_text_column_is_text() -> None:
    table = Table("t", MetaData(), Column("name", String(10)))
    assert FieldSpec(name="name", python_type=str, column=table.c.name).is_text
