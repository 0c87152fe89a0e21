"""The read path: `GET /api/<resource>/{id}` and `GET /api/<resource>` (the list).

Both answer from plain rows encoded by `RowShape` (no ORM objects), after the connection went
back to the pool. A signed-in caller's role is read in the same statement as the rows (see
`Access.connect`); the list's page and total come from `backend.crud.paging`.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request, Response, status
from sqlalchemy import bindparam
from sqlalchemy.exc import DBAPIError

from backend.auth.dependencies import caller_role_column
from backend.config import Settings
from backend.crud.access import Access
from backend.crud.conditional import etag, not_modified
from backend.crud.errors import invalid, is_data_exception, not_found
from backend.crud.operation import Arguments
from backend.crud.paging import Pages, prefers_estimated_count
from backend.crud.query import ListParser
from backend.crud.rows import RowShape
from backend.registry import ResourceOptions
from backend.replicas import falling_back


class Reads:
    """The read handlers of one resource."""

    def __init__(
        self, resource: ResourceOptions, settings: Settings, rows: RowShape, access: Access
    ) -> None:
        self.resource = resource
        self.settings = settings
        self.rows = rows
        self.access = access
        self.pages = Pages(resource.table, rows, settings)
        pk_column = resource.table.columns[resource.primary_key]
        # Built once (the compiled cache then serves every request's SQL), with the caller's
        # role checked in the statement (see `Access.connect`).
        # The row's version comes along, for its ETag.
        version = resource.version_column
        self._select_one = rows.select(version).where(pk_column == bindparam("item_id"))
        self._select_one_as_caller = rows.select(version, caller_role_column()).where(
            pk_column == bindparam("item_id")
        )
        self._version_index = len(rows.names)

    async def read_one(self, request: Request, arguments: Arguments) -> Response:
        """`GET /{id}`: the row, or 404."""
        return await falling_back(request, lambda: self._read_one(request, arguments))

    async def read_list(self, request: Request, arguments: Arguments) -> Response:
        """`GET /`: a page of the rows that match the filters, the total in the headers."""
        return await falling_back(request, lambda: self._read_list(request, arguments))

    async def _read_one(self, request: Request, arguments: Arguments) -> Response:
        async with self.access.connect(request, arguments, read=True, defer_caller=True) as (
            connection,
            pending,
        ):
            item_id = arguments.values["id"]
            async with reading():
                if pending is None:
                    row = await connection.first(self._select_one, {"item_id": item_id})
                else:
                    parameters = {"item_id": item_id, **pending.parameters}
                    row = await connection.first(self._select_one_as_caller, parameters)
                    if row is not None:
                        pending.settle(row[self._version_index + 1])
            if row is None:
                raise not_found(self.resource.name, item_id)
        # A read: encoded after the connection went back to the pool (no commit to precede).
        version = row[self._version_index]
        if not_modified(request, version):
            return Response(
                status_code=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag(version)}
            )
        return self.rows.response(self.rows.record(row), headers={"ETag": etag(version)})

    async def _read_list(self, request: Request, arguments: Arguments) -> Response:
        async with self.access.connect(request, arguments, read=True, defer_caller=True) as (
            connection,
            pending,
        ):
            values = arguments.values
            skip, limit = values["skip"], values["limit"]
            parser = ListParser(
                self.resource,
                dialect="sqlite" if self.settings.is_sqlite else "postgresql",
                page_size_max=self.settings.page_size_max,
                max_json_depth=self.settings.max_json_depth,
            )
            query = request.query_params.multi_items()
            plain = None
            if values["q"] is None and values["filter"] is None and values["range"] is None:
                plain = parser.plain_filters(query)  # the common case: a reusable shape
            where = parser.query_filters(query) if plain is None else []
            if values["q"] is not None:
                condition = parser.search(values["q"])
                if condition is not None:
                    where.append(condition)
            if values["filter"] is not None:
                where.extend(parser.json_filter(values["filter"]))
            shape = None
            if plain is not None:
                shape = (
                    tuple((f.spec.name, f.operator) for f in plain),
                    values["sort"],
                    pending is not None,
                )
            # A shape already built had a valid sort: no need to parse it again.
            order_by = [] if self.pages.built(shape) else parser.sort(values["sort"])
            if values["range"] is not None:
                if {"skip", "limit"} & set(request.query_params):
                    parser.error(
                        ("range",), "give either range or skip/limit, not both", values["range"]
                    )
                else:
                    page = parser.range(values["range"])
                    if page is not None:
                        skip, limit = page
            parser.raise_errors()

            async with reading():
                estimate = None
                if not (where or plain) and prefers_estimated_count(request):
                    if pending is not None:
                        await pending.check(connection)
                    estimate = await self.pages.row_estimate(connection)
                if estimate is not None:
                    order_by = order_by or parser.sort(values["sort"])
                    statement = self.rows.select().order_by(*order_by).offset(skip).limit(limit)
                    rows = await connection.all(statement)
                    # Exact when the page shows the end; never below what the page shows.
                    end = skip + len(rows)
                    total = end if 0 < len(rows) < limit else max(estimate, end)
                else:
                    if plain is not None and shape is not None:
                        page_and_count, parameters = self.pages.plain_page(
                            shape, plain, order_by, skip, limit, pending
                        )
                    else:
                        page_and_count = self.pages.page(where, order_by, skip, limit, pending)
                        parameters = {}
                    rows, total = await self.pages.page_and_total(
                        connection, *page_and_count, parameters, skip, pending
                    )
        records = self.rows.records(rows)
        first, last = skip, skip + len(records) - 1
        shown = f"{first}-{last}" if records else "*"
        headers = {
            "X-Total-Count": str(total),
            "Content-Range": f"{self.resource.name} {shown}/{total}",
        }
        if estimate is not None:
            headers["Preference-Applied"] = "count=estimated"
        return self.rows.response(records, headers=headers)


@asynccontextmanager
async def reading() -> AsyncIterator[None]:
    """A value the database cannot compare (out of its range) is the client's error."""
    try:
        yield
    except DBAPIError as exc:
        if is_data_exception(exc):
            raise invalid(["query"], "a value cannot be used by the database") from None
        raise
