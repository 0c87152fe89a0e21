"""Dump the database to a seed set: one YAML file per table, references as natural keys.

Rows are written in creation order where the primary key shows it (a database-assigned
integer), else in natural-key order, so that dumping a set loaded from a dump writes the same
files; in a table that refers to itself, a row's parent always comes before it.
"""

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.seeding.format import (
    SUFFIXES,
    SeedError,
    describe_value,
    flow,
    flow_mapping,
    shown_path,
    write_rows,
)
from backend.seeding.tables import KeyIndexes, SeedTable, seed_tables


@dataclass
class DumpReport:
    """Rows written per table file."""

    directory: Path
    rows: dict[str, int] = field(default_factory=dict)


async def dump_set(engine: AsyncEngine, directory: Path, *, force: bool = False) -> DumpReport:
    """Write every registered table to `directory`; refuse to overwrite a set without `force`."""
    existing = (
        sorted(p for p in directory.glob("*") if p.suffix in SUFFIXES) if directory.is_dir() else []
    )
    if existing and not force:
        raise SeedError(
            f"{shown_path(directory)} already holds a seed set ({len(existing)} files): "
            "use --force to replace it"
        )
    indexes = KeyIndexes()
    rows_by_table: dict[str, list[dict[str, Any]]] = {}
    links_by_table: dict[str, dict[str, dict[Any, list[Any]]]] = {}
    async with engine.connect() as connection:
        # One consistent snapshot: REPEATABLE READ on PostgreSQL, one read transaction on SQLite.
        if engine.dialect.name == "postgresql":
            await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            for table in seed_tables():
                query = select(*table.seeded_columns)  # not the server's row_version
                if table.ordered_by_primary_key:
                    query = query.order_by(table.table.c[table.primary_key])
                rows = [dict(row) for row in (await connection.execute(query)).mappings()]
                rows_by_table[table.name] = rows
                index = indexes[table.name]
                for row in rows:
                    index.add(tuple(row[c] for c in table.natural_key), row[table.primary_key])
                links_by_table[table.name] = {}
                for link in table.links:
                    local = link.table.c[link.local_column]
                    remote = link.table.c[link.remote_column]
                    by_owner: dict[Any, list[Any]] = {}
                    for owner_id, target_id in await connection.execute(select(local, remote)):
                        by_owner.setdefault(owner_id, []).append(target_id)
                    links_by_table[table.name][link.field] = by_owner
    # Order and render everything before touching the folder: a refusal leaves it as it was.
    report = DumpReport(directory)
    rendered: dict[str, list[dict[str, Any]]] = {}
    for table in seed_tables():
        rows = rows_by_table[table.name]
        report.rows[table.name] = len(rows)
        if not table.ordered_by_primary_key:
            rows.sort(key=lambda row: _sort_key(table, row, indexes))
        rows = _parents_first(table, rows, indexes)
        rendered[table.name] = [
            _render_row(table, row, indexes, links_by_table[table.name]) for row in rows
        ]
    directory.mkdir(parents=True, exist_ok=True)
    for path in existing:
        path.unlink()
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    for table in seed_tables():
        written = rendered[table.name]
        if not written:
            continue
        header = (
            f"{table.name}: {len(written)} rows written by `tablestack dump` at {stamp}.\n"
            f"Rows are matched by {' + '.join(table.natural_key_fields)} when loaded."
        )
        write_rows(directory / f"{table.name}.yaml", written, header)
    return report


def _render_row(
    table: SeedTable,
    row: dict[str, Any],
    indexes: KeyIndexes,
    links: dict[str, dict[Any, list[Any]]],
) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    ordered = [*table.natural_key, *(c.name for c in table.seeded_columns)]
    for column in dict.fromkeys(ordered):
        value = row[column]
        if (column == table.primary_key and not table.writes_primary_key) or value is None:
            continue
        reference = table.reference_for_column(column)
        if reference is not None:
            key = indexes.render_key(reference.target, value)
            rendered[reference.field] = flow_mapping(key) if isinstance(key, dict) else key
        else:
            rendered[column] = value
    for link in table.links:
        targets = links[link.field].get(row[table.primary_key], [])
        keys = [indexes.render_key(link.target, target) for target in targets]
        rendered[link.field] = flow(sorted(keys, key=str))
    return rendered


def _sort_key(table: SeedTable, row: dict[str, Any], indexes: KeyIndexes) -> str:
    """The row's natural key as written, as text: an order that does not depend on ids."""
    return repr(indexes.render_key(table.name, row[table.primary_key]))


def _parents_first(
    table: SeedTable, rows: list[dict[str, Any]], indexes: KeyIndexes
) -> list[dict[str, Any]]:
    """`rows` in the same order, except that a row's parent (any reference to the same table)
    is moved up just before it, so that the file loads top-down; a cycle cannot be written."""
    columns = [reference.column for reference in table.self_references]
    if not columns:
        return rows
    position = {row[table.primary_key]: i for i, row in enumerate(rows)}
    placed: list[bool | None] = [None] * len(rows)  # None: not yet, False: on the path, True
    ordered: list[dict[str, Any]] = []
    for first in range(len(rows)):
        if placed[first]:
            continue
        path = [first]
        placed[first] = False
        while path:
            current = path[-1]
            parents = [position[p] for c in columns if (p := rows[current][c]) in position]
            waiting = [p for p in parents if placed[p] is not True]
            if not waiting:
                placed[current] = True
                ordered.append(rows[current])
                path.pop()
                continue
            parent = waiting[0]
            if placed[parent] is False:
                cycle = path[path.index(parent) :]
                shown = " -> ".join(
                    describe_value(indexes.render_key(table.name, rows[i][table.primary_key]))
                    for i in [*cycle, parent]
                )
                raise SeedError(
                    f"cannot dump {table.name}: rows refer to each other in a cycle ({shown}), "
                    "so no order of the file would load"
                )
            placed[parent] = False
            path.append(parent)
    return ordered
