"""History retention: `prune_history` deletes the entries past the retention, with a fixed
clock (no waiting), on SQLite and PostgreSQL."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.config import Settings
from backend.db import create_engine
from backend.writes.actor import CLI
from backend.writes.history import HISTORY, entry
from backend.writes.retention import (
    Pruned,
    RetentionError,
    cutoff,
    prune_history,
    retention_days,
)

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
AGES = (0, 10, 29, 30, 31, 100, 400)  # days before NOW


def fixed() -> datetime:
    return NOW


@pytest.fixture
async def history_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the suite's database whose history holds one entry per age in AGES.

    Pruning commits, so the entries are written and removed here rather than rolled back.
    """
    engine = create_engine(Settings(database_url=database_url, environment="test"))
    rows = [
        entry(
            at=NOW - timedelta(days=age),
            actor=CLI,
            resource="tags",
            row_id=age,
            action="created",
            version=1,
            changes={"name": [None, f"tag {age}"]},
        )
        for age in AGES
    ]
    async with engine.begin() as connection:
        await connection.execute(delete(HISTORY))
        await connection.execute(insert(HISTORY).values(rows))
    yield engine
    async with engine.begin() as connection:
        await connection.execute(delete(HISTORY))
    await engine.dispose()


async def kept_ages(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        ids = await connection.scalars(select(HISTORY.c.row_id).order_by(HISTORY.c.at.desc()))
        return [int(i) for i in ids]


async def test_prune_deletes_only_entries_older_than_the_retention(
    history_engine: AsyncEngine,
) -> None:
    counted = await prune_history(history_engine, 30, dry_run=True, now=fixed)
    assert counted == Pruned(30, NOW - timedelta(days=30), 3, dry_run=True)
    assert await kept_ages(history_engine) == list(AGES)  # a dry run only counts

    pruned = await prune_history(history_engine, 30, now=fixed)
    assert pruned == Pruned(30, NOW - timedelta(days=30), 3, dry_run=False)
    assert await kept_ages(history_engine) == [0, 10, 29, 30]  # exactly 30 days old: kept
    assert pruned.describe() == (
        "deleted 3 history entries older than 2026-05-31T12:00:00+00:00 (30 days)"
    )
    again = await prune_history(history_engine, 30, now=fixed)
    assert again.entries == 0

    one = await prune_history(history_engine, 20, dry_run=True, now=fixed)
    assert one.describe() == (
        "dry run, nothing deleted: 2 history entries older than 2026-06-10T12:00:00+00:00 (20 days)"
    )


async def test_a_retention_of_zero_keeps_everything(history_engine: AsyncEngine) -> None:
    kept = await prune_history(history_engine, 0, now=fixed)
    assert kept == Pruned(0, None, 0, dry_run=False)
    assert kept.describe() == "history retention is 0 days: keeping every entry, nothing deleted"
    assert await kept_ages(history_engine) == list(AGES)


def test_the_days_come_from_the_option_else_the_setting() -> None:
    assert retention_days(90, None) == 90
    assert retention_days(90, 7) == 7
    assert retention_days(0, None) == 0
    assert retention_days(90, 0) == 0  # --days 0 keeps everything, as the setting's 0 does
    with pytest.raises(RetentionError, match="--days must be 0 .* or more, not -1"):
        retention_days(90, -1)


def test_the_cutoff_is_utc_and_needs_an_aware_clock() -> None:
    paris = datetime(2026, 6, 30, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    assert cutoff(1, paris) == datetime(2026, 6, 29, 14, 0, tzinfo=UTC)
    assert cutoff(1, paris).tzinfo is UTC
    with pytest.raises(RetentionError, match="timezone-aware"):
        cutoff(1, datetime(2026, 6, 30, 12, 0))  # naive
