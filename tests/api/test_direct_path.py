"""The direct PostgreSQL path applies exactly what SQLAlchemy would, for every column.

`AsyncpgConnection` (backend/crud/connection.py) runs compiled statements on the asyncpg
connection itself, applying the types' bind and result processing as SQLAlchemy's execution
context does. This differential test runs the same statements - INSERT ... RETURNING, SELECT by
key, UPDATE ... RETURNING, equality and IN filters on each column, DELETE, an INSERT of many
rows - through SQLAlchemy's AsyncConnection and through the direct path (a first run, which
compiles, and a second, which takes the cached shortcut), for every column of every registered
table, with values that would show a difference (`tests/api/samples.py`), and compares the
results value for value and type for type; where SQLAlchemy's statement fails (a `json` column
has no `=`), the direct path must fail with the same exception class.
"""

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import Column, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.crud.connection import AsyncpgConnection, ConnectionSource
from backend.db import metadata
from backend.registry import ResourceOptions, column_python_type, registry
from tests.api.samples import sample_value

RESOURCES = [resource.name for resource in registry]
_BASE_ID = 900_000_000  # explicit integer keys, far from what sequences hand out


@pytest.fixture
async def direct(
    backend: str, engine: AsyncEngine, connection: AsyncConnection
) -> AsyncIterator[AsyncpgConnection]:
    if backend != "postgresql":
        pytest.skip("the direct driver path is asyncpg's (SQLite runs on SQLAlchemy itself)")
    async with ConnectionSource().connect(engine, connection) as joined:
        assert isinstance(joined, AsyncpgConnection)
        yield joined


def _resource_of(table: Table) -> ResourceOptions | None:
    return next((r for r in registry if r.table is table), None)


def column_value(table: Table, column: Column[Any], variant: int) -> Any:
    """A telling value for any column of a registered table (its key included)."""
    resource = _resource_of(table)
    info = resource.model.model_fields.get(column.name) if resource is not None else None
    if column.primary_key and column_python_type(column) is int:
        return _BASE_ID + variant  # given, as the database would number it otherwise
    if info is None:
        return sample_value(column.name, Any, [], column, variant)
    return sample_value(column.name, info.annotation, info.metadata, column, variant)


class Rows:
    """Full rows of every registered table, references pointing at one stored row each."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.anchors: dict[str, dict[str, Any]] = {}
        self._keys = itertools.count(_BASE_ID + 1000)

    def values(self, table: Table, variant: int) -> dict[str, Any]:
        """Every column, references to the stored anchors (none yet: left empty)."""
        values = {}
        for column in table.columns:
            if column.foreign_keys:
                target = next(iter(column.foreign_keys)).column
                anchor = self.anchors.get(target.table.name)
                values[column.name] = None if anchor is None else anchor[target.name]
            else:
                values[column.name] = column_value(table, column, variant)
        return values

    async def full(self, table: Table, variant: int) -> dict[str, Any]:
        """Every column, references to rows of their own (stored now), so that a unique
        constraint over foreign keys (an order's items) is not broken by sharing them."""
        values = self.values(table, variant)
        for column in table.columns:
            if not column.foreign_keys:
                continue
            target = next(iter(column.foreign_keys)).column
            if target.table is table:
                continue  # the table's own anchor: a tree's parent
            referred = self.values(target.table, variant)
            referred_pk = target.table.primary_key.columns.values()[0]
            if isinstance(referred[referred_pk.name], int):
                referred[referred_pk.name] = next(self._keys)
            await self.connection.execute(insert(target.table), referred)
            values[column.name] = referred[target.name]
        return values

    async def store_anchors(self) -> None:
        """One stored row per registered table, in foreign-key order (a reference to the
        table itself, or to a table not stored yet, left empty)."""
        registered = {resource.table for resource in registry}
        for table in metadata.sorted_tables:
            if table not in registered:
                continue
            values = self.values(table, 7)
            await self.connection.execute(insert(table), values)
            self.anchors[table.name] = values


async def differential(
    connection: AsyncConnection,
    direct: AsyncpgConnection,
    run_sqlalchemy: Callable[[], Awaitable[Any]],
    run_direct: Callable[[], Awaitable[Any]],
    what: str,
) -> Any:
    """Run through SQLAlchemy, then twice through the direct path, each in a savepoint rolled
    back afterwards; the results (or the exception classes) must be the same."""
    outcomes = []
    for run in (run_sqlalchemy, run_direct, run_direct):
        async with connection.begin_nested() as savepoint:
            try:
                outcomes.append(("ok", await run()))
            except Exception as error:
                outcomes.append(("error", type(error).__name__))
            if savepoint.is_active:
                await savepoint.rollback()
    expected, *directs = outcomes
    for got in directs:
        assert got == expected, what
        if expected[0] == "ok":
            assert typed(got[1]) == typed(expected[1]), what
    return expected


def typed(result: Any) -> Any:
    """The result with each value's type beside it (1 == 1.0 == True would hide a change)."""
    if isinstance(result, list):
        return [typed(item) for item in result]
    if isinstance(result, tuple):
        return tuple((type(value).__name__, value) for value in result)
    return (type(result).__name__, result)


@pytest.mark.parametrize("name", RESOURCES)
async def test_the_direct_path_reads_and_writes_every_column_as_sqlalchemy_does(
    name: str, connection: AsyncConnection, direct: AsyncpgConnection
) -> None:
    resource = registry.get(name)
    table = resource.table
    rows = Rows(connection)
    await rows.store_anchors()
    pk = table.columns[resource.primary_key]
    columns = list(table.columns)

    async def sqlalchemy_rows(statement: Any, params: Any = None) -> list[tuple[Any, ...]]:
        result = await connection.execute(statement, params)
        return [tuple(row) for row in result.all()]

    async def direct_rows(statement: Any, params: Any = None) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await direct.all(statement, params)]

    async def compare(statement: Any, params: Any, what: str) -> Any:
        return await differential(
            connection,
            direct,
            lambda: sqlalchemy_rows(statement, params),
            lambda: direct_rows(statement, params),
            f"{name}: {what}",
        )

    # INSERT ... RETURNING every column: what was written comes back, the same both ways.
    written = await rows.full(table, 1)
    inserted = insert(table).returning(*columns)
    outcome = await compare(inserted, written, "insert")
    assert outcome[0] == "ok", outcome
    (returned,) = outcome[1]
    for column, value in zip(columns, returned, strict=True):
        assert value == written[column.name], (name, column.name, value, written[column.name])

    # The row stored for the reads below (through SQLAlchemy).
    await connection.execute(insert(table), written)
    item_id = written[pk.name]
    await compare(select(*columns).where(pk == item_id), None, "select by key")

    # UPDATE ... RETURNING with every other column changed.
    other_row = await rows.full(table, 2)
    changed = {k: v for k, v in other_row.items() if k != pk.name}
    outcome = await compare(
        update(table).where(pk == item_id).returning(*columns), changed, "update"
    )
    assert outcome[0] == "ok", outcome
    (updated,) = outcome[1]
    for column, value in zip(columns, updated, strict=True):
        if column.name in changed:
            assert value == changed[column.name], (name, column.name, value)

    # Equality and IN filters on each column (the direct path must fail where SQLAlchemy does).
    for column in columns:
        value = written[column.name]
        if value is None:
            continue
        await compare(select(pk).where(column == value), None, f"{column.name} = value")
        other = other_row[column.name]
        await compare(select(pk).where(column.in_([value, other])), None, f"{column.name} IN (...)")

    # DELETE (the count of rows), then an INSERT of several rows.
    await differential(
        connection,
        direct,
        lambda: _rowcount(connection, delete(table).where(pk == item_id)),
        lambda: direct.execute(delete(table).where(pk == item_id)),
        f"{name}: delete",
    )
    many = [await rows.full(table, 3), await rows.full(table, 4)]
    if isinstance(many[0][pk.name], int):
        many[1][pk.name] = many[0][pk.name] + 1
    keys = [row[pk.name] for row in many]
    read_back = select(*columns).where(pk.in_(keys)).order_by(pk)

    async def many_through_sqlalchemy() -> Any:
        await connection.execute(insert(table), many)
        return await sqlalchemy_rows(read_back)

    async def many_through_direct() -> Any:
        await direct.execute_many(insert(table), many)
        return await direct_rows(read_back)

    outcome = await differential(
        connection, direct, many_through_sqlalchemy, many_through_direct, f"{name}: many"
    )
    assert outcome[0] == "ok" and len(outcome[1]) == 2, outcome


async def _rowcount(connection: AsyncConnection, statement: Any) -> int:
    return int((await connection.execute(statement)).rowcount)


async def test_bind_processors_come_from_the_compiled_statement(
    direct: AsyncpgConnection, connection: AsyncConnection, engine: AsyncEngine
) -> None:
    """The assumption behind `_prepare`: `construct_expanded_state(...).processors` holds only
    the processors of expanded IN lists, `compiled._bind_processors` those of every other
    parameter (PITFALLS: "reported empty" - verified here)."""
    table = registry.get("fx_specimens").table
    values = Rows(connection).values(table, 1)
    compiled = insert(table).compile(dialect=engine.dialect, column_keys=list(values))
    assert compiled._bind_processors.keys() >= {"kind", "grade", "attributes", "labels"}
    assert compiled.construct_expanded_state(values).processors == {}
    expanding = select(table.c.id).where(table.c.kind.in_([values["kind"]]))
    compiled_in = expanding.compile(dialect=engine.dialect)
    assert compiled_in.post_compile_params
    state = compiled_in._process_parameters_for_postcompile(compiled_in.construct_params())
    assert state.processors  # the expanded IN list's own, per item
