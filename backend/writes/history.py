"""Writing and reading the history: the entry of each change, and its values for display.

An entry's values are written as the API writes them (`rows.dump_json`). The PostgreSQL fast
path builds its entry in SQL, inside the statement that makes the change (`sql_value`), where
a few types come out in PostgreSQL's own JSON form (a timestamp with `+00:00`, an interval in
seconds); `shown_changes` brings every value back to the API's form, whichever path wrote it.
"""

import base64
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Table,
    Text,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB

from backend.crud.connection import Connection
from backend.crud.rows import dump_json
from backend.models.history import HistoryEntry
from backend.registry import ResourceOptions, column_python_type, data_columns
from backend.writes.actor import Actor

HISTORY: Table = HistoryEntry.__table__  # type: ignore[attr-defined]
CHANGED = "changed"  # what a secret column's change is recorded as
# jsonb_build_object takes at most 100 arguments: 50 fields per call, joined with ||
_FIELDS_PER_OBJECT = 40


def is_secret(name: str) -> bool:
    """A column whose values the history never stores (a password hash)."""
    return "password" in name


def encode(value: Any) -> Any:
    """`value` as the API writes it in JSON (a Decimal as a string, bytes as base64...)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, time):
        return value.isoformat()  # as RowShape.record writes times of day
    return orjson.loads(dump_json(value))


def diff(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    fields: Iterable[str],
) -> dict[str, Any]:
    """`{field: [before, after]}` for each of `fields` whose value differs."""
    changes: dict[str, Any] = {}
    for name in fields:
        old = None if before is None else before.get(name)
        new = None if after is None else after.get(name)
        if before is not None and after is not None and _same(old, new):
            continue
        if before is None and new is None:
            continue  # a create: only the values it set
        if is_secret(name):
            changes[name] = CHANGED
        else:
            changes[name] = [encode(old), encode(new)]
    return changes


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, list) and isinstance(new, list):
        try:
            return sorted(old) == sorted(new)  # link ids: a set
        except TypeError:
            return bool(old == new)
    return bool(old == new)


def actor_value(actor: Actor) -> Any:
    """The entry's `actor`: the label, or the user's email read in the same statement."""
    if actor.label is not None:
        return actor.label
    users: Table = _users_table()
    email = select(users.c.email).where(users.c.id == actor.user_id).scalar_subquery()
    return func.coalesce(email, f"user:{actor.user_id}")


@cache
def _users_table() -> Table:
    from backend.models import User

    table: Table = User.__table__  # type: ignore[attr-defined]
    return table


def entry(
    *,
    at: datetime,
    actor: Actor,
    resource: str,
    row_id: Any,
    action: str,
    version: int | None,
    changes: dict[str, Any],
) -> dict[str, Any]:
    """The column values of one history entry."""
    return {
        "at": at,
        "actor_id": actor.user_id,
        "actor": actor_value(actor),
        "resource": resource,
        "row_id": None if row_id is None else str(row_id),
        "action": action,
        "version": version,
        "changes": changes,
    }


async def record(db: Connection, **values: Any) -> None:
    """Insert one entry (see `entry` for the arguments), in the caller's transaction."""
    await db.execute(insert(HISTORY).values(entry(**values)))


# -- the PostgreSQL fast path: the entry built in SQL -------------------------------------


def sql_value(expression: ColumnElement[Any], column: Column[Any]) -> ColumnElement[Any]:
    """A column's value as JSONB, as close to the API's JSON as SQL makes it cheaply."""
    python_type = column_python_type(column)
    if python_type is Decimal:
        return func.to_jsonb(cast(expression, Text))  # digits as stored, as a string
    if python_type is bytes:
        encoded = func.translate(func.encode(expression, "base64"), "\n", "")
        return func.to_jsonb(encoded)
    if python_type is timedelta:
        return func.to_jsonb(func.extract("epoch", expression))  # seconds; shown as ISO 8601
    if isinstance(column.type, JSON) and not isinstance(column.type, JSONB):
        return cast(expression, JSONB)
    return func.to_jsonb(expression)


def comparable(expression: ColumnElement[Any], column: Column[Any]) -> ColumnElement[Any]:
    """An expression PostgreSQL can compare with IS DISTINCT FROM (json has no equality)."""
    if isinstance(column.type, JSON) and not isinstance(column.type, JSONB):
        return cast(expression, JSONB)
    return expression


def sql_changes(
    pairs: Iterable[tuple[Column[Any], ColumnElement[Any] | None, ColumnElement[Any] | None]],
) -> ColumnElement[Any]:
    """The entry's `changes` as one JSONB expression.

    `pairs` holds (column, before, after) expressions (before None on create, after None on
    delete); on an update, a field whose value did not change is left out.
    """
    parts: list[ColumnElement[Any]] = []
    for column, before, after in pairs:
        if is_secret(column.name):
            value: ColumnElement[Any] = func.to_jsonb(literal(CHANGED, Text))
        else:
            value = func.jsonb_build_array(
                literal(None) if before is None else sql_value(before, column),
                literal(None) if after is None else sql_value(after, column),
            )
        item: ColumnElement[Any] = func.jsonb_build_object(literal(column.name, Text), value)
        if before is not None and after is not None:
            distinct = comparable(before, column).is_distinct_from(comparable(after, column))
            item = _when(distinct, item)
        elif before is None and after is not None:
            item = _when(after.is_not(None), item)
        parts.append(item)
    if not parts:
        return cast(literal("{}"), JSONB)
    combined = parts[0]
    for part in parts[1:]:
        combined = combined.op("||")(part)
    return combined


def _when(condition: ColumnElement[bool], item: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((condition, item), else_=cast(literal("{}"), JSONB))


# -- reading ------------------------------------------------------------------------------


@cache
def _adapter(python_type: type) -> TypeAdapter[Any]:
    return TypeAdapter(python_type)


def shown_value(column: Column[Any] | None, value: Any) -> Any:
    """A stored history value in the API's encoding, whichever path wrote it."""
    if column is None or value is None:
        return value
    python_type = column_python_type(column)
    if python_type in (datetime, time, timedelta, date) and isinstance(value, str | int | float):
        try:
            typed = _adapter(python_type).validate_python(value)
        except ValidationError:
            return value
        return encode(typed)
    if python_type is bytes and isinstance(value, str):
        try:
            return encode(base64.b64decode(value, validate=False))
        except ValueError:
            return value
    return value


def shown_changes(resource: ResourceOptions, changes: Mapping[str, Any]) -> dict[str, Any]:
    """An entry's `changes` with each value in the API's encoding."""
    columns = {c.name: c for c in data_columns(resource.table)}
    shown: dict[str, Any] = {}
    for name, change in changes.items():
        if isinstance(change, list) and len(change) == 2:
            column = columns.get(name)
            shown[name] = [shown_value(column, change[0]), shown_value(column, change[1])]
        else:
            shown[name] = change
    return shown


async def changed_fields_since(
    db: Connection, resource: str, row_id: Any, version: int
) -> list[str]:
    """The fields changed in the row's entries after `version`, in order of first change."""
    statement = (
        select(HISTORY.c.changes)
        .where(
            and_(
                HISTORY.c.resource == resource,
                HISTORY.c.row_id == str(row_id),
                HISTORY.c.version > version,
            )
        )
        .order_by(HISTORY.c.id)
    )
    fields: dict[str, None] = {}
    for (changes,) in await db.all(statement):
        if isinstance(changes, str):  # SQLite's JSON text, when read raw
            changes = orjson.loads(changes)
        fields.update(dict.fromkeys(changes or {}))
    return list(fields)
