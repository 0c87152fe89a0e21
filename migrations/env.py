"""Alembic environment: async engine, Tablestack's settings and metadata, batch mode on SQLite.

A caller that already holds a connection (tests, `backend.schema`) passes it in
`config.attributes["connection"]`; otherwise this creates its own engine from DATABASE_URL.
"""

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import backend.autogenerate  # noqa: F401  (native enum types, nested types)
import backend.registry  # noqa: F401  (imports every table)
from backend.config import get_settings
from backend.db import metadata

config = context.config
target_metadata = metadata


def _database_url() -> str:
    url: str | None = config.attributes.get("database_url")
    return url or get_settings().database_url


def _configure(**kwargs: Any) -> None:
    url = kwargs.pop("url", None)
    dialect = kwargs["connection"].dialect.name if "connection" in kwargs else url.split(":")[0]
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=False,
        render_as_batch=dialect.startswith("sqlite"),
        # `backend.schema.migrate` listens to report each revision it applies.
        on_version_apply=config.attributes.get("on_version_apply"),
        url=url,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`alembic upgrade head --sql`)."""
    _configure(url=_database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_async_engine(_database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
