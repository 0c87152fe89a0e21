"""Dump the database to a seed set: one YAML file per table, references as natural keys."""

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.seeding.format import SUFFIXES, SeedError, flow, flow_mapping, shown_path, write_rows
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
                result = await connection.execute(
                    select(table.table).order_by(table.table.c[table.primary_key])
                )
                rows = [dict(row) for row in result.mappings()]
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
    directory.mkdir(parents=True, exist_ok=True)
    for path in existing:
        path.unlink()
    report = DumpReport(directory)
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    for table in seed_tables():
        rows = rows_by_table[table.name]
        report.rows[table.name] = len(rows)
        if not rows:
            continue
        written = [_render_row(table, row, indexes, links_by_table[table.name]) for row in rows]
        header = (
            f"{table.name}: {len(rows)} rows written by `tablestack dump` at {stamp}.\n"
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
    ordered = [*table.natural_key, *(c.name for c in table.table.columns)]
    for column in dict.fromkeys(ordered):
        value = row[column]
        if column == table.primary_key or value is None:
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
