"""The one transaction every seeding command writes in."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@asynccontextmanager
async def one_transaction(engine: AsyncEngine, *, dry_run: bool) -> AsyncIterator[AsyncConnection]:
    """A connection in one transaction: committed at the end, rolled back on error or dry run."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        except BaseException:
            await transaction.rollback()
            raise
        if dry_run:
            await transaction.rollback()
        else:
            await transaction.commit()
