"""Per-table hooks, run by the one write path for the API, the admin and seeding alike.

In the style of Django's `ModelAdmin.save_model` and sqladmin's `on_model_change`: subclass
`Hooks`, override what you need and register it with the table::

    class OrderHooks(Hooks):
        async def before_update(self, change: Change) -> None:
            if change.values.get("status") == "paid" and change.before["placed_at"] is None:
                change.values["placed_at"] = change.at

    registry.register(Order, hooks=OrderHooks())

Every hook runs inside the write's transaction. A `before_*` hook may change
`change.values` (the column values about to be written) or refuse the write with
`raise refuse("field", "why")`, which each surface shows next to the field. An `after_*` hook
sees the row as written (`change.after`); raising there rolls the whole write back, history
entry included.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from backend.writes.actor import Actor

if TYPE_CHECKING:
    from backend.crud.connection import Connection

Action = Literal["create", "update", "delete"]


@dataclass
class Change:
    """One write as the hooks see it."""

    resource: str  # the resource name (`orders`)
    action: Action
    actor: Actor
    at: datetime  # the time the history records for this change
    connection: "Connection"  # the write's connection, for queries of the hook's own
    # The column values to write (create, update: only the fields being changed), with
    # many-to-many ids under their `<name>_ids` field; a hook may change them.
    values: dict[str, Any] = field(default_factory=dict)
    row_id: Any = None  # None before a create
    before: dict[str, Any] | None = None  # the stored row (update, delete)
    after: dict[str, Any] | None = None  # the row as written (after_create, after_update)
    dialect: str = "sqlite"  # the database's: "postgresql" or "sqlite"


class Hooks:
    """No-op hooks: override the ones a table needs."""

    async def before_create(self, change: Change) -> None:
        """Before the INSERT: may change `change.values` or refuse."""

    async def after_create(self, change: Change) -> None:
        """After the INSERT, in its transaction: `change.after` is the new row."""

    async def before_update(self, change: Change) -> None:
        """Before the UPDATE: `change.before` is the stored row; may change `values`."""

    async def after_update(self, change: Change) -> None:
        """After the UPDATE, in its transaction: `change.after` is the row as written."""

    async def before_delete(self, change: Change) -> None:
        """Before the DELETE: `change.before` is the stored row; may refuse."""

    async def after_delete(self, change: Change) -> None:
        """After the DELETE, in its transaction."""
