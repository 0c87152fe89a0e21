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
    String,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    literal_column,
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
        if (before is None and new is None) or (after is None and old is None):
            continue  # a create: only the values it set; a delete: only the values it held
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


@cache
def users_table() -> Table:
    from backend.models import User

    table: Table = User.__table__  # type: ignore[attr-defined]
    return table


def actor_expression(label: Any, user_id: Any) -> ColumnElement[Any]:
    """The entry's `actor`: the label given, or else the user's email, read in the same
    statement (the API knows a caller by the id in their token)."""
    users = users_table()
    email = select(users.c.email).where(users.c.id == user_id).scalar_subquery()
    return func.coalesce(label, email, literal("unknown user", String()))


@cache
def _insert_entry() -> Any:
    """INSERT one entry, every value a parameter (compiled once)."""
    columns = HISTORY.c
    return insert(HISTORY).values(
        at=bindparam("h_at", type_=columns.at.type),
        actor_id=bindparam("h_actor_id", type_=columns.actor_id.type),
        actor=actor_expression(
            bindparam("h_actor", type_=String()),
            bindparam("h_actor_id", type_=columns.actor_id.type),
        ),
        resource=bindparam("h_resource", type_=String()),
        row_id=bindparam("h_row_id", type_=String()),
        action=bindparam("h_action", type_=String()),
        version=bindparam("h_version", type_=columns.version.type),
        changes=bindparam("h_changes", type_=columns.changes.type),
    )


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
    """The column values of one entry. A user known only by id has no label here: `record`
    reads their email in its statement; a many-row INSERT (`backend.writes.bulk`) needs it."""
    return {
        "at": at,
        "actor_id": actor.user_id,
        "actor": actor.label,
        "resource": resource,
        "row_id": None if row_id is None else str(row_id),
        "action": action,
        "version": version,
        "changes": changes,
    }


async def record(db: Connection, **values: Any) -> None:
    """Insert one entry (`entry`'s arguments), in the caller's transaction."""
    parameters = {f"h_{name}": value for name, value in entry(**values).items()}
    await db.execute(_insert_entry(), parameters)


# -- the PostgreSQL fast path: the entry built in SQL -------------------------------------


_NULL = literal_column("NULL::jsonb", JSONB)
_EMPTY = literal_column("'{}'::jsonb", JSONB)


def sql_value(expression: ColumnElement[Any], column: Column[Any] | None) -> ColumnElement[Any]:
    """A column's value as JSONB, as close to the API's JSON as SQL makes it cheaply."""
    if column is None:  # link ids: an array of keys
        return func.to_jsonb(expression)
    python_type = column_python_type(column)
    column_type = postgresql_type(column)
    if python_type is Decimal:
        return func.to_jsonb(cast(expression, Text))  # digits as stored, as a string
    if python_type is bytes:
        encoded = func.translate(func.encode(expression, "base64"), "\n", "")
        return func.to_jsonb(encoded)
    if python_type is timedelta:
        return func.to_jsonb(func.extract("epoch", expression))  # seconds; shown as ISO 8601
    if isinstance(column_type, JSON) and not isinstance(column_type, JSONB):
        return cast(expression, JSONB)
    return func.to_jsonb(expression)


def postgresql_type(column: Column[Any]) -> Any:
    """The column's type on PostgreSQL (a `with_variant` type's variant there)."""
    variants = getattr(column.type, "_variant_mapping", None) or {}
    return variants.get("postgresql", column.type)


def comparable(expression: ColumnElement[Any], column: Column[Any] | None) -> ColumnElement[Any]:
    """An expression PostgreSQL can compare with IS DISTINCT FROM (json has no equality)."""
    column_type = postgresql_type(column) if column is not None else None
    if isinstance(column_type, JSON) and not isinstance(column_type, JSONB):
        return cast(expression, JSONB)
    return expression


def sql_changes(
    pairs: Iterable[
        tuple[str, Column[Any] | None, ColumnElement[Any] | None, ColumnElement[Any] | None]
    ],
) -> ColumnElement[Any]:
    """The entry's `changes` as one JSONB expression.

    `pairs` holds (field, its column or None for link ids, before, after) with before None on
    create and after None on delete; on an update, a field whose value did not change is left
    out, and so is a field left null by a create or found null by a delete.

    Built cheaply, as it is on every write: one `jsonb_build_object` of every field whose
    change is null when there is none, with those nulls stripped. A JSON column's own values
    may hold nulls the strip would remove: such fields are added one by one instead.
    """
    plain: list[ColumnElement[Any]] = []
    nested: list[ColumnElement[Any]] = []
    any_condition = False
    for name, column, before, after in pairs:
        if is_secret(name):
            value: ColumnElement[Any] = _CHANGED
        else:
            value = func.jsonb_build_array(
                _NULL if before is None else sql_value(before, column),
                _NULL if after is None else sql_value(after, column),
            )
        condition: ColumnElement[bool] | None = None
        if before is not None and after is not None:
            condition = comparable(before, column).is_distinct_from(comparable(after, column))
            any_condition = True
        # A create's or a delete's null fields are written as [null, null] (cheaper than a
        # condition per field); `shown_changes` leaves them out.
        key = _text(name)
        if column is not None and isinstance(postgresql_type(column), JSON):
            item: ColumnElement[Any] = func.jsonb_build_object(key, value)
            nested.append(item if condition is None else _when(condition, item))
        else:
            plain += [key, value if condition is None else case((condition, value), else_=_NULL)]
    strip = func.jsonb_strip_nulls if any_condition else _same_expression
    parts: list[ColumnElement[Any]] = [
        strip(func.jsonb_build_object(*plain[start : start + _ARGUMENTS]))
        for start in range(0, len(plain), _ARGUMENTS)
    ]
    parts += nested
    if not parts:
        return _EMPTY
    combined: ColumnElement[Any] = parts[0]
    for part in parts[1:]:
        combined = combined.op("||")(part)
    return combined


# A function takes at most 100 arguments: 50 fields per jsonb_build_object.
_ARGUMENTS = 100
_CHANGED = literal_column(f"'\"{CHANGED}\"'::jsonb", JSONB)


def _same_expression(expression: ColumnElement[Any]) -> ColumnElement[Any]:
    return expression


def _text(value: str) -> ColumnElement[Any]:
    """A constant of the statement (a column's name), written into its SQL."""
    return literal_column("'" + value.replace("'", "''") + "'", Text)


def _when(condition: ColumnElement[bool], item: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((condition, item), else_=_EMPTY)


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


@cache
def _columns(resource: ResourceOptions) -> dict[str, Column[Any]]:
    """A resource's data columns by name (built once: a page of entries asks per entry)."""
    return {c.name: c for c in data_columns(resource.table)}


def shown_changes(resource: ResourceOptions, changes: Mapping[str, Any]) -> dict[str, Any]:
    """An entry's `changes` with each value in the API's encoding."""
    columns = _columns(resource)
    shown: dict[str, Any] = {}
    for name, change in changes.items():
        if isinstance(change, list) and len(change) == 2:
            if change[0] is None and change[1] is None:
                continue  # a null field of a created or deleted row
            column = columns.get(name)
            shown[name] = [shown_value(column, change[0]), shown_value(column, change[1])]
        else:
            shown[name] = change
    return shown


async def changed_fields_since(
    db: Connection, resource: str, row_id: Any, version: int
) -> list[str]:
    """The fields changed in the row's entries after `version`, in order of first change.

    Only the row's own entries: SQLite gives a deleted row's id to the next row inserted
    when it was the highest, so entries before the id's last `deleted` one belong to a row
    that no longer exists.
    """
    same_row = and_(HISTORY.c.resource == resource, HISTORY.c.row_id == str(row_id))
    last_delete = (
        select(func.coalesce(func.max(HISTORY.c.id), 0))
        .where(same_row, HISTORY.c.action == "deleted")
        .scalar_subquery()
    )
    statement = (
        select(HISTORY.c.changes)
        .where(same_row, HISTORY.c.version > version, HISTORY.c.id > last_delete)
        .order_by(HISTORY.c.id)
    )
    fields: dict[str, None] = {}
    for (changes,) in await db.all(statement):
        if isinstance(changes, str):  # SQLite's JSON text, when read raw
            changes = orjson.loads(changes)
        fields.update(dict.fromkeys(changes or {}))
    return list(fields)
