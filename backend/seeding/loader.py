"""Load a seed set: upsert every row by natural key, in dependency order, in one transaction.

Each row is written with natural keys instead of ids, resolved against the database (rows
loaded earlier in the same transaction included), then validated by the same create schema
the API uses. A row whose natural key exists is updated with the fields the file lists, and
only when a value differs, so loading a set twice changes nothing. Every row is
created or updated through the table's `Writer` (`backend.writes.service`), as the API and the
admin write: the same checks, the table's hooks, a bumped version and a history entry (actor
`seed:<set>`) in the load's transaction. Any bad row aborts the whole load: the transaction is
rolled back and the error names the file, row, field and reason (never SQL).

A table that refers to itself (a tree's `parent`) is loaded parents first: the file's rows are
put in a stable topological order (the file's own order when it already lists parents first, as
a dump does), so that each row is written before the rows that refer to it, and a cycle - in
the file, or closed through rows already stored, for tables registered with `tree=` - is an
error naming the row.
"""

import datetime as dt
from collections.abc import Awaitable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from anyio import to_thread
from pydantic import (
    AwareDatetime,
    BaseModel,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic import Field as PydanticField
from pydantic.fields import FieldInfo
from sqlalchemy import JSON, LargeBinary, Time, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import TypeDecorator

from backend.auth.passwords import is_password_hash, verify_password
from backend.crud.connection import SQLAlchemyConnection
from backend.seeding.format import SeedError, SeedFile, describe_value, read_set
from backend.seeding.progress import Progress
from backend.seeding.tables import (
    Key,
    KeyIndexes,
    Link,
    SeedTable,
    link_tables,
    seed_table,
    seed_tables,
)
from backend.seeding.transaction import one_transaction
from backend.trees import closes_cycle, needs_cycle_check
from backend.writes.actor import Actor
from backend.writes.errors import RowNotFound, VersionMismatch, WriteError
from backend.writes.service import Written, writer_for


@dataclass
class TableReport:
    """What a load did, or would do, to one table."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    links_added: int = 0
    links_removed: int = 0

    def describe(self) -> str:
        text = f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"
        if self.links_added or self.links_removed:
            text += f", {self.links_added} links added, {self.links_removed} removed"
        return text


@dataclass
class LoadReport:
    """Per table, in load order, what the load did."""

    tables: dict[str, TableReport] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return any(
            r.created or r.updated or r.links_added or r.links_removed for r in self.tables.values()
        )


async def load_set(
    engine: AsyncEngine, directory: Path, *, dry_run: bool = False, progress: bool = False
) -> LoadReport:
    """Upsert the seed set in `directory`; with `dry_run`, validate everything, write nothing.

    The history names the set by its folder: `seed:demo` for `seed/demo`.
    """
    files = read_set(directory)
    _check_table_names(files)
    actor = Actor.seed(directory.name)
    try:
        return await _load_once(engine, files, actor, dry_run=dry_run, progress=progress)
    except _Replay:
        # The database refused a statement inside the load's one transaction, which on
        # PostgreSQL then refuses every later statement - also the write service's own
        # queries that name the field. Everything was rolled back: replay the load with a
        # savepoint around each write, which names the row and field, then report.
        await _load_once(engine, files, actor, dry_run=True, progress=False, savepoints=True)
        raise SeedError("the load failed in the database, but replaying it did not") from None


async def _load_once(
    engine: AsyncEngine,
    files: dict[str, SeedFile],
    actor: Actor,
    *,
    dry_run: bool,
    progress: bool,
    savepoints: bool = False,
) -> LoadReport:
    async with one_transaction(engine, dry_run=dry_run) as connection:
        with Progress(enabled=progress) as bar:
            report = await _Loader(connection, files, bar, actor, savepoints=savepoints).run()
    report.dry_run = dry_run
    return report


class _Replay(Exception):
    """A write failed in the database without savepoints: replay the load with them."""


def _check_table_names(files: dict[str, SeedFile]) -> None:
    known = {table.name for table in seed_tables()}
    links = {link.table.name: (t, link) for t in seed_tables() for link in t.links}
    for name, seed_file in files.items():
        if name in known:
            continue
        if name in link_tables():
            owner, link = links[name]
            raise SeedError(
                f"{seed_file.shown}: {name} is written through {owner.name}.yaml, "
                f"as each row's {link.field!r} list"
            )
        raise SeedError(
            f"{seed_file.shown}: no registered table {name!r} (tables: {', '.join(sorted(known))})"
        )


@dataclass(frozen=True)
class _Where:
    """A row of a seed file, for error messages: `products.yaml row 3 (sku=LAMP-1)`."""

    file: SeedFile
    number: int
    raw: Any
    table: SeedTable

    def label(self) -> str:
        text = f"{self.file.shown} row {self.number}"
        if isinstance(self.raw, dict):
            shown = [
                f"{name}={describe_value(self.raw[name])}"
                for name in self.table.natural_key_fields
                if name in self.raw
            ]
            if shown:
                text += f" ({', '.join(shown)})"
        return text

    def error(self, reason: str, field_name: str | None = None) -> SeedError:
        where = f"field {field_name}: " if field_name else ""
        return SeedError(f"{self.label()}: {where}{reason}")


@dataclass
class _Row:
    where: _Where
    values: dict[str, Any]  # column -> value, every column the schema gives
    listed: set[str]  # the columns the file names (an update touches only these)
    password: str | None
    links: dict[Link, list[Any]]


@dataclass
class _PendingLinks:
    """A row's links to rows of its own table, written once the whole file is."""

    where: _Where
    table: SeedTable
    key: Key
    link: Link
    values: list[Any]


class _Loader:
    def __init__(
        self,
        connection: AsyncConnection,
        files: dict[str, SeedFile],
        progress: Progress,
        actor: Actor,
        *,
        savepoints: bool,
    ) -> None:
        self.connection = connection
        # The Writer's connection. The load owns its one transaction and rolls it all back on
        # any error, so writes need no savepoint of their own (3x faster on SQLite); a failed
        # statement then fails the load, which is replayed with savepoints to say why.
        self.savepoints = savepoints
        self.db = SQLAlchemyConnection(connection, joined=True, savepoints=savepoints)
        self.dialect = connection.dialect.name
        self.actor = actor
        self.files = files
        self.progress = progress
        self.indexes = KeyIndexes()
        self.fresh: set[str] = set()  # tables whose KeyIndex matches the database
        self.pending: list[_PendingLinks] = []
        self.report = LoadReport()

    async def run(self) -> LoadReport:
        for table in seed_tables():
            seed_file = self.files.get(table.name)
            if seed_file is not None:
                self.report.tables[table.name] = TableReport()
                await self._load_table(table, seed_file)
        await self._load_own_links()
        return self.report

    async def _ensure_index(self, name: str) -> None:
        """Read `name`'s keys (and those its key refers to) unless already up to date."""
        table = seed_table(name)
        for column in table.natural_key:
            reference = table.reference_for_column(column)
            if reference is not None:
                await self._ensure_index(reference.target)
        if name in self.fresh:
            return
        index = self.indexes[name]
        index.ids.clear()
        index.keys.clear()
        columns = [table.table.c[table.primary_key], *(table.table.c[c] for c in table.natural_key)]
        result = await self.connection.execute(select(*columns))
        for row in result:
            index.add(tuple(row[1:]), row[0])
        self.fresh.add(name)

    async def _load_table(self, table: SeedTable, seed_file: SeedFile) -> None:
        report = self.report.tables[table.name]
        for reference in table.references:
            await self._ensure_index(reference.target)
        for link in table.links:
            await self._ensure_index(link.target)
        await self._ensure_index(table.name)
        existing: dict[Key, RowMapping] = {}
        result = await self.connection.execute(select(table.table))
        for stored in result.mappings():
            existing[tuple(stored[c] for c in table.natural_key)] = stored
        stored_links = {
            link: await self._stored_links(link)
            for link in table.links
            if link.target != table.name
        }
        writer = writer_for(table.resource, self.dialect)
        seen: dict[Key, int] = {}
        task = self.progress.task(f"loading {table.name}", len(seed_file.rows))
        for number in self._load_order(table, seed_file):
            where = _Where(seed_file, number, seed_file.rows[number - 1], table)
            row = self._parse_row(table, where)
            key = tuple(row.values[c] for c in table.natural_key)
            if key in seen:
                first, second = sorted((seen[key], number))
                where = _Where(seed_file, second, seed_file.rows[second - 1], table)
                raise where.error(
                    f"same natural key ({', '.join(table.natural_key_fields)}) as row {first}"
                )
            seen[key] = number
            links: dict[Link, list[Any]] = {}
            for link, names in row.links.items():
                if link.target == table.name:  # may name rows further down: written last
                    self.pending.append(_PendingLinks(where, table, key, link, names))
                else:
                    links[link] = self._resolve_links(where, link, names)
            current = existing.get(key)
            if current is None:
                values = {**row.values, **{link.schema_field: ids for link, ids in links.items()}}
                if row.password is not None:
                    values["password"] = row.password  # hashed by the Writer
                written = await self._write(where, writer.create(self.db, values, self.actor))
                self.indexes[table.name].add(key, written.row_id)
                report.created += 1
                report.links_added += sum(len(ids) for ids in links.values())
            else:
                row_id = current[table.primary_key]
                changes = {
                    column: value
                    for column, value in row.values.items()
                    if column in row.listed and current[column] != value
                }
                if row.password is not None and not await _password_matches(
                    row.password, current["hashed_password"]
                ):
                    changes["password"] = row.password
                for link, ids in links.items():
                    linked = stored_links[link].get(row_id, set())
                    if set(ids) != linked:
                        changes[link.schema_field] = ids
                        report.links_added += len(set(ids) - linked)
                        report.links_removed += len(linked - set(ids))
                if changes:
                    await self._check_tree(table, where, row_id, changes)
                    await self._write(where, writer.update(self.db, row_id, changes, self.actor))
                    report.updated += 1
                else:
                    report.unchanged += 1
            self.progress.advance(task)
        self.fresh.discard(table.name)  # a hook may have changed a key: read again when needed

    def _resolve_links(self, where: _Where, link: Link, values: list[Any]) -> list[Any]:
        """The ids of the rows a link list names, in the file's order, without repeats."""
        ids = []
        for position, value in enumerate(values):
            try:
                ids.append(self.indexes.resolve(link.target, value))
            except ValueError as exc:
                raise where.error(str(exc), f"{link.field}[{position}]") from None
        return list(dict.fromkeys(ids))

    async def _stored_links(self, link: Link) -> dict[Any, set[Any]]:
        """Each stored row's linked ids."""
        local = link.table.c[link.local_column]
        remote = link.table.c[link.remote_column]
        stored: dict[Any, set[Any]] = {}
        for owner_id, target_id in await self.connection.execute(select(local, remote)):
            stored.setdefault(owner_id, set()).add(target_id)
        return stored

    async def _write(self, where: _Where, write: Awaitable[Written]) -> Written:
        """Run one Writer call; its refusal as the row's SeedError."""
        try:
            return await write
        except WriteError as exc:
            raise _write_error(where, exc) from None
        except (RowNotFound, VersionMismatch) as exc:  # not within one transaction
            raise where.error(str(exc)) from None
        except DBAPIError as exc:
            if not self.savepoints and _is_refusal(exc):
                raise _Replay() from None
            raise _database_error(where, exc) from None

    def _load_order(self, table: SeedTable, seed_file: SeedFile) -> list[int]:
        """The file's row numbers in the order to load them: file order, except that a row
        referred to by an earlier row (its parent) moves up just before it, so that every row
        is written after the rows it refers to. A cycle is an error naming a row in it."""
        rows = seed_file.rows
        if not table.self_references:
            return list(range(1, len(rows) + 1))
        numbers: dict[Key, int] = {}
        for number, raw in enumerate(rows, start=1):
            key = self._written_key(table, raw)
            if key is not None:
                numbers.setdefault(key, number)
        refers: dict[int, dict[int, str]] = {}  # row -> {row it refers to: field}
        for number, raw in enumerate(rows, start=1):
            refers[number] = {}
            if not isinstance(raw, dict):
                continue
            for reference in table.self_references:
                value = raw.get(reference.field)
                if value is None:
                    continue
                try:
                    target = numbers.get(self.indexes.parse_key(table, value))
                except (ValueError, KeyError):
                    continue  # malformed: reported when the row itself is read
                if target is not None:
                    refers[number].setdefault(target, reference.field)
        order: list[int] = []
        state: dict[int, bool] = {}  # False while on the path being walked, True when placed
        for first in range(1, len(rows) + 1):
            if first in state:
                continue
            state[first] = False
            path = [(first, iter(refers[first]))]
            while path:
                number, targets = path[-1]
                target = next(targets, None)
                if target is None:
                    state[number] = True
                    order.append(number)
                    path.pop()
                elif target not in state:
                    state[target] = False
                    path.append((target, iter(refers[target])))
                elif state[target] is False:
                    cycle = [n for n, _ in path][[n for n, _ in path].index(target) :]
                    raise self._cycle_error(table, seed_file, cycle, refers)
        return order

    def _written_key(self, table: SeedTable, raw: Any) -> Key | None:
        """The natural key of a row as the file writes it; None when it cannot be read (the
        row's own reading then says why)."""
        if not isinstance(raw, dict) or any(f not in raw for f in table.natural_key_fields):
            return None
        fields = table.natural_key_fields
        value = raw[fields[0]] if len(fields) == 1 else {f: raw[f] for f in fields}
        try:
            return self.indexes.parse_key(table, value)
        except (ValueError, KeyError):
            return None

    def _cycle_error(
        self,
        table: SeedTable,
        seed_file: SeedFile,
        cycle: list[int],
        refers: dict[int, dict[int, str]],
    ) -> SeedError:
        first = cycle[0]
        where = _Where(seed_file, first, seed_file.rows[first - 1], table)
        field_name = refers[first][cycle[1] if len(cycle) > 1 else first]
        if len(cycle) == 1:
            return where.error(f"a row cannot be its own {field_name}", field_name)
        shown = " -> ".join(
            f"row {n} ({_key_label(table, seed_file.rows[n - 1])})" for n in [*cycle, first]
        )
        return where.error(f"a cycle in the file: {shown}", field_name)

    async def _check_tree(
        self, table: SeedTable, where: _Where, row_id: Any, changes: dict[str, Any]
    ) -> None:
        """Refuse to move a stored row of a tree under itself or one of its descendants."""
        resource = table.resource
        if not needs_cycle_check(resource, row_id, changes):
            return
        assert resource.tree is not None
        parent_id = changes[resource.tree]
        field_name = table.seed_field(resource.tree)
        if parent_id == row_id:
            raise where.error(f"a row cannot be its own {field_name}", field_name)
        dialect = self.connection.dialect.name
        if await closes_cycle(self.connection.scalar, resource, row_id, parent_id, dialect=dialect):
            parent = describe_value(where.raw.get(field_name))
            raise where.error(
                f"{parent} is a descendant of this row: a row cannot be moved under itself",
                field_name,
            )

    def _parse_row(self, table: SeedTable, where: _Where) -> _Row:
        raw = where.raw
        if not isinstance(raw, dict):
            raise where.error(f"expected a mapping of field: value, found {describe_value(raw)}")
        payload: dict[str, Any] = {}
        timestamps: dict[str, Any] = {}
        links: dict[Link, list[Any]] = {}
        for name, value in raw.items():
            if not isinstance(name, str):
                raise where.error(f"field names must be text, found {describe_value(name)}")
            reference = table.reference_for_field(name)
            link = table.link_for_field(name)
            if reference is not None:
                try:
                    payload[reference.column] = self.indexes.resolve(reference.target, value)
                except ValueError as exc:
                    raise where.error(str(exc), name) from None
            elif link is not None:
                if not isinstance(value, list):
                    raise where.error(f"expected a list of {link.target} keys", name)
                links[link] = value
            elif (column_reference := table.reference_for_column(name)) is not None:
                target = column_reference.target
                raise where.error(
                    f"seed files carry no ids: write {column_reference.field}: followed by "
                    f"the {target} row's {', '.join(_key_fields(target))}",
                    name,
                )
            elif name == table.primary_key and not table.writes_primary_key:
                raise where.error(
                    "seed files carry no ids: rows are matched by their natural key "
                    f"({', '.join(table.natural_key_fields)})",
                    name,
                )
            elif name in table.timestamp_columns:
                try:
                    timestamps[name] = _AWARE.validate_python(value)
                except ValidationError as exc:
                    raise where.error(exc.errors()[0]["msg"], name) from None
            else:
                payload[name] = _column_value(table, where, name, value)
        try:
            model = _seed_schema(table).model_validate(payload)
        except ValidationError as exc:
            raise _validation_error(table, where, exc) from None
        values = model.model_dump()
        for name in _naive_time_columns(table):
            value = values.get(name)
            if isinstance(value, dt.time) and value.tzinfo is not None:
                raise where.error(
                    "a time of day without a UTC offset: the column stores no time zone",
                    table.seed_field(name),
                )
        listed = set(model.model_fields_set) | set(timestamps)
        for link in table.links:
            values.pop(link.schema_field, None)
        password = None
        if table.password_columns:
            password = values.pop("password", None)
            if values.get("hashed_password") is None:
                values.pop("hashed_password", None)
        values.update(timestamps)
        return _Row(where, values, listed, password, links)

    async def _load_own_links(self) -> None:
        """Links between rows of one table: each row's list may name rows written after it, so
        they are written once the table is, as an update of the rows whose links differ."""
        for pending in self.pending:
            table, link = pending.table, pending.link
            report = self.report.tables[table.name]
            await self._ensure_index(table.name)
            row_id = self.indexes[table.name].ids[pending.key]
            ids = self._resolve_links(pending.where, link, pending.values)
            local = link.table.c[link.local_column]
            remote = link.table.c[link.remote_column]
            result = await self.connection.execute(select(remote).where(local == row_id))
            stored = set(result.scalars())
            if set(ids) == stored:
                continue
            writer = writer_for(table.resource, self.dialect)
            changes = {link.schema_field: ids}
            await self._write(pending.where, writer.update(self.db, row_id, changes, self.actor))
            report.links_added += len(set(ids) - stored)
            report.links_removed += len(stored - set(ids))


_AWARE: TypeAdapter[Any] = TypeAdapter(AwareDatetime)
_JSON_SCALARS = (str, int, float, bool)


@cache
def _naive_time_columns(table: SeedTable) -> tuple[str, ...]:
    """Time-of-day columns without a time zone: a value with an offset would lose it."""
    return tuple(
        c.name for c in table.table.columns if isinstance(c.type, Time) and not c.type.timezone
    )


def _column_value(table: SeedTable, where: _Where, name: str, value: Any) -> Any:
    """Check what YAML reads before the schema does, where the two disagree about a type:
    bytes must be `!!binary` (a plain string would be taken as its UTF-8 bytes), JSON columns
    hold JSON data only (YAML also reads dates), and an unquoted time such as 12:30:00 is a
    base-60 integer to YAML 1.1, turned back into the time it was written as."""
    column = table.table.columns.get(name)
    if column is None or value is None:
        return value
    column_type = column.type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, LargeBinary) and not isinstance(value, bytes):
        raise where.error(
            f"expected bytes, written as !!binary followed by base64 (e.g. {name}: "
            f"!!binary aGVsbG8=), not {describe_value(value)}",
            name,
        )
    if isinstance(column_type, JSON):
        problem = _not_json(value)
        if problem is not None:
            path, found = problem
            raise where.error(
                f"{describe_value(found)} ({type(found).__name__}) is not JSON data: "
                "quote it to store it as text",
                name + path,
            )
    if isinstance(column_type, Time) and isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < 24 * 3600:
            return dt.time(value // 3600, value // 60 % 60, value % 60)
    return value


def _not_json(value: Any, path: str = "") -> tuple[str, Any] | None:
    """Where in `value` something is not JSON data (a date, a set...), and what; None if all is."""
    if value is None or isinstance(value, _JSON_SCALARS):
        return None
    if isinstance(value, list):
        for position, item in enumerate(value):
            if (problem := _not_json(item, f"{path}[{position}]")) is not None:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}.{key}", key
            if (problem := _not_json(item, f"{path}.{key}")) is not None:
                return problem
        return None
    return path, value


def _key_fields(target: str) -> tuple[str, ...]:
    return seed_table(target).natural_key_fields


async def _password_matches(password: str, hashed: str) -> bool:
    """Whether `hashed` is the hash of `password` (checked off the event loop: ~0.2 s CPU)."""
    try:
        return await to_thread.run_sync(verify_password, password, hashed)
    except Exception:  # pwdlib's UnknownHashError: a hash written by something else
        return False


@cache
def _seed_schema(table: SeedTable) -> type[BaseModel]:
    """The create schema; for users, `password` or an already hashed `hashed_password`."""
    schema = table.create_schema
    if not table.password_columns:
        return schema
    original = schema.model_fields["password"]
    annotation: Any = original.annotation | None  # type: ignore[operator]
    optional = FieldInfo(annotation=annotation, default=None)
    optional.metadata = list(original.metadata)
    validators: dict[str, Any] = {"one_password": model_validator(mode="after")(_one_password)}
    seed_schema: type[BaseModel] = create_model(
        f"{schema.__name__}Seed",
        __base__=schema,
        __validators__=validators,
        password=(annotation, optional),
        hashed_password=(str | None, PydanticField(default=None, max_length=255)),
    )
    return seed_schema


def _one_password(model: BaseModel) -> BaseModel:
    given = [getattr(model, n) is not None for n in ("password", "hashed_password")]
    if given == [False, False]:
        raise ValueError("give either password (plain text) or hashed_password")
    if all(given):
        raise ValueError("give password or hashed_password, not both")
    hashed = getattr(model, "hashed_password", None)
    if hashed is not None and not is_password_hash(hashed):
        raise ValueError("hashed_password is not a password hash this server can check")
    return model


def _schema_field_to_seed(table: SeedTable, name: str) -> str:
    for link in table.links:
        if link.schema_field == name:
            return link.field
    return table.seed_field(name)


def _validation_error(table: SeedTable, where: _Where, exc: ValidationError) -> SeedError:
    error = exc.errors()[0]
    location = [str(part) for part in error["loc"]]
    if location:
        location[0] = _schema_field_to_seed(table, location[0])
    message = error["msg"].removeprefix("Value error, ")
    more = exc.error_count() - 1
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return where.error(message, ".".join(location) or None)


def _write_error(where: _Where, exc: WriteError) -> SeedError:
    """The row's error from the Writer's refusal: its first problem, named by seed field."""
    problem = exc.problems[0]
    names = [_schema_field_to_seed(where.table, name) for name in problem.location]
    message = problem.message
    if problem.field is not None:  # "tag_ids: no tags row has id 9" -> "no tags row has id 9"
        message = message.removeprefix(f"{problem.field}: ")
    more = len(exc.problems) - 1
    if more:
        message += f" (and {more} more error{'s' if more > 1 else ''})"
    return where.error(message, " + ".join(names) or None)


def _is_refusal(exc: DBAPIError) -> bool:
    """Whether the database refused the row's values (a constraint, a value it cannot store),
    rather than failing on its own (a lost connection), which is no row's fault."""
    return not (exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError))


def _database_error(where: _Where, exc: DBAPIError) -> Exception:
    """The row's error from a database refusal the Writer did not map (its integrity and data
    errors come as WriteErrors): the driver's one-line reason (never the SQL); any other
    failure as it is."""
    if not _is_refusal(exc):
        return exc
    reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__
    if reason.startswith("<class '") and ">: " in reason:  # SQLAlchemy's asyncpg adapter
        reason = reason.split(">: ", 1)[1]
    return where.error(f"the database refused the row: {reason}")


def _key_label(table: SeedTable, raw: Any) -> str:
    """A row's natural key as written, for messages: `b` or `{code: NL-001, region: North}`."""
    if not isinstance(raw, dict):
        return describe_value(raw)
    fields = table.natural_key_fields
    if len(fields) == 1:
        return describe_value(raw.get(fields[0]))
    return describe_value({f: raw.get(f) for f in fields})


async def database_is_empty(engine: AsyncEngine) -> bool:
    """True when no registered table has a row (a first start)."""
    from sqlalchemy import exists

    async with engine.connect() as connection:
        for table in seed_tables():
            if await connection.scalar(select(exists().select_from(table.table))):
                return False
    return True
