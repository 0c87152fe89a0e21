"""The generated routes' direct connection: what it assumes of the driver, checked."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import ARRAY, Integer, bindparam, cast, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel.sql.sqltypes import UTCDateTime

from backend.crud.connection import AsyncpgConnection, ConnectionSource, StatementCache
from backend.registry import registry


@pytest.fixture
async def direct(backend: str, engine: AsyncEngine, connection: AsyncConnection) -> Any:
    if backend != "postgresql":
        pytest.skip("the direct driver path is asyncpg's")
    async with ConnectionSource().connect(engine, connection) as direct:
        assert isinstance(direct, AsyncpgConnection)
        yield direct


async def test_utc_datetime_needs_no_processing_of_what_asyncpg_returns(
    direct: AsyncpgConnection, engine: AsyncEngine
) -> None:
    """Skipping UTCDateTime's result processing on `timestamptz` changes nothing."""
    process = UTCDateTime()._cached_result_processor(engine.dialect, 1184)
    assert process is not None
    zones = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)))
    for zone in zones:
        sent = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=zone)
        statement = select(cast(bindparam("at", type_=UTCDateTime()), UTCDateTime()))
        received = await direct.scalar(statement, {"at": sent})
        assert received == sent
        assert received.tzinfo is UTC
        processed = process(received)
        assert isinstance(processed, datetime)
        assert processed == received and processed.tzinfo is UTC
        assert received.isoformat() == processed.isoformat()


async def test_an_array_of_plain_items_needs_no_processing_of_what_asyncpg_returns(
    direct: AsyncpgConnection, engine: AsyncEngine
) -> None:
    """Skipping an ARRAY(Integer)'s result processing changes nothing: asyncpg gives a list."""
    array = ARRAY(Integer())
    process = array._cached_result_processor(engine.dialect, 1007)
    assert process is not None
    received = await direct.scalar(
        select(cast(bindparam("ids", type_=array), array)), {"ids": [3, 1, 2]}
    )
    assert received == [3, 1, 2] and isinstance(received, list)
    assert process(received) == received and type(process(received)) is list


async def test_same_shape_statements_use_their_own_values(direct: AsyncpgConnection) -> None:
    for value in (1, 2, 3):
        assert await direct.scalar(select(literal(value) + 10)) == value + 10


async def test_driver_errors_are_sqlalchemy_errors(direct: AsyncpgConnection) -> None:
    """A unique violation arrives as SQLAlchemy's IntegrityError with the driver's details,
    and the connection (a savepoint, here) is usable afterwards."""
    tags = registry.get("tags").table
    await direct.execute(tags.insert(), {"name": "twice"})
    with pytest.raises(IntegrityError) as raised:
        await direct.execute(tags.insert(), {"name": "twice"})
    cause = getattr(raised.value.orig, "__cause__", None)
    assert getattr(cause, "sqlstate", None) == "23505"
    assert await direct.scalar(select(tags.c.name).where(tags.c.name == "twice")) == "twice"


def test_the_statement_cache_compiles_each_shape_once(engine: AsyncEngine) -> None:
    cache = StatementCache(engine.dialect)
    first, own_first = cache.lookup(select(literal(1) + 10), ())
    second, own_second = cache.lookup(select(literal(2) + 10), ())
    assert first is second  # one compiled shape
    assert sorted(own_first.values()) == [1, 10] and sorted(own_second.values()) == [2, 10]
