"""Turn database integrity errors into violations that name the table, fields and constraint.

Shared by the API (409 responses), the admin (form errors) and seeding (load errors), on both
PostgreSQL (asyncpg reports the constraint name) and SQLite (the message names the columns or
the constraint; foreign-key failures name nothing, so callers check references first).
"""

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Table, UniqueConstraint
from sqlalchemy.exc import IntegrityError

from backend.db import metadata

Kind = Literal["unique", "foreign_key", "check", "not_null", "other"]

_SQLITE_PATTERNS: list[tuple[Kind, re.Pattern[str]]] = [
    ("unique", re.compile(r"UNIQUE constraint failed: (?P<columns>.+)$")),
    ("not_null", re.compile(r"NOT NULL constraint failed: (?P<columns>.+)$")),
    ("check", re.compile(r"CHECK constraint failed: (?P<constraint>\S+)")),
    ("foreign_key", re.compile(r"FOREIGN KEY constraint failed")),
]
_POSTGRES_KINDS: dict[str, Kind] = {
    "23505": "unique",
    "23503": "foreign_key",
    "23514": "check",
    "23502": "not_null",
}


@dataclass(frozen=True)
class Violation:
    """What an integrity error violated, as far as the database said."""

    kind: Kind
    table: str | None
    fields: tuple[str, ...]
    constraint: str | None

    @property
    def field(self) -> str | None:
        """The one field to blame, when there is exactly one."""
        return self.fields[0] if len(self.fields) == 1 else None

    def message(self) -> str:
        """A sentence for a person, naming the fields."""
        names = " + ".join(self.fields) if self.fields else None
        if self.kind == "unique":
            return f"{names or 'a unique value'} must be unique: a row with this value exists"
        if self.kind == "foreign_key":
            if names:
                return f"{names} refers to a row that does not exist (or is still referenced)"
            return "a referenced row does not exist (or the row is still referenced)"
        if self.kind == "check":
            where = f"{names} " if names else ""
            return f"{where}violates the rule {self.constraint or 'of the table'}".strip()
        if self.kind == "not_null":
            return f"{names or 'a required field'} is required"
        return "the change violates a database constraint"


@cache
def _constraints_by_name() -> dict[str, tuple[Table, object]]:
    found: dict[str, tuple[Table, object]] = {}
    for table in metadata.tables.values():
        for constraint in table.constraints:
            if constraint.name:
                found[str(constraint.name)] = (table, constraint)
        for index in table.indexes:
            if index.name:
                found[str(index.name)] = (table, index)
    return found


def _constraint_fields(constraint_name: str | None) -> tuple[str | None, tuple[str, ...]]:
    if constraint_name is None or constraint_name not in _constraints_by_name():
        return None, ()
    table, constraint = _constraints_by_name()[constraint_name]
    if isinstance(constraint, UniqueConstraint | ForeignKeyConstraint):
        return table.name, tuple(c.name for c in constraint.columns)
    if isinstance(constraint, CheckConstraint):
        text = str(constraint.sqltext)
        mentioned = [c.name for c in table.columns if re.search(rf"\b{c.name}\b", text)]
        return table.name, tuple(mentioned)
    columns = getattr(constraint, "columns", ())
    return table.name, tuple(c.name for c in columns)


def describe_integrity_error(exc: IntegrityError) -> Violation:
    """What `exc` violated: kind, table, fields and constraint name where known."""
    original = exc.orig
    cause = getattr(original, "__cause__", None)
    sqlstate = getattr(cause, "sqlstate", None) or getattr(original, "sqlstate", None)
    if sqlstate in _POSTGRES_KINDS:
        kind = _POSTGRES_KINDS[sqlstate]
        constraint = getattr(cause, "constraint_name", None)
        table_name = getattr(cause, "table_name", None)
        if kind == "not_null":
            column = getattr(cause, "column_name", None)
            return Violation(kind, table_name, (column,) if column else (), constraint)
        table, fields = _constraint_fields(constraint)
        return Violation(kind, table_name or table, fields, constraint)
    message = str(original)
    for kind, pattern in _SQLITE_PATTERNS:
        match = pattern.search(message)
        if match is None:
            continue
        groups = match.groupdict()
        if "columns" in groups:
            qualified = [c.strip() for c in groups["columns"].split(",")]
            table = qualified[0].split(".")[0] if "." in qualified[0] else None
            return Violation(kind, table, tuple(c.split(".")[-1] for c in qualified), None)
        if "constraint" in groups:
            table, fields = _constraint_fields(groups["constraint"])
            return Violation(kind, table, fields, groups["constraint"])
        return Violation(kind, None, (), None)
    return Violation("other", None, (), None)
