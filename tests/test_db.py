"""The engine: SQLite pragmas on every connection, settings validated."""

import pytest
from sqlalchemy import text

from backend.config import ConfigurationError, Settings, load_settings
from backend.db import create_engine


async def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path: object) -> None:
    engine = create_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x/db.sqlite"))
    try:
        async with engine.connect() as connection:
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await connection.execute(text("PRAGMA busy_timeout"))).scalar() == 5000
    finally:
        await engine.dispose()


def test_postgres_pool_settings_are_applied() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://u@127.0.0.1/x",
        db_pool_size=3,
        db_max_overflow=2,
        db_pool_pre_ping=True,
    )
    engine = create_engine(settings)
    assert engine.pool.size() == 3  # type: ignore[attr-defined]
    assert engine.pool._max_overflow == 2  # type: ignore[attr-defined]
    assert engine.pool._pre_ping is True


def test_invalid_setting_is_one_readable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_POOL_SIZE", "many")
    with pytest.raises(ConfigurationError, match="invalid setting DB_POOL_SIZE"):
        load_settings()


def test_production_needs_a_secret_key() -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        Settings(environment="production").check_production_ready()
    Settings(environment="production", secret_key="x" * 40).check_production_ready()


@pytest.mark.parametrize("length", [5, 31])
def test_production_refuses_a_short_secret_key(length: int) -> None:
    settings = Settings(environment="production", secret_key="k" * length)
    with pytest.raises(ConfigurationError, match=f"SECRET_KEY is {length} characters long"):
        settings.check_production_ready()
    Settings(environment="production", secret_key="k" * 32).check_production_ready()
    Settings(environment="development", secret_key="k" * length).check_production_ready()
