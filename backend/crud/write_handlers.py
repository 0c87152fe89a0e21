"""The write path: create, replace, update, delete and delete-all of one resource.

Two parts, each a class held by the generated router:
- `Writes`, the HTTP side: checks the caller (`Access.connect`), reads the route's arguments
  into plain values and turns what was written into the response (201 with `Location`, the
  row as written, the count deleted).
- `RowWriter`, the data side: turns values into column values (text and time checks,
  password hashing off the event loop, the table's defaults), runs the prebuilt statements,
  replaces many-to-many links, refuses tree cycles and maps integrity and data errors to
  409s and 422s that name the field.

The response is encoded *inside* the write's transaction where there is one (`RowWriter`
takes a `finish` callable): a response that cannot be written rolls the write back rather
than report a failure after storing it. A pending caller's role (see `Access.connect`) is
checked in the INSERT or UPDATE itself when the write is a single statement.
"""

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, Table, bindparam, delete, insert, literal, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import SQLModel
from starlette.concurrency import run_in_threadpool

from backend.auth.dependencies import PendingCaller, caller_may
from backend.auth.passwords import hash_password
from backend.config import Settings
from backend.crud.access import Access
from backend.crud.connection import Connection
from backend.crud.errors import (
    ConflictDetail,
    conflict,
    error_from_violation,
    invalid,
    is_data_exception,
    not_found,
)
from backend.crud.operation import Arguments
from backend.crud.query import ParameterError, check_text
from backend.crud.rows import JSONBytesResponse, LinkTable, RowShape
from backend.crud.schemas import write_only_fields
from backend.integrity import describe_integrity_error
from backend.registry import ResourceOptions
from backend.trees import TreeCycleError, closes_cycle, needs_cycle_check

Answer = TypeVar("Answer")


class DeleteAllResult(BaseModel):
    """How many rows `DELETE /api/<resource>` removed."""

    deleted: int


@dataclass(slots=True)
class Written:
    """A row as a write left it: as the statement returned it, its id, the links written."""

    row: Any
    row_id: Any
    links: dict[str, list[Any]]


# HTTP side --------------------------------------------------------------------------------


class Writes:
    """The write handlers of one resource: arguments in, responses out."""

    def __init__(
        self, resource: ResourceOptions, rows: RowShape, access: Access, writer: "RowWriter"
    ) -> None:
        self.resource = resource
        self.rows = rows
        self.access = access
        self.writer = writer
        self.read_only = {resource.primary_key, *resource.read_only_fields}
        self.write_only = write_only_fields(resource)
        self._pk = resource.primary_key
        # Ids other than integers may hold characters a URL must escape (`Location`).
        self._quote_id = resource.primary_key_type is not int
        self._item_path: str | None = None

    async def create(self, request: Request, arguments: Arguments) -> Response:
        """`POST /`: 201 with the row as written and its `Location`."""
        async with self.access.connect(request, arguments, read=False, defer_caller=True) as (
            connection,
            pending,
        ):
            data = arguments.values["payload"].model_dump()
            finish = functools.partial(self._created, request)
            return await self.writer.create(connection, data, pending, finish)

    async def replace(self, request: Request, arguments: Arguments) -> Response:
        """`PUT /{id}`: every writable field; a write-only field left out keeps its value."""
        async with self.access.connect(request, arguments, read=False, defer_caller=True) as (
            connection,
            pending,
        ):
            payload = arguments.values["payload"]
            data = payload.model_dump(exclude=self.read_only)
            for name in self.write_only:  # left out: keep what is stored
                if data.get(name) is None:
                    data.pop(name, None)
            item_id = arguments.values["id"]
            return await self.writer.change(connection, item_id, data, pending, self._changed)

    async def update(self, request: Request, arguments: Arguments) -> Response:
        """`PATCH /{id}`: the fields the body sets."""
        async with self.access.connect(request, arguments, read=False, defer_caller=True) as (
            connection,
            pending,
        ):
            data = arguments.values["payload"].model_dump(exclude_unset=True)
            data.pop(self._pk, None)  # a key the client chose on create names the row: kept
            self.writer.refuse_nulls(data)
            item_id = arguments.values["id"]
            return await self.writer.change(connection, item_id, data, pending, self._changed)

    async def delete(self, request: Request, arguments: Arguments) -> Response:
        """`DELETE /{id}`: the row as it was."""
        async with self.access.connect(request, arguments, read=False) as (connection, _):
            return await self.writer.delete(connection, arguments.values["id"], self._deleted)

    async def delete_all(self, request: Request, arguments: Arguments) -> Response:
        """`DELETE /`: how many rows were deleted."""
        async with self.access.connect(request, arguments, read=False) as (connection, _):
            deleted = await self.writer.delete_all(connection)
            return JSONBytesResponse(DeleteAllResult(deleted=deleted).model_dump_json().encode())

    def _created(self, request: Request, written: Written) -> Response:
        """The 201 for a row just inserted, with its links as written."""
        record = self.rows.record(written.row, links=False)
        for link in self.rows.links:  # a new row has the links just written, or none
            record[link.field] = sorted(written.links.get(link.field, []))
        location = self._location(request, written.row_id)
        return self.rows.response(
            record, status_code=status.HTTP_201_CREATED, headers={"Location": location}
        )

    def _changed(self, written: Written) -> Response:
        """The response for a row just changed, with its links as written."""
        record = self.rows.record(written.row)
        for name, ids in written.links.items():  # as just written (the row showed the old ones)
            record[name] = sorted(ids)
        return self.rows.response(record)

    def _deleted(self, written: Written) -> Response:
        """The response for a row just deleted: the row as it was."""
        return self.rows.response(self.rows.record(written.row))

    def _location(self, request: Request, item_id: Any) -> str:
        """The created row's URL (the route's path is looked up once, not per request)."""
        if self._item_path is None:
            path = request.app.url_path_for(f"{self.resource.name}-get", id=0)
            self._item_path = str(path).removesuffix("0")
        shown = quote(str(item_id), safe="") if self._quote_id else item_id
        return f"{str(request.base_url).rstrip('/')}{self._item_path}{shown}"


# Data side --------------------------------------------------------------------------------


class RowWriter:
    """Writes one resource's rows with prebuilt Core statements.

    `prepare_values` (validated input -> column values) and `costly` (whether that is slow
    work, for which the caller is checked first) are the hooks of the write.
    """

    def __init__(
        self,
        resource: ResourceOptions,
        settings: Settings,
        rows: RowShape,
        create_schema: type[BaseModel],
    ) -> None:
        self.resource = resource
        self.settings = settings
        self.rows = rows
        self.model: type[SQLModel] = resource.model
        self.table: Table = resource.table
        self._pk_column = self.table.columns[resource.primary_key]
        self._pk_index = rows.names.index(resource.primary_key)
        self._tree = resource.tree
        self._links: dict[str, LinkTable] = {link.field: link for link in rows.links}
        # Built once: the compiled cache then serves every request's SQL.
        self._defaults = _insert_defaults(resource, create_schema)
        self._insert_row = insert(self.table).returning(*rows.columns)  # no links yet
        self._update_row = (
            update(self.table)
            .where(self._pk_column == bindparam("tablestack_row_pk"))
            .returning(*rows.selected)
        )
        self._delete_row = delete(self.table).where(self._pk_column == bindparam("item_id"))
        # The same with the caller's role checked in the statement (see `Access.connect`).
        self._update_row_as_caller = self._update_row.where(caller_may(resource.write_role))
        self._inserts_as_caller: dict[tuple[str, ...], Any] = {}

    # Writes -------------------------------------------------------------------------------

    async def create(
        self,
        connection: Connection,
        data: dict[str, Any],
        pending: PendingCaller | None,
        finish: Callable[[Written], Answer],
    ) -> Answer:
        """INSERT the row and its links; `finish` makes the answer (before the commit)."""
        links = self.pop_links(data)
        if pending is not None and self.costly(data):
            await pending.check(connection)
            pending = None
        columns = self.column_values(await self.prepare_values(data))
        # Its own parent: possible when the client chooses (or guesses) the new row's key.
        parented = self._tree is not None and columns.get(self._tree) is not None
        async with self.writing(connection, columns):
            if any(links.values()) or parented:  # a new row with no links is one INSERT
                if pending is not None:
                    await pending.check(connection)
                async with connection.atomic():
                    await self._check_links(connection, links)
                    created = await connection.first(self._insert_row, columns)
                    assert created is not None  # INSERT ... RETURNING
                    item_id = created[self._pk_index]
                    if parented and columns.get(self._tree or "") == item_id:
                        raise self._cycle(item_id, item_id)
                    await self._replace_links(connection, item_id, links, new=True)
                    # Encoded before the commit: a response that cannot be written rolls
                    # the row back rather than report a failure after storing it.
                    return finish(Written(created, item_id, links))
            created = await self._insert_one(connection, columns, pending)
            item_id = created[self._pk_index]
        return finish(Written(created, item_id, links))

    async def change(
        self,
        connection: Connection,
        item_id: Any,
        data: dict[str, Any],
        pending: PendingCaller | None,
        finish: Callable[[Written], Answer],
    ) -> Answer:
        """UPDATE ... RETURNING the changed row (a SELECT when only links change).

        Only columns: one statement, which for a pending caller also checks their role.
        With links: one transaction of several statements, the caller checked first.
        """
        links = self.pop_links(data)
        if pending is not None and self.costly(data):
            await pending.check(connection)
            pending = None
        values = await self.prepare_values(data)
        reparented = needs_cycle_check(self.resource, item_id, values)
        async with self.writing(connection, values):
            if values and not links and not reparented:
                found = await self._update_one(connection, item_id, values, pending)
                return finish(Written(found, item_id, links))
            if pending is not None:
                await pending.check(connection)
            async with connection.atomic():
                if reparented:
                    await self._refuse_cycle(connection, item_id, values)
                if values:
                    parameters = {**values, "tablestack_row_pk": item_id}
                    found = await connection.first(self._update_row, parameters)
                else:
                    found = await connection.first(self.rows.select_one, {"item_id": item_id})
                if found is None:
                    raise not_found(self.resource.name, item_id)
                await self._check_links(connection, links)
                await self._replace_links(connection, item_id, links, new=False)
                return finish(Written(found, item_id, links))  # encoded before the commit

    async def delete(
        self, connection: Connection, item_id: Any, finish: Callable[[Written], Answer]
    ) -> Answer:
        """DELETE the row; 404 when there is none, 409 naming the rows that still point at it."""
        try:
            async with self.writing(connection, where="path"), connection.atomic():
                found = await connection.first(self.rows.select_one, {"item_id": item_id})
                if found is None:
                    raise not_found(self.resource.name, item_id)
                # Core DELETE: the database applies ON DELETE rules; the ORM would try to
                # load and detach related rows instead.
                await connection.execute(self._delete_row, {"item_id": item_id})
                return finish(Written(found, item_id, {}))  # before the commit
        except HTTPException as exc:
            if exc.status_code == status.HTTP_409_CONFLICT:
                raise await self._still_referenced(connection, item_id) from None
            raise

    async def delete_all(self, connection: Connection) -> int:
        """DELETE every row; how many there were."""
        async with self.writing(connection, where="path"):
            return await connection.execute(delete(self.table))

    # Hooks --------------------------------------------------------------------------------

    async def prepare_values(self, data: dict[str, Any]) -> dict[str, Any]:
        """Validated input -> column values: checks text and times, hashes a `password`."""
        errors = []
        for name, value in data.items():
            problem = _unstorable(value)
            if problem:
                errors.append({"type": "value_error", "loc": ("body", name), "msg": problem})
        if errors:
            raise RequestValidationError(errors)
        if "password" in data and "hashed_password" in self.resource.table.columns:
            password = data.pop("password")
            if password is not None:
                # argon2 is slow on purpose: keep it off the event loop.
                data["hashed_password"] = await run_in_threadpool(hash_password, password)
        return data

    def costly(self, data: dict[str, Any]) -> bool:
        """Whether `prepare_values` does slow work for `data` (hashing a password): then the
        caller is checked first, so that no one without the role can make the server do it."""
        return data.get("password") is not None and "hashed_password" in self.table.columns

    # Values -------------------------------------------------------------------------------

    def refuse_nulls(self, data: dict[str, Any]) -> None:
        """422 for each null given to a column that may not hold one (a partial update)."""
        columns = self.resource.table.columns
        errors = [
            {"type": "missing", "loc": ("body", name), "msg": f"{name} may not be null"}
            for name, value in data.items()
            if value is None and name in columns and not columns[name].nullable
        ]
        if errors:
            raise RequestValidationError(errors)

    def column_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """The INSERT's columns: `values` plus the table's defaults for what it leaves out.

        A derived Create schema already holds every rule of the table's fields, so its values
        need no second validation; a Create schema from the registry may not, so the table
        model validates those (and fills its defaults) as an ORM insert would.
        """
        if self._defaults is not None:
            columns = {k: v for k, v in values.items() if k in self.table.columns}
            for name, make in self._defaults:
                if name not in columns:
                    columns[name] = make()
            return columns
        try:
            # A namespace, not a dict: sqlmodel reads relationships with getattr, and a
            # dict's `items` method would land in a relationship named `items`.
            row = self.model.model_validate(SimpleNamespace(**values), from_attributes=True)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            ) from None
        columns = {}
        for column in self.table.columns:
            value = getattr(row, column.name, None)
            if value is not None or column.name in values:
                columns[column.name] = value
        return columns

    def pop_links(self, data: dict[str, Any]) -> dict[str, list[Any]]:
        """Take the `<name>_ids` fields out of `data`, without duplicates, in order."""
        return {
            name: list(dict.fromkeys(data.pop(name) or [])) for name in self._links if name in data
        }

    # Statements ---------------------------------------------------------------------------

    async def _insert_one(
        self, connection: Connection, columns: dict[str, Any], pending: PendingCaller | None
    ) -> Any:
        """INSERT ... RETURNING the row; for a pending caller, only if their role allows it
        (INSERT ... SELECT ... WHERE the caller may write), in the same statement."""
        if pending is not None:
            statement = self._insert_as_caller(tuple(columns))
            created = await connection.first(statement, {**columns, "caller_id": pending.user_id})
            if created is not None:
                pending.granted()
                return created
            await pending.check(connection)  # 401/403; or the role changed in between
        created = await connection.first(self._insert_row, columns)
        assert created is not None  # INSERT ... RETURNING
        return created

    def _insert_as_caller(self, keys: tuple[str, ...]) -> Any:
        statement = self._inserts_as_caller.get(keys)
        if statement is None:
            values = [bindparam(key, type_=self.table.columns[key].type) for key in keys]
            allowed = caller_may(self.resource.write_role)
            statement = (
                insert(self.table)
                .from_select(list(keys), select(*values).where(allowed))
                .returning(*self.rows.columns)
            )
            self._inserts_as_caller[keys] = statement
        return statement

    async def _update_one(
        self,
        connection: Connection,
        item_id: Any,
        values: dict[str, Any],
        pending: PendingCaller | None,
    ) -> Any:
        """UPDATE ... RETURNING; for a pending caller, WHERE their role allows it too.

        The SET clause follows the parameters' keys: one prebuilt statement serves every
        combination of fields (compiled once per combination).
        """
        parameters = {**values, "tablestack_row_pk": item_id}
        if pending is None:
            found = await connection.first(self._update_row, parameters)
        else:
            parameters["caller_id"] = pending.user_id
            found = await connection.first(self._update_row_as_caller, parameters)
            if found is not None:
                pending.granted()
        if found is None:
            raise not_found(self.resource.name, item_id)  # or 401/403: see `Access.connect`
        return found

    # Links, references, trees -------------------------------------------------------------

    async def _check_links(self, connection: Connection, links: dict[str, list[Any]]) -> None:
        """409 naming the field when an id in `<name>_ids` has no row (one query per field)."""
        for name, ids in links.items():
            if not ids:
                continue
            link = self._links[name]
            statement = select(link.target_pk).where(link.target_pk.in_(ids))
            found = {row[0] for row in await connection.all(statement)}
            missing = sorted(set(ids) - found)
            if missing:
                table = link.target_table.name
                raise _reference_conflict(
                    name, f"no {table} row has id {', '.join(map(str, missing))}"
                )

    async def _replace_links(
        self, connection: Connection, item_id: Any, links: dict[str, list[Any]], *, new: bool
    ) -> None:
        """Make the link tables hold exactly `links` for this row."""
        for name, ids in links.items():
            link = self._links[name]
            if not new:
                await connection.execute(delete(link.table).where(link.owner == item_id))
            rows = [{link.owner.name: item_id, link.target.name: i} for i in ids]
            await connection.execute_many(insert(link.table), rows)

    async def _check_references(self, connection: Connection, values: dict[str, Any]) -> None:
        """409 naming the field when a foreign key points at a missing row (one query each).

        The database would refuse it too, but SQLite does not say which field was wrong.
        """
        for column in self.resource.table.columns:
            value = values.get(column.name)
            if value is None or not column.foreign_keys:
                continue
            for foreign_key in column.foreign_keys:
                target: Column[Any] = foreign_key.column
                statement = select(literal(1)).select_from(target.table).where(target == value)
                if await connection.first(statement.limit(1)) is None:
                    raise _reference_conflict(
                        column.name,
                        f"no {target.table.name} row has {target.name} {value}",
                        constraint=_name(foreign_key.constraint),
                    )

    async def _still_referenced(self, connection: Connection, item_id: Any) -> HTTPException:
        """A 409 naming the tables whose rows still point at this one."""
        found = []
        for table in self.resource.table.metadata.tables.values():
            for foreign_key in table.foreign_keys:
                if foreign_key.column.table is not self.resource.table:
                    continue
                statement = (
                    select(literal(1))
                    .select_from(table)
                    .where(foreign_key.parent == item_id)
                    .limit(1)
                )
                if await connection.first(statement) is not None:
                    found.append(f"{table.name}.{foreign_key.parent.name}")
        where = ", ".join(sorted(found)) or "other rows"
        item = ConflictDetail(
            loc=["path", "id"],
            msg=f"{self.resource.name} {item_id} is still referenced by {where}",
            type="foreign_key",
        )
        return HTTPException(status.HTTP_409_CONFLICT, [item.model_dump()])

    async def _refuse_cycle(
        self, connection: Connection, item_id: Any, values: dict[str, Any]
    ) -> None:
        """409 naming the tree's field when the new parent is the row or one of its
        descendants (inside the write's transaction, before anything is written)."""
        assert self._tree is not None
        parent_id = values[self._tree]
        dialect = "sqlite" if self.settings.is_sqlite else "postgresql"
        if await closes_cycle(
            connection.scalar, self.resource, item_id, parent_id, dialect=dialect
        ):
            raise self._cycle(item_id, parent_id)

    def _cycle(self, item_id: Any, parent_id: Any) -> HTTPException:
        error = TreeCycleError(self.resource, item_id, parent_id)
        return conflict(["body", error.field], str(error), type="tree_cycle")

    # Errors -------------------------------------------------------------------------------

    @asynccontextmanager
    async def writing(
        self, connection: Connection, written: dict[str, Any] | None = None, *, where: str = "body"
    ) -> AsyncIterator[None]:
        """Integrity errors become 409s naming the field; refused values become 422s.

        `written` holds the column values being written: a foreign key that points at no row
        is then named by `_check_references`, after the fact, instead of paying a query per
        foreign key on every write. (The failed statement was already rolled back.)
        """
        try:
            yield
        except IntegrityError as exc:
            violation = describe_integrity_error(exc)
            if violation.kind == "foreign_key" and where == "body" and written:
                await self._check_references(connection, written)
            raise error_from_violation(violation, where=where) from None
        except DBAPIError as exc:
            if is_data_exception(exc):
                raise invalid([where], "a value cannot be stored by the database") from None
            raise


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


def _name(constraint: Any) -> str | None:
    name = getattr(constraint, "name", None)
    return name if isinstance(name, str) else None


def _reference_conflict(name: str, msg: str, *, constraint: str | None = None) -> HTTPException:
    item = ConflictDetail(
        loc=["body", name], msg=f"{name}: {msg}", type="foreign_key", constraint=constraint
    )
    return HTTPException(status.HTTP_409_CONFLICT, [item.model_dump()])


def _unstorable(value: Any) -> str | None:
    """Why a databases cannot store `value`, or None."""
    if isinstance(value, str):
        try:
            check_text(value)
        except ParameterError as exc:
            return exc.msg
    elif isinstance(value, datetime):
        try:
            value.astimezone(UTC)
        except (OverflowError, ValueError):
            return "is out of the supported date range"
    elif isinstance(value, list | tuple):
        return next((p for p in map(_unstorable, value) if p), None)
    return None
