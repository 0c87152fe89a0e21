"""The history (audit log): one entry per change, written in the change's own transaction.

Every write goes through `backend.writes`, which adds the entry in the same statement or
transaction as the change: a rolled-back write leaves no entry, and no committed write lacks
one. Entries are never updated; `tablestack prune-history` deletes those past the retention.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

HISTORY_TABLE = "tablestack_history"


class HistoryEntry(SQLModel, table=True):
    """One change of one row (or one bulk load of a table).

    `changes` maps each field to `[before, after]`, values written as the API writes them
    (`before` is null on create, `after` on delete); a secret column (a password hash) maps
    to the string "changed" instead. A bulk load (`seed --fake`) is one entry of action
    `loaded` with no `row_id` and `{"rows": <count>}`.
    """

    __tablename__ = HISTORY_TABLE
    __table_args__ = (Index("ix_tablestack_history_resource_row", "resource", "row_id", "id"),)

    # BIGINT on PostgreSQL; INTEGER on SQLite, whose INTEGER PRIMARY KEY numbers rows itself.
    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    # One index besides the key, for a row's history: every write inserts an entry, and each
    # index costs every write. Lists of all changes page backwards along the key (the entries'
    # order in time); pruning by `at` is a periodic job.
    at: datetime
    # The user's id when a user made the change. No foreign key: an entry outlives its user.
    actor_id: int | None = Field(default=None)
    # Their email, or the tool: `seed:<set>`, `cli`, `fake`.
    actor: str = Field(max_length=320)
    resource: str = Field(max_length=63)
    row_id: str | None = Field(default=None, max_length=255)
    action: str = Field(max_length=16)  # created, updated, deleted, loaded
    # The row's version after the change (before it, for a delete).
    version: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    changes: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column(JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    )
