"""Validation beyond the schemas, and schema values turned into column values.

The API, the admin and seeding each validate input with the resource's schemas, which know
types, lengths and bounds. What a schema cannot know, or a registry-given schema may leave
out, is checked here for every surface alike: text no database stores (NUL characters, lone
surrogates), lengths and integer ranges of the columns themselves, times out of range,
numbers that are not finite (`NaN`, `Infinity`: Python's JSON parser accepts them, and a float
column would store them), JSON values nested deeper than `MAX_VALUE_DEPTH`, and nulls on
columns that require a value. A password becomes its hash in a worker thread: argon2
takes ~0.2 s of CPU, which must never block the event loop.
"""

import functools
import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Column

from backend.auth import passwords
from backend.crud.query import ParameterError, check_text
from backend.crud.schemas import derive_schemas, integer_bounds
from backend.registry import ResourceOptions, column_python_type, data_columns
from backend.writes.errors import Problem, WriteError

# A JSON column's value is written back by orjson, which stops at 254 levels; each level also
# costs a recursion of every check on the way.
MAX_VALUE_DEPTH = 64


class ColumnValues:
    """Turns one resource's validated schema values into checked column values."""

    def __init__(self, resource: ResourceOptions) -> None:
        self.resource = resource
        self.table = resource.table
        self.columns: dict[str, Column[Any]] = {c.name: c for c in data_columns(self.table)}
        self.hashes_passwords = "hashed_password" in self.columns
        self._defaults = _insert_defaults(resource, derive_schemas(resource).create)
        # Python-side `onupdate` values (`updated_at`): set explicitly, so that every way of
        # running the UPDATE (also inside a CTE, where SQLAlchemy adds none) refreshes them.
        self.refreshed = [
            (c.name, c.onupdate)
            for c in self.columns.values()
            if c.onupdate is not None and getattr(c.onupdate, "is_callable", False)
        ]

    def check(self, values: dict[str, Any], *, creating: bool) -> None:
        """Raise a WriteError naming every field whose value the table cannot hold."""
        problems = []
        for name, value in values.items():
            column = self.columns.get(name)
            if value is None:
                if column is not None and _requires_value(column, creating=creating):
                    problems.append(Problem(name, f"{name} may not be null", "missing"))
                continue
            problem = _unstorable(value, column)
            if problem:
                problems.append(Problem(name, problem, "invalid"))
        if problems:
            raise WriteError(problems)

    async def hash_password(self, values: dict[str, Any]) -> None:
        """Replace a given `password` with its `hashed_password`, off the event loop."""
        if "password" not in values or not self.hashes_passwords:
            return
        password = values.pop("password")
        if password is not None:
            values["hashed_password"] = await passwords.hash_password_off_loop(password)

    def for_insert(self, values: dict[str, Any]) -> dict[str, Any]:
        """The INSERT's columns: `values` plus the table's defaults for what it leaves out.

        A derived Create schema already holds every rule of the table's fields, so its values
        need no second validation; a Create schema from the registry may not, so the table
        model validates those (and fills its defaults) as an ORM insert would.
        """
        if self._defaults is not None:
            columns = {k: v for k, v in values.items() if k in self.columns}
            for name, make in self._defaults:
                if name not in columns:
                    columns[name] = make()
            return self._server_defaults_for_nulls(columns)
        try:
            # A namespace, not a dict: sqlmodel reads relationships with getattr, and a
            # dict's `items` method would land in a relationship named `items`.
            row = self.resource.model.model_validate(
                SimpleNamespace(**values), from_attributes=True
            )
        except ValidationError as exc:
            raise WriteError(
                [
                    Problem(str(e["loc"][0]) if e["loc"] else None, e["msg"], "invalid")
                    for e in exc.errors()
                ]
            ) from None
        columns = {}
        for name in self.columns:
            value = getattr(row, name, None)
            if value is not None or name in values:
                columns[name] = value
        return self._server_defaults_for_nulls(columns)

    def _server_defaults_for_nulls(self, columns: dict[str, Any]) -> dict[str, Any]:
        """A null for a non-null column the database fills itself: left to the database."""
        return {
            name: value
            for name, value in columns.items()
            if value is not None
            or self.columns[name].nullable
            or self.columns[name].server_default is None
        }

    def for_update(self, values: dict[str, Any]) -> dict[str, Any]:
        """The UPDATE's columns: `values` and the refreshed `onupdate` columns."""
        columns = {k: v for k, v in values.items() if k in self.columns}
        for name, onupdate in self.refreshed:
            if name not in columns:
                columns[name] = onupdate.arg(None)  # type: ignore[attr-defined]
        return columns


def _requires_value(column: Column[Any], *, creating: bool) -> bool:
    if column.nullable or column.primary_key:
        return False
    # On a create the database may fill it (a server default); an update must give a value.
    return not creating or column.server_default is None


def _unstorable(value: Any, column: Column[Any] | None, depth: int = 0) -> str | None:
    """Why the databases cannot store `value` in `column`, or None."""
    if isinstance(value, str):
        try:
            check_text(value)
        except ParameterError as exc:
            return exc.msg
        length = getattr(column.type, "length", None) if column is not None else None
        if isinstance(length, int) and len(value) > length:
            return f"must be at most {length} characters long"
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int) and column is not None and column_python_type(column) is int:
        low, high = integer_bounds(column)
        if not low <= value <= high:
            return f"must be between {low} and {high}"
    elif isinstance(value, float | Decimal) and not _finite(value):
        return "must be a finite number"
    elif isinstance(value, datetime):
        try:
            value.astimezone(UTC)
        except (OverflowError, ValueError):
            return "is out of the supported date range"
    elif isinstance(value, list | tuple | dict) and depth >= MAX_VALUE_DEPTH:
        return f"must be nested at most {MAX_VALUE_DEPTH} levels deep"
    elif isinstance(value, list | tuple):
        return next((p for p in (_unstorable(v, None, depth + 1) for v in value) if p), None)
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = _unstorable(key, None) or _unstorable(item, None, depth + 1)
            if problem:
                return problem
    return None


def _finite(value: float | Decimal) -> bool:
    return value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)


def _insert_defaults(
    resource: ResourceOptions, create: type[BaseModel]
) -> list[tuple[str, Callable[[], Any]]] | None:
    """Defaults of the columns a derived Create schema leaves out (`created_at`, ...).

    None for a Create schema from the registry: the table model then validates each row.
    """
    if resource.create_schema is not None:
        return None
    defaults: list[tuple[str, Callable[[], Any]]] = []
    for name, info in resource.model.model_fields.items():
        if name not in resource.table.columns or name in create.model_fields:
            continue
        if info.default_factory is not None:
            defaults.append((name, info.default_factory))  # type: ignore[arg-type]
        elif info.default is not None and not info.is_required():
            defaults.append((name, functools.partial(_same, info.default)))
    return defaults


def _same(value: Any) -> Any:
    return value
