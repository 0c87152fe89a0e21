"""Throw-away test databases on SQLite and PostgreSQL, each created and dropped by its owner."""

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

# The server the PostgreSQL half of the suite uses; its `postgres` database is only used to
# create and drop the per-test-run databases.
POSTGRES_ADMIN_URL = os.environ.get(
    "TABLESTACK_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("sqlite", "postgresql")


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _postgres_execute(sql: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def postgres_unavailable_reason() -> str | None:
    """None when the test PostgreSQL server answers, else why not."""
    try:
        asyncio.run(_postgres_execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        url = make_url(POSTGRES_ADMIN_URL).render_as_string(hide_password=True)
        return f"PostgreSQL at {url} is unreachable ({type(exc).__name__}: {exc})"
    return None


@contextmanager
def fresh_database(backend: str, tmp_dir: Path) -> Iterator[str]:
    """Create an empty database on `backend`, yield its async URL, drop it afterwards."""
    name = f"tablestack_test_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        path = tmp_dir / f"{name}.db"
        yield f"sqlite+aiosqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    asyncio.run(_postgres_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_postgres_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
