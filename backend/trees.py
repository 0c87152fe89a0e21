"""Tables registered with `tree=`: a row may not become its own ancestor.

The check is one recursive query (the same on SQLite and PostgreSQL), so that the API, the
admin and seeding refuse a cycle the same way, each rendering the error in its own manner.
"""

import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Select, func, literal, select

from backend.registry import ResourceOptions


class TreeCycleError(ValueError):
    """Setting the parent would make the row its own ancestor."""

    def __init__(self, resource: ResourceOptions, row_id: Any, parent_id: Any) -> None:
        field = resource.tree or "parent"
        if row_id == parent_id:
            message = f"{field}: a {resource.name} row cannot be its own parent"
        else:
            message = (
                f"{field}: {resource.name} {parent_id} is a descendant of {row_id}; "
                "a row cannot be moved under itself"
            )
        super().__init__(message)
        self.field = field


def cycle_query(resource: ResourceOptions, row_id: Any, parent_id: Any) -> Select[Any]:
    """A query returning a row when `parent_id` is `row_id` or one of its descendants.

    Walks up from `parent_id` through its ancestors (UNION, not UNION ALL: a cycle already in
    the data ends the walk instead of looping) and looks for `row_id` on the way.
    """
    assert resource.tree is not None
    table = resource.table
    pk = table.columns[resource.primary_key]
    parent = table.columns[resource.tree]
    start = select(pk.label("id"), parent.label("parent")).where(pk == parent_id)
    walk = start.cte("tablestack_ancestors", recursive=True)
    walk = walk.union(select(pk.label("id"), parent.label("parent")).where(pk == walk.c.parent))
    return select(literal(1)).select_from(walk).where(walk.c.id == row_id).limit(1)


def needs_cycle_check(resource: ResourceOptions, row_id: Any, values: dict[str, Any]) -> bool:
    """Whether writing `values` to the row `row_id` could close a cycle (an existing row
    whose parent is set to something)."""
    return (
        resource.tree is not None and row_id is not None and values.get(resource.tree) is not None
    )


async def closes_cycle(
    scalar: Callable[[Select[Any]], Awaitable[Any]],
    resource: ResourceOptions,
    row_id: Any,
    parent_id: Any,
    *,
    dialect: str,
) -> bool:
    """Whether making `parent_id` the parent of `row_id` closes a cycle, asked with `scalar`
    (the surface's own way to run a query) inside the write's transaction.

    On PostgreSQL the tree's advisory lock is taken first, held to the end of the transaction:
    two concurrent moves, each fine alone (A under B, B under A), would otherwise close a cycle
    together. (SQLite has one writer at a time.)
    """
    if dialect == "postgresql":
        key = zlib.crc32(resource.table.name.encode())
        await scalar(select(func.pg_advisory_xact_lock(key)))
    return await scalar(cycle_query(resource, row_id, parent_id)) is not None
