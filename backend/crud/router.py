"""The async CRUDGenerator: one router per registered table, over the shared engine.

fastapi-crudrouter gives the route layout and the override mechanics; this subclass supplies
async SQLModel routes and never lets the library's pydantic-v1 helpers run (schemas and the
primary key type are always given). Route callables are annotated with `self._pk_type` and
the derived schemas at runtime, so this module must not use `from __future__ import annotations`.
"""

import functools
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials
from fastapi_crudrouter.core import CRUDGenerator
from pydantic import BaseModel, ValidationError
from sqlalchemy import (
    Column,
    Table,
    bindparam,
    delete,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import SQLModel
from starlette.concurrency import run_in_threadpool

from backend.auth.dependencies import (
    PendingCaller,
    bearer_scheme,
    caller_may,
)
from backend.auth.passwords import hash_password
from backend.config import Settings
from backend.crud.access import Access
from backend.crud.connection import Connection
from backend.crud.errors import (
    BAD_BODY,
    CONFLICT,
    NOT_FOUND,
    UNAUTHORIZED,
    ConflictDetail,
    conflict,
    error_from_violation,
    invalid,
    is_data_exception,
    not_found,
)
from backend.crud.operation import Arguments, Handler, OperationRoute, served_by
from backend.crud.query import (
    ParameterError,
    check_text,
    openapi_filter_parameters,
)
from backend.crud.reads import Reads
from backend.crud.rows import JSONBytesResponse, LinkTable, row_shape
from backend.crud.schemas import (
    derive_replace_schema,
    derive_schemas,
    primary_key_parameter,
    write_only_fields,
)
from backend.integrity import describe_integrity_error
from backend.models import Role
from backend.registry import ResourceOptions
from backend.trees import TreeCycleError, closes_cycle, needs_cycle_check

# Declares the bearer scheme on every route (OpenAPI `security`); the handlers read the token.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


class DeleteAllResult(BaseModel):
    """How many rows `DELETE /api/<resource>` removed."""

    deleted: int


@dataclass(frozen=True)
class RouteSpec:
    """How one generated route is named and documented."""

    action: str
    summary: str
    status_code: int = status.HTTP_200_OK
    responses: dict[int | str, dict[str, Any]] = field(default_factory=dict)


_TOTAL_HEADERS = {
    "X-Total-Count": {
        "description": "How many rows match the filters, over all pages",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Content-Range": {
        "description": "`<resource> <first>-<last>/<total>` (`<resource> */<total>` when the "
        "page is empty), as react-admin's simple REST data provider reads it",
        "schema": {"type": "string"},
    },
}
_LOCATION_HEADER = {
    "Location": {"description": "The URL of the created row", "schema": {"type": "string"}}
}

# (crudrouter's path, method) -> our action; crudrouter has no PATCH route, we add it.
_ACTIONS = {
    ("", "GET"): RouteSpec(
        "list", "List {label}", responses={200: {"headers": _TOTAL_HEADERS}, **UNAUTHORIZED}
    ),
    ("", "POST"): RouteSpec(
        "create",
        "Create one of {label}",
        status.HTTP_201_CREATED,
        {201: {"headers": _LOCATION_HEADER}, **BAD_BODY, **UNAUTHORIZED, **CONFLICT},
    ),
    ("", "DELETE"): RouteSpec(
        "delete-all", "Delete every row of {label}", responses={**UNAUTHORIZED, **CONFLICT}
    ),
    ("/{item_id}", "GET"): RouteSpec(
        "get", "Get one of {label}", responses={**UNAUTHORIZED, **NOT_FOUND}
    ),
    ("/{item_id}", "PUT"): RouteSpec(
        "replace",
        "Replace one of {label}",
        responses={**BAD_BODY, **UNAUTHORIZED, **NOT_FOUND, **CONFLICT},
    ),
    ("/{item_id}", "PATCH"): RouteSpec(
        "update",
        "Change some fields of one of {label}",
        responses={**BAD_BODY, **UNAUTHORIZED, **NOT_FOUND, **CONFLICT},
    ),
    ("/{item_id}", "DELETE"): RouteSpec(
        "delete", "Delete one of {label}", responses={**UNAUTHORIZED, **NOT_FOUND, **CONFLICT}
    ),
}

_LIST_DESCRIPTION = """\
Filter with `field=value` or `field__op=value` (operators: `ne`, `gt`, `gte`, `lt`, `lte`,
`in` (comma-separated), `like` / `ilike` (SQL patterns: `%` any run, `_` one character; text
fields only), `isnull` (`true`/`false`)); `q=` searches {search}. Sort with
`sort=-price,name` (the primary key breaks ties). Page with `skip` / `limit`.

react-admin's simple REST dialect works on the same route: `sort=["price","DESC"]`,
`range=[0,24]`, `filter={{"q":"lamp","category_id":3,"id":[1,2,3]}}`.

The total is in `X-Total-Count` and `Content-Range`: an exact count, unless the request says
`Prefer: count=estimated` (as PostgREST): an unfiltered list of a large table on PostgreSQL
then gives the planner's row estimate (exact once the page reaches the end) and answers
`Preference-Applied: count=estimated`.
"""


class SQLModelCRUDRouter(CRUDGenerator[BaseModel]):  # type: ignore[misc]  # untyped library
    """Async CRUD routes for one registered table.

    Hooks for subclasses: `prepare_values` (turn validated input into column values) and
    `costly` (whether that is slow work, for which the caller is checked first).
    """

    def __init__(self, resource: ResourceOptions, settings: Settings) -> None:
        self.resource = resource
        self.settings = settings
        self.model: type[SQLModel] = resource.model
        self.schemas = derive_schemas(resource)
        self.replace_schema = derive_replace_schema(resource)
        self.read_only = {resource.primary_key, *resource.read_only_fields}
        self.write_only = write_only_fields(resource)
        # Set before super().__init__, so crudrouter never calls its pydantic-v1 get_pk_type.
        self._pk = resource.primary_key
        self._pk_type: Any = primary_key_parameter(resource)
        # Ids other than integers may hold characters a URL must escape (`Location`).
        self._quote_id = resource.primary_key_type is not int
        self.table: Table = resource.table
        self._pk_column = self.table.columns[resource.primary_key]
        self.rows = row_shape(resource, "sqlite" if settings.is_sqlite else "postgresql")
        self._pk_index = self.rows.names.index(self._pk)
        self._tree = resource.tree
        self._links: dict[str, LinkTable] = {link.field: link for link in self.rows.links}
        # Built once: the compiled cache then serves every request's SQL.
        self._defaults = _insert_defaults(resource, self.schemas.create)
        self._item_path: str | None = None
        self._insert_row = insert(self.table).returning(*self.rows.columns)  # no links yet
        self._update_row = (
            update(self.table)
            .where(self._pk_column == bindparam("tablestack_row_pk"))
            .returning(*self.rows.selected)
        )
        self._delete_row = delete(self.table).where(self._pk_column == bindparam("item_id"))
        # The same with the caller's role checked in the statement (see `Access.connect`).
        self._update_row_as_caller = self._update_row.where(caller_may(resource.write_role))
        self._inserts_as_caller: dict[tuple[str, ...], Any] = {}
        self.access = Access(resource, settings)
        self.reads = Reads(resource, settings, self.rows, self.access)
        super().__init__(
            schema=self.schemas.read,
            create_schema=self.schemas.create,
            update_schema=self.schemas.update,
            prefix=resource.name,
            tags=[resource.label],
            get_all_route=True,
            get_one_route=True,
            create_route=True,
            update_route=True,
            delete_one_route=True,
            delete_all_route=resource.delete_all,
            route_class=OperationRoute,
        )
        self._add_api_route("/{item_id}", self._patch(), methods=["PATCH"], dependencies=True)

    # Route registration ------------------------------------------------------------------

    def _add_api_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        dependencies: Any,
        error_responses: Any = None,
        **kwargs: Any,
    ) -> None:
        """Name and document each route (`products-list`, ...) instead of crudrouter's `route`."""
        method = kwargs["methods"][0]
        spec = _ACTIONS[(path, method)]
        name = f"{self.resource.name}-{spec.action}"
        label = self.resource.label.lower()
        response_model: Any = {
            "list": list[self.schemas.read],  # type: ignore[name-defined]
            "delete-all": DeleteAllResult,
        }.get(spec.action, self.schemas.read)
        openapi_extra: dict[str, Any] = {}
        extra: dict[str, Any] = {"openapi_extra": openapi_extra}
        if spec.action == "list":
            searchable = ", ".join(f"`{f}`" for f in self.resource.search_fields) or "nothing"
            extra["description"] = _LIST_DESCRIPTION.format(search=searchable)
            openapi_extra["parameters"] = openapi_filter_parameters(self.resource)
        if (
            spec.action in ("list", "get")
            and self.settings.anonymous_read
            and self.resource.read_role is Role.viewer
        ):
            openapi_extra["security"] = [{}]  # a token is optional: appended to `bearer`
        APIRouter.add_api_route(
            self,
            path.replace("{item_id}", "{id}"),
            endpoint,
            methods=[method],
            dependencies=[] if isinstance(dependencies, bool) else dependencies,
            name=name,
            operation_id=name,
            summary=spec.summary.format(label=label),
            status_code=spec.status_code,
            response_model=response_model,
            responses=spec.responses,
            **extra,
        )

    # Routes ------------------------------------------------------------------------------
    # Each endpoint below declares the route's parameters (for FastAPI's OpenAPI document and
    # validation) and hands them to its handler; `OperationRoute` calls the handler directly.

    def _get_all(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        settings = self.settings
        handler = self.reads.read_list

        @served_by(handler)
        async def route(
            request: Request,
            credentials: Credentials,
            skip: Annotated[
                int, Query(ge=0, le=2**62, description="Rows to skip before the page")
            ] = 0,
            limit: Annotated[
                int,
                Query(
                    ge=1,
                    le=settings.page_size_max,
                    description=f"Page size (at most {settings.page_size_max})",
                ),
            ] = settings.page_size_default,
            sort: Annotated[
                str | None,
                Query(description='`-price,name`, or react-admin\'s `["price","DESC"]`'),
            ] = None,
            q: Annotated[str | None, Query(description="Text to search for")] = None,
            range: Annotated[
                str | None, Query(description="react-admin: `[first, last]`, inclusive")
            ] = None,
            filter: Annotated[
                str | None,
                Query(description='react-admin: a JSON object, e.g. `{"q":"lamp","id":[1,2]}`'),
            ] = None,
        ) -> Any:
            values = {"skip": skip, "limit": limit, "sort": sort, "q": q}
            return await handler(request, Arguments({**values, "range": range, "filter": filter}))

        return route

    def _get_one(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return self._item_route(self.reads.read_one)

    def _create(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        create_schema, handler = self.create_schema, self._insert

        @served_by(handler)
        async def route(
            request: Request,
            payload: create_schema,  # type: ignore[valid-type]
            credentials: Credentials,
        ) -> Any:
            return await handler(request, Arguments({"payload": payload}))

        return route

    def _update(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return self._item_body_route(self.replace_schema, self._replace)

    def _patch(self) -> Callable[..., Any]:
        return self._item_body_route(self.update_schema, self._partial_update)

    def _delete_one(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return self._item_route(self._remove)

    def _item_route(self, handler: Handler) -> Callable[..., Any]:
        """`/{id}` with no body (get, delete)."""
        pk_type = self._pk_type

        @served_by(handler)
        async def route(request: Request, id: pk_type, credentials: Credentials) -> Any:  # type: ignore[valid-type]
            return await handler(request, Arguments({"id": id}))

        return route

    def _item_body_route(self, schema: type[BaseModel], handler: Handler) -> Callable[..., Any]:
        """`/{id}` with a JSON body of `schema` (replace, update)."""
        pk_type = self._pk_type

        @served_by(handler)
        async def route(
            request: Request,
            id: pk_type,  # type: ignore[valid-type]
            payload: schema,  # type: ignore[valid-type]
            credentials: Credentials,
        ) -> Any:
            return await handler(request, Arguments({"id": id, "payload": payload}))

        return route

    def _delete_all(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        handler = self._remove_all

        @served_by(handler)
        async def route(request: Request, credentials: Credentials) -> DeleteAllResult:
            return await handler(request, Arguments({}))  # type: ignore[return-value]

        return route

    # Write handlers ----------------------------------------------------------------------

    async def _insert(self, request: Request, arguments: Arguments) -> Response:
        async with self.access.connect(request, arguments, read=False, defer_caller=True) as (
            connection,
            pending,
        ):
            data = arguments.values["payload"].model_dump()
            links = self._pop_links(data)
            if pending is not None and self.costly(data):
                await pending.check(connection)
                pending = None
            columns = self._column_values(await self.prepare_values(data))
            # Its own parent: possible when the client chooses (or guesses) the new row's key.
            parented = self._tree is not None and columns.get(self._tree) is not None
            async with self._writing(connection, columns):
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
                        return self._created(request, created, item_id, links)
                created = await self._insert_one(connection, columns, pending)
                item_id = created[self._pk_index]
            return self._created(request, created, item_id, links)

    def _created(
        self, request: Request, created: Any, item_id: Any, links: dict[str, list[Any]]
    ) -> Response:
        """The 201 for a row just inserted, with its links as written."""
        record = self.rows.record(created, links=False)
        for link in self.rows.links:  # a new row has the links just written, or none
            record[link.field] = sorted(links.get(link.field, []))
        location = self._location(request, item_id)
        return self.rows.response(
            record, status_code=status.HTTP_201_CREATED, headers={"Location": location}
        )

    async def _insert_one(
        self, connection: Connection, columns: dict[str, Any], pending: "PendingCaller | None"
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

    async def _replace(self, request: Request, arguments: Arguments) -> Response:
        async with self.access.connect(request, arguments, read=False, defer_caller=True) as (
            connection,
            pending,
        ):
            payload = arguments.values["payload"]
            data = payload.model_dump(exclude=self.read_only)
            for name in self.write_only:  # left out: keep what is stored
                if data.get(name) is None:
                    data.pop(name, None)
            return await self._change(connection, arguments.values["id"], data, pending)

    async def _partial_update(self, request: Request, arguments: Arguments) -> Response:
        async with self.access.connect(request, arguments, read=False, defer_caller=True) as (
            connection,
            pending,
        ):
            data = arguments.values["payload"].model_dump(exclude_unset=True)
            data.pop(self._pk, None)  # a key the client chose on create names the row: kept
            columns = self.resource.table.columns
            errors = [
                {"type": "missing", "loc": ("body", name), "msg": f"{name} may not be null"}
                for name, value in data.items()
                if value is None and name in columns and not columns[name].nullable
            ]
            if errors:
                raise RequestValidationError(errors)
            return await self._change(connection, arguments.values["id"], data, pending)

    async def _remove(self, request: Request, arguments: Arguments) -> Response:
        async with self.access.connect(request, arguments, read=False) as (connection, _):
            item_id = arguments.values["id"]
            try:
                async with self._writing(connection, where="path"), connection.atomic():
                    found = await connection.first(self.rows.select_one, {"item_id": item_id})
                    if found is None:
                        raise not_found(self.resource.name, item_id)
                    # Core DELETE: the database applies ON DELETE rules; the ORM would try to
                    # load and detach related rows instead.
                    await connection.execute(self._delete_row, {"item_id": item_id})
                    return self.rows.response(self.rows.record(found))  # before the commit
            except HTTPException as exc:
                if exc.status_code == status.HTTP_409_CONFLICT:
                    raise await self._still_referenced(connection, item_id) from None
                raise

    async def _remove_all(self, request: Request, arguments: Arguments) -> Response:
        async with self.access.connect(request, arguments, read=False) as (connection, _):
            async with self._writing(connection, where="path"):
                deleted = await connection.execute(delete(self.table))
            return JSONBytesResponse(DeleteAllResult(deleted=deleted).model_dump_json().encode())

    def _column_values(self, values: dict[str, Any]) -> dict[str, Any]:
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

    def _location(self, request: Request, item_id: Any) -> str:
        """The created row's URL (the route's path is looked up once, not per request)."""
        if self._item_path is None:
            path = request.app.url_path_for(f"{self.resource.name}-get", id=0)
            self._item_path = str(path).removesuffix("0")
        shown = quote(str(item_id), safe="") if self._quote_id else item_id
        return f"{str(request.base_url).rstrip('/')}{self._item_path}{shown}"

    # Hooks -------------------------------------------------------------------------------

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

    # Helpers -----------------------------------------------------------------------------

    async def _change(
        self,
        connection: Connection,
        item_id: Any,
        data: dict[str, Any],
        pending: "PendingCaller | None",
    ) -> Response:
        """UPDATE ... RETURNING the changed row (a SELECT when only links change).

        Only columns: one statement, which for a pending caller also checks their role.
        With links: one transaction of several statements, the caller checked first.
        """
        links = self._pop_links(data)
        if pending is not None and self.costly(data):
            await pending.check(connection)
            pending = None
        values = await self.prepare_values(data)
        reparented = needs_cycle_check(self.resource, item_id, values)
        async with self._writing(connection, values):
            if values and not links and not reparented:
                found = await self._update_one(connection, item_id, values, pending)
                return self._changed(found, links)
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
                return self._changed(found, links)  # encoded before the commit

    def _changed(self, found: Any, links: dict[str, list[Any]]) -> Response:
        """The response for a row just changed, with its links as written."""
        record = self.rows.record(found)
        for name, ids in links.items():  # as just written (the row showed the previous ones)
            record[name] = sorted(ids)
        return self.rows.response(record)

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

    async def _update_one(
        self,
        connection: Connection,
        item_id: Any,
        values: dict[str, Any],
        pending: "PendingCaller | None",
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

    def _pop_links(self, data: dict[str, Any]) -> dict[str, list[Any]]:
        """Take the `<name>_ids` fields out of `data`, without duplicates, in order."""
        return {
            name: list(dict.fromkeys(data.pop(name) or [])) for name in self._links if name in data
        }

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

    @asynccontextmanager
    async def _writing(
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


def resource_routers(resources: Iterable[ResourceOptions], settings: Settings) -> list[APIRouter]:
    """One generated router per registered table."""
    return [SQLModelCRUDRouter(resource, settings) for resource in resources]
