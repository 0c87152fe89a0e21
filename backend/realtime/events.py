"""History entries as realtime events: what a subscriber receives, encoded once for all of them.

An event is one history entry: `{cursor, resource, action, id, version, at, by, record}`.
`cursor` is the entry's id (monotonically increasing), which a client sends back to resume.
`record` is the row as `GET /api/<resource>/{id}` returns it, read when the event is sent
(so it may already show a later change, whose own event follows; null when the row is gone
by then); a delete has no `record`, a bulk load (`loaded`) has `rows` instead of a row.
"""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Select, Text, bindparam, cast, func, select

from backend.crud.connection import Connection, Row
from backend.crud.rows import dump_json, row_shape
from backend.registry import ResourceOptions, registry
from backend.writes.history import HISTORY, shown_changes

LOADED = "loaded"
DELETED = "deleted"
_WITH_RECORD = ("created", "updated")


@dataclass(frozen=True, slots=True, eq=False)
class Event:
    """One change, ready to send: `data` is its JSON, the rest is for choosing receivers."""

    cursor: int
    resource: ResourceOptions
    action: str
    row_id: Any
    # The values filters are evaluated against: the record (created, updated), the values
    # the row held (deleted), None for a load or a row gone since.
    values: Mapping[str, Any] | None
    data: str


_COLUMNS = (
    HISTORY.c.id,
    HISTORY.c.at,
    HISTORY.c.actor,
    HISTORY.c.resource,
    HISTORY.c.row_id,
    HISTORY.c.action,
    HISTORY.c.version,
    HISTORY.c.changes,
)
_AFTER = bindparam("after", type_=HISTORY.c.id.type)
_UPTO = bindparam("upto", type_=HISTORY.c.id.type)
_LIMIT = bindparam("page", type_=HISTORY.c.id.type)


def entries_after(*, upto: bool = False, snapshot: bool = False) -> Select[Any]:
    """The entries after `:after` (up to `:upto`), oldest first, `:page` at most; with
    `snapshot` (PostgreSQL) the statement's snapshot comes along on every row."""
    columns: tuple[Any, ...] = _COLUMNS
    if snapshot:
        columns = (*columns, cast(func.pg_current_snapshot(), Text))
    statement = select(*columns).where(HISTORY.c.id > _AFTER)
    if upto:
        statement = statement.where(HISTORY.c.id <= _UPTO)
    return statement.order_by(HISTORY.c.id).limit(_LIMIT)


def typed_id(resource: ResourceOptions, row_id: str | None) -> Any:
    """The history's text row id as the resource's key type (None when it is not one)."""
    if row_id is None:
        return None
    key_type = resource.primary_key_type
    try:
        if key_type is int:
            return int(row_id)
        if key_type is uuid.UUID:
            return uuid.UUID(row_id)
    except ValueError:
        return None
    return row_id


async def build_events(db: Connection, entries: Sequence[Row], dialect: str) -> list[Event]:
    """The events of `entries` (rows of `entries_after`), in order; the records of created and
    updated rows read in one query per resource. Entries of unregistered tables are skipped."""
    wanted: dict[str, set[Any]] = {}
    for entry in entries:
        name, action = entry[3], entry[5]
        if action in _WITH_RECORD and name in registry:
            key = typed_id(registry.get(name), entry[4])
            if key is not None:
                wanted.setdefault(name, set()).add(key)
    records: dict[tuple[str, str], dict[str, Any]] = {}
    for name, keys in wanted.items():
        resource = registry.get(name)
        shape = row_shape(resource, dialect)
        statement = shape.select().where(shape.pk.in_(sorted(keys, key=str)))
        for row in await db.all(statement):
            record = shape.record(row)
            records[(name, str(record[resource.primary_key]))] = record
    events = []
    for entry in entries:
        cursor, at, actor, name, row_id, action, version, changes = entry[:8]
        if isinstance(changes, str):  # SQLite's JSON text, when read raw
            changes = orjson.loads(changes)
        if name not in registry:
            continue
        resource = registry.get(name)
        key = typed_id(resource, row_id)
        head: dict[str, Any] = {
            "cursor": cursor,
            "resource": name,
            "action": action,
            "id": key if isinstance(key, int) or key is None else str(key),
            "version": version,
            "at": at,
            "by": actor,
        }
        values: Mapping[str, Any] | None = None
        data = dump_json(head)
        if action == LOADED:
            loaded = changes if isinstance(changes, dict) else {}
            data = data[:-1] + b',"rows":' + dump_json(loaded.get("rows")) + b"}"
        elif action == DELETED:
            before = shown_changes(resource, changes if isinstance(changes, dict) else {})
            values = {
                field: change[0] for field, change in before.items() if isinstance(change, list)
            }
        elif action in _WITH_RECORD:
            found = records.get((name, str(key)))
            values = found
            shown = b"null" if found is None else row_shape(resource, dialect).json(found)
            data = data[:-1] + b',"record":' + shown + b"}"
        events.append(Event(cursor, resource, action, key, values, data.decode()))
    return events


def message(kind: str, **fields: Any) -> str:
    """A control message's JSON (`reload`, `close`, `heartbeat`...)."""
    return dump_json({"type": kind, **fields}).decode()
