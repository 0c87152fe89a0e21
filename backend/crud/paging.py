"""A list's page and its total: one round trip for both, statements built once per shape.

The page statement carries the exact total in every row (an uncorrelated scalar subquery,
computed once) and, for a pending caller, their role: a list is one query. Lists filtered by
plain comparisons (the common case) reuse a statement built once per shape (fields,
operators, sort, pending caller or not) with the values as parameters, so such a request
builds no SQL and hashes no cache key. On request (`Prefer: count=estimated`) an unfiltered
list of a large PostgreSQL table takes the planner's row estimate instead of counting.
"""

from typing import Any

from fastapi import Request
from sqlalchemy import BigInteger, Table, bindparam, func, select, text

from backend.auth.dependencies import PendingCaller, caller_role_column
from backend.config import Settings
from backend.crud.connection import Connection
from backend.crud.query import PlainFilter
from backend.crud.rows import RowShape

_PLAIN_PAGES = 256  # list statement shapes kept per resource

_RELTUPLES = text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:table)")


class Pages:
    """The page and total statements of one resource's lists."""

    def __init__(self, table: Table, rows: RowShape, settings: Settings) -> None:
        self.table = table
        self.rows = rows
        self.settings = settings
        self._plain_pages: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def built(self, shape: tuple[Any, ...] | None) -> bool:
        """Whether the statements of this plain shape are built (its sort was valid then)."""
        return shape in self._plain_pages

    def page(
        self,
        where: list[Any],
        order_by: list[Any],
        skip: Any,
        limit: Any,
        pending: PendingCaller | None,
    ) -> tuple[Any, Any]:
        """The page statement and its count statement.

        The page and the exact total come in one round trip: each row carries the total (an
        uncorrelated scalar subquery, computed once) and, for a pending caller, their role.
        """
        count = select(func.count()).select_from(self.table).where(*where)
        extra = [count.scalar_subquery()]
        if pending is not None:
            extra.append(caller_role_column())
        page = self.rows.select(*extra).where(*where).order_by(*order_by).offset(skip).limit(limit)
        return page, count

    def plain_page(
        self,
        shape: tuple[Any, ...],
        filters: list[PlainFilter],
        order_by: list[Any],
        skip: int,
        limit: int,
        pending: PendingCaller | None,
    ) -> tuple[tuple[Any, Any], dict[str, Any]]:
        """`page` for plain comparisons, built once per shape (fields, operators, sort, and
        whether the caller's role comes along) with the values as parameters: a list request
        then builds no SQL and hashes no cache key."""
        statements = self._plain_pages.get(shape)
        if statements is None:
            where = [
                f.condition(bindparam(f"tablestack_filter_{i}", type_=f.bind_type))
                for i, f in enumerate(filters)
            ]
            offset = bindparam("tablestack_skip", type_=BigInteger())
            page_size = bindparam("tablestack_limit", type_=BigInteger())
            statements = self.page(where, order_by, offset, page_size, pending)
            if len(self._plain_pages) >= _PLAIN_PAGES:
                self._plain_pages.clear()
            self._plain_pages[shape] = statements
        parameters = {f"tablestack_filter_{i}": f.value for i, f in enumerate(filters)}
        parameters["tablestack_skip"] = skip
        parameters["tablestack_limit"] = limit
        return statements, parameters

    async def page_and_total(
        self,
        connection: Connection,
        page: Any,
        count: Any,
        parameters: dict[str, Any],
        skip: int,
        pending: PendingCaller | None,
    ) -> tuple[list[Any], int]:
        """The rows of `page` and the total; only a page past the end counts again.

        A pending caller is admitted from the role the rows carry (or, for an empty page,
        from a query of its own) before anything is returned.
        """
        if pending is not None:
            parameters = {**parameters, **pending.parameters}
        rows = await connection.all(page, parameters or None)
        if pending is not None:
            if rows:
                pending.settle(rows[0][len(self.rows.names) + 1])
            else:
                await pending.check(connection)
        if rows:
            return rows, int(rows[0][len(self.rows.names)])
        if skip == 0:
            return rows, 0
        return rows, int(await connection.scalar(count, parameters or None))

    async def row_estimate(self, connection: Connection) -> int | None:
        """PostgreSQL's estimate of the table's rows (as PostgREST's `count=estimated`).

        None where there is no estimate (SQLite, a table never analysed) or the table is
        small enough to count exactly.
        """
        if self.settings.is_sqlite:
            return None
        found = await connection.scalar(_RELTUPLES, {"table": self.table.name})
        if found is None or found < max(self.settings.estimated_count_min_rows, 0):
            return None  # reltuples is -1 before the first ANALYZE
        return int(found)


def prefers_estimated_count(request: Request) -> bool:
    """Whether the request's `Prefer` header asks for `count=estimated` (RFC 7240)."""
    prefer = request.headers.get("prefer")
    if not prefer:
        return False
    preferences = (p.split(";")[0].strip().lower() for p in prefer.split(","))
    return "count=estimated" in preferences
