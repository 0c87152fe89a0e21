"""The history of bulk loads: one entry per table a load wrote, not one per row.

`seed --fake` writes its rows with COPY (PostgreSQL) or executemany (SQLite), around the write
service, for speed; it still leaves a trace in the history, written on the load's own
connection, inside its transaction, so a load that fails or is rolled back (a dry run) leaves
no entry, and a committed one always has its entries.
"""

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.writes.actor import FAKE, Actor
from backend.writes.history import HISTORY, entry

LOADED = "loaded"


def load_entries(rows: Mapping[str, int], *, actor: Actor, at: datetime) -> list[dict[str, Any]]:
    """The column values of the entries of one load: one per resource that got rows."""
    return [
        entry(
            at=at,
            actor=actor,
            resource=resource,
            row_id=None,
            action=LOADED,
            version=None,
            changes={"rows": count},
        )
        for resource, count in rows.items()
        if count > 0
    ]


async def record_loads(
    connection: AsyncConnection,
    rows: Mapping[str, int],
    *,
    actor: Actor = FAKE,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Insert one `loaded` entry per resource of `rows` (resource name -> rows written), in
    the connection's transaction, in one statement; how many entries were written."""
    entries = load_entries(rows, actor=actor, at=now())
    if entries:
        await connection.execute(insert(HISTORY).values(entries))
    return len(entries)
