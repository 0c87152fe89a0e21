"""History retention: delete the entries older than the retention (`tablestack prune-history`).

Entries are never updated, so pruning is one `DELETE ... WHERE at < cutoff` over the index on
`at`, in one transaction; a dry run counts the same rows instead. The clock is a parameter,
so tests fix "now" rather than wait.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.writes.history import HISTORY

Clock = Callable[[], datetime]


class RetentionError(ValueError):
    """A retention that cannot be applied (a negative number of days)."""


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Pruned:
    """What a prune did: entries deleted (or, in a dry run, counted) older than `before`.

    `before` is None when the retention is 0: every entry is kept and nothing is read.
    """

    days: int
    before: datetime | None
    entries: int
    dry_run: bool

    def describe(self) -> str:
        """One line for the CLI."""
        if self.before is None:
            return "history retention is 0 days: keeping every entry, nothing deleted"
        older = f"older than {self.before.isoformat(timespec='seconds')} ({self.days} days)"
        noun = "entry" if self.entries == 1 else "entries"
        if self.dry_run:
            return f"dry run, nothing deleted: {self.entries} history {noun} {older}"
        return f"deleted {self.entries} history {noun} {older}"


def retention_days(setting: int, override: int | None) -> int:
    """The days to keep: `override` (the command's --days) when given, else the setting."""
    days = setting if override is None else override
    if days < 0:
        source = "--days" if override is not None else "HISTORY_RETENTION_DAYS"
        raise RetentionError(f"{source} must be 0 (keep everything) or more, not {days}")
    return days


def cutoff(days: int, now: datetime) -> datetime:
    """The instant before which entries are past a retention of `days` days."""
    if now.tzinfo is None:
        raise RetentionError("the clock must give a timezone-aware time")
    return now.astimezone(UTC) - timedelta(days=days)


async def prune_history(
    engine: AsyncEngine, days: int, *, dry_run: bool = False, now: Clock = utc_now
) -> Pruned:
    """Delete (or with `dry_run` count) the entries older than `days` days; 0 keeps all."""
    if days < 0:
        raise RetentionError(f"the retention must be 0 (keep everything) or more, not {days}")
    if days == 0:
        return Pruned(days, None, 0, dry_run)
    before = cutoff(days, now())
    past = HISTORY.c.at < before
    async with engine.begin() as connection:
        if dry_run:
            counted = await connection.scalar(select(func.count()).select_from(HISTORY).where(past))
            return Pruned(days, before, int(counted or 0), dry_run)
        result = await connection.execute(delete(HISTORY).where(past))
        return Pruned(days, before, result.rowcount, dry_run)
