"""The one write path: every create, update and delete of a registered table.

The API's routes, the admin's forms, seed loads and `create-user` all write through a
resource's `Writer`, so every write gets the same checks beyond the schemas, the table's
hooks, reference and tree checks that name the field, many-to-many link replacement, a bumped
`row_version`, and a history entry in the same transaction. Database errors come out as the
domain errors of `backend.writes.errors`, which each surface renders its own way.

Two ways to run a write, with the same outcome:
- The general path: one transaction of several statements - read the stored row (locked on
  PostgreSQL), run the `before_*` hook, check, write, replace links, run the `after_*` hook,
  insert the history entry. SQLite always takes it; so does PostgreSQL when the table has
  hooks, or the write changes links or moves a row in a tree.
- PostgreSQL's fast path, for the common single-row write of columns only: one statement, in
  which data-modifying CTEs lock the row, check its version, change it and insert the history
  entry (built in SQL from the old and new values). One round trip, as the API's writes were
  before there was a history.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Column,
    Select,
    String,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from backend.auth.dependencies import PendingCaller, caller_may
from backend.crud.connection import Connection, Row
from backend.crud.errors import is_data_exception
from backend.crud.rows import LinkTable, row_shape
from backend.integrity import Violation, describe_integrity_error
from backend.models.base import utcnow
from backend.registry import ResourceOptions, data_columns
from backend.trees import TreeCycleError, closes_cycle, needs_cycle_check
from backend.writes import history
from backend.writes.actor import Actor
from backend.writes.errors import (
    Problem,
    ProblemKind,
    RowNotFound,
    StillReferenced,
    VersionMismatch,
    WriteError,
)
from backend.writes.hooks import Change
from backend.writes.values import ColumnValues

Clock = Callable[[], datetime]

_ROW_PK = "tablestack_row_pk"
_SEEN = "tablestack_seen_version"
_EXPECTED = "tablestack_expected_version"
_AT = "tablestack_at"
_ACTOR_ID = "tablestack_actor_id"
_ACTOR = "tablestack_actor"
# A general-path update that finds the row changed between reading and writing it (SQLite's
# writers do not lock a row they read) and has no version to hold on to starts over.
_ATTEMPTS = 3


@dataclass
class Written:
    """A row as a write left it (a delete: as it was), in the API's Read shape."""

    record: dict[str, Any]
    row_id: Any
    version: int
    # What the caller's `finish` made of it: run inside the write's transaction where there
    # is one, so that (say) a response that cannot be encoded rolls the write back.
    finished: Any = None


Finish = Callable[[Written], Any]


def _finished(written: Written, finish: Finish | None) -> Written:
    if finish is not None:
        written.finished = finish(written)
    return written


class Writer:
    """Every write of one resource."""

    def __init__(self, resource: ResourceOptions, dialect: str, clock: Clock = utcnow) -> None:
        self.resource = resource
        self.name = resource.name
        self.postgres = dialect == "postgresql"
        self.dialect = dialect
        self.clock = clock
        self.table: Table = resource.table
        self.rows = row_shape(resource, dialect)
        self.values = ColumnValues(resource)
        self.pk: Column[Any] = self.table.columns[resource.primary_key]
        self.version: Column[Any] = resource.version_column
        self.links: dict[str, LinkTable] = {link.field: link for link in self.rows.links}
        self.hooks = resource.hooks
        self.columns = {c.name: c for c in data_columns(self.table)}
        # What a write returns: the Read shape (columns, then link ids), the data columns the
        # Read shape leaves out (a password hash: the history notes its change), the version.
        self._extra = tuple(c for c in self.columns.values() if c.name not in self.rows.names)
        self._returned = (*self.rows.selected, *self._extra, self.version)
        self._returned_names = (*self.rows.names, *(c.name for c in self._extra))
        self._inserted = (*self.rows.columns, *self._extra, self.version)
        self._inserted_names = (*self.rows.column_names, *(c.name for c in self._extra))
        # History fields of an update: not the ones the server refreshes on every change.
        self._refreshed = {name for name, _ in self.values.refreshed}
        self._pk_index = self.rows.names.index(resource.primary_key)
        stored = select(*self._returned).where(self.pk == bindparam(_ROW_PK))
        self._select_stored = stored.with_for_update(of=self.table) if self.postgres else stored
        self._insert = insert(self.table).returning(*self._inserted)
        self._update = (
            update(self.table)
            .where(self.pk == bindparam(_ROW_PK), self.version == bindparam(_SEEN))
            .values({self.version: self.version + 1})
            .returning(*self._returned)
        )
        self._delete = delete(self.table).where(
            self.pk == bindparam(_ROW_PK), self.version == bindparam(_SEEN)
        )
        self._fast: dict[tuple[Any, ...], Select[Any]] = {}

    # -- create -----------------------------------------------------------------------------

    async def create(
        self,
        db: Connection,
        values: dict[str, Any],
        actor: Actor,
        *,
        pending: PendingCaller | None = None,
        finish: Finish | None = None,
    ) -> Written:
        """Insert a row from validated schema values (`<name>_ids` links, `password` too)."""
        values = dict(values)
        links = self._pop_links(values)
        if pending is not None and values.get("password") is not None:
            await pending.check(db)  # nobody without the role makes the server hash
            pending = None
        self.values.check(values, creating=True)
        await self.values.hash_password(values)
        parented = self.resource.tree is not None and values.get(self.resource.tree) is not None
        if self.postgres and self.hooks is None and not any(links.values()) and not parented:
            columns = self.values.for_insert(values)
            async with self._errors(db, columns):
                written = await self._create_in_one_statement(db, columns, actor, pending, links)
            return _finished(written, finish)
        if pending is not None:
            await pending.check(db)
        async with self._errors(db, values):
            return await self._create_in_transaction(db, values, links, actor, finish)

    async def _create_in_transaction(
        self,
        db: Connection,
        values: dict[str, Any],
        links: dict[str, list[Any]],
        actor: Actor,
        finish: Finish | None,
    ) -> Written:
        at = self.clock()
        async with db.atomic():
            change = Change(
                self.name,
                "create",
                actor,
                at,
                db,
                values={**values, **links},
                dialect=self.dialect,
            )
            if self.hooks is not None:
                await self.hooks.before_create(change)
                links = self._pop_links(change.values)
                self.values.check(change.values, creating=True)
            columns = self.values.for_insert(change.values)
            await self._check_links(db, links)
            created = await db.first(self._insert, columns)
            assert created is not None  # INSERT ... RETURNING
            row_id = created[self._pk_index]
            tree = self.resource.tree
            if tree is not None and columns.get(tree) is not None and columns[tree] == row_id:
                raise self._cycle(row_id, row_id)
            await self._replace_links(db, row_id, links, new=True)
            record, full, version = self._inserted_row(created, links)
            change.row_id, change.after = row_id, record
            if self.hooks is not None:
                await self.hooks.after_create(change)
            changes = history.diff(None, full, [*self.columns, *links])
            await self._entry(db, at, actor, row_id, "created", version, changes)
            return _finished(Written(record, row_id, version), finish)

    async def _create_in_one_statement(
        self,
        db: Connection,
        columns: dict[str, Any],
        actor: Actor,
        pending: PendingCaller | None,
        links: dict[str, list[Any]],
    ) -> Written:
        statement = self._fast_create(tuple(columns), pending is not None)
        parameters = {**columns, **self._entry_parameters(actor)}
        if pending is not None:
            parameters.update(pending.parameters)
        created = await db.first(statement, parameters)
        if created is None:
            assert pending is not None  # only the caller's role stops the INSERT
            await pending.check(db)  # 401/403; or the role changed in between: try again
            return await self._create_in_one_statement(db, columns, actor, None, links)
        if pending is not None:
            pending.granted()
        record, _, version = self._inserted_row(created, links)
        return Written(record, created[self._pk_index], version)

    def _inserted_row(
        self, created: Row, links: dict[str, list[Any]]
    ) -> tuple[dict[str, Any], dict[str, Any], int]:
        """(the Read record with the links as written, every data column, the version)."""
        record = self.rows.record(created, links=False)
        for link in self.rows.links:  # a new row has the links just written, or none
            record[link.field] = sorted(links.get(link.field, []))
        full = {**dict(zip(self._inserted_names, created, strict=False)), **record}
        return record, full, int(created[-1])

    # -- update -----------------------------------------------------------------------------

    async def update(
        self,
        db: Connection,
        row_id: Any,
        values: dict[str, Any],
        actor: Actor,
        *,
        expected_version: int | None = None,
        pending: PendingCaller | None = None,
        finish: Finish | None = None,
    ) -> Written:
        """Change the given fields of the row `row_id` (all of them: a replace).

        With `expected_version`, refuse (VersionMismatch) when the row is at another version.
        """
        values = dict(values)
        values.pop(self.resource.primary_key, None)  # a key names the row: never changed
        links = self._pop_links(values)
        if pending is not None and values.get("password") is not None:
            await pending.check(db)
            pending = None
        self.values.check(values, creating=False)
        await self.values.hash_password(values)
        moved = needs_cycle_check(self.resource, row_id, values)
        if self.postgres and self.hooks is None and not links and not moved:
            columns = self.values.for_update(values)
            async with self._errors(db, columns):
                written = await self._update_in_one_statement(
                    db, row_id, columns, actor, expected_version, pending
                )
            return _finished(written, finish)
        if pending is not None:
            await pending.check(db)
        for attempt in range(_ATTEMPTS):
            try:
                async with self._errors(db, values):
                    return await self._update_in_transaction(
                        db, row_id, values, links, actor, expected_version, finish
                    )
            except VersionMismatch:
                if expected_version is not None or attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _stored(
        self, db: Connection, row_id: Any, expected_version: int | None
    ) -> tuple[Row, int]:
        """The stored row (locked on PostgreSQL) and its version, which must be the expected
        one when there is one."""
        stored = await db.first(self._select_stored, {_ROW_PK: row_id})
        if stored is None:
            raise RowNotFound(self.name, row_id)
        seen = int(stored[-1])
        if expected_version is not None and seen != expected_version:
            raise VersionMismatch(self.name, row_id, expected_version, seen)
        return stored, seen

    async def _update_in_transaction(
        self,
        db: Connection,
        row_id: Any,
        values: dict[str, Any],
        links: dict[str, list[Any]],
        actor: Actor,
        expected_version: int | None,
        finish: Finish | None,
    ) -> Written:
        at = self.clock()
        async with db.atomic():
            stored, seen = await self._stored(db, row_id, expected_version)
            before = self._full(stored)
            change = Change(
                self.name,
                "update",
                actor,
                at,
                db,
                values={**values, **links},
                row_id=row_id,
                before=before,
                dialect=self.dialect,
            )
            if self.hooks is not None:
                await self.hooks.before_update(change)
                links = self._pop_links(change.values)
                self.values.check(change.values, creating=False)
            if needs_cycle_check(self.resource, row_id, change.values):
                await self._refuse_cycle(db, row_id, change.values)
            await self._check_links(db, links)
            columns = self.values.for_update(change.values)
            updated = await db.first(self._update, {**columns, _ROW_PK: row_id, _SEEN: seen})
            if updated is None:  # changed since it was read (SQLite): the caller starts over
                raise VersionMismatch(self.name, row_id, seen, seen + 1)
            await self._replace_links(db, row_id, links, new=False)
            record = self.rows.record(updated)
            record.update({name: sorted(ids) for name, ids in links.items()})
            after = {**self._full(updated), **record}
            change.after = record
            if self.hooks is not None:
                await self.hooks.after_update(change)
            fields = [name for name in (*columns, *links) if name not in self._refreshed]
            version = int(updated[-1])
            await self._entry(
                db, at, actor, row_id, "updated", version, history.diff(before, after, fields)
            )
            return _finished(Written(record, row_id, version), finish)

    async def _update_in_one_statement(
        self,
        db: Connection,
        row_id: Any,
        columns: dict[str, Any],
        actor: Actor,
        expected_version: int | None,
        pending: PendingCaller | None,
    ) -> Written:
        statement = self._fast_update(
            tuple(columns), pending is not None, expected_version is not None
        )
        parameters = {**columns, **self._entry_parameters(actor), _ROW_PK: row_id}
        if expected_version is not None:
            parameters[_EXPECTED] = expected_version
        if pending is not None:
            parameters.update(pending.parameters)
        found = await db.first(statement, parameters)
        if found is None:
            if pending is not None:
                await pending.check(db)  # 401/403 before the 404
            raise RowNotFound(self.name, row_id)
        if pending is not None:
            pending.granted()
        seen, row = found[0], found[1:]
        if row[-1] is None:  # the row is there, but changed since this statement read it
            if expected_version is not None and seen != expected_version:
                raise VersionMismatch(self.name, row_id, expected_version, int(seen))
            # Another writer changed it meanwhile: read it again, as the next statement will.
            return await self._update_in_one_statement(
                db, row_id, columns, actor, expected_version, None
            )
        return Written(self.rows.record(row), row_id, int(row[-1]))

    # -- delete -----------------------------------------------------------------------------

    async def delete(
        self,
        db: Connection,
        row_id: Any,
        actor: Actor,
        *,
        expected_version: int | None = None,
        finish: Finish | None = None,
    ) -> Written:
        """Delete the row `row_id`; the database applies its ON DELETE rules."""
        try:
            async with self._errors(db, None):
                if self.postgres and self.hooks is None:
                    written = await self._delete_in_one_statement(
                        db, row_id, actor, expected_version
                    )
                    return _finished(written, finish)
                return await self._delete_in_transaction(
                    db, row_id, actor, expected_version, finish
                )
        except WriteError as exc:
            if any(p.kind == "foreign_key" for p in exc.problems):
                raise await self._still_referenced(db, row_id) from None
            raise

    async def _delete_in_transaction(
        self,
        db: Connection,
        row_id: Any,
        actor: Actor,
        expected_version: int | None,
        finish: Finish | None = None,
    ) -> Written:
        at = self.clock()
        async with db.atomic():
            stored, seen = await self._stored(db, row_id, expected_version)
            before = self._full(stored)
            change = Change(
                self.name,
                "delete",
                actor,
                at,
                db,
                row_id=row_id,
                before=before,
                dialect=self.dialect,
            )
            if self.hooks is not None:
                await self.hooks.before_delete(change)
            # Core DELETE: the database applies ON DELETE rules; the ORM would try to load
            # and detach related rows instead.
            await db.execute(self._delete, {_ROW_PK: row_id, _SEEN: seen})
            if self.hooks is not None:
                await self.hooks.after_delete(change)
            fields = [*self.columns, *self.links]
            await self._entry(
                db, at, actor, row_id, "deleted", seen, history.diff(before, None, fields)
            )
            return _finished(Written(self.rows.record(stored), row_id, seen), finish)

    async def _delete_in_one_statement(
        self, db: Connection, row_id: Any, actor: Actor, expected_version: int | None
    ) -> Written:
        statement = self._fast_delete(expected_version is not None)
        parameters = {**self._entry_parameters(actor), _ROW_PK: row_id}
        if expected_version is not None:
            parameters[_EXPECTED] = expected_version
        found = await db.first(statement, parameters)
        if found is None:
            raise RowNotFound(self.name, row_id)
        seen, row = found[0], found[1:]
        if row[-1] is None:
            assert expected_version is not None
            raise VersionMismatch(self.name, row_id, expected_version, int(seen))
        return Written(self.rows.record(row), row_id, int(seen))

    async def delete_all(self, db: Connection, actor: Actor) -> int:
        """Delete every row, each with its history entry (and hooks); how many there were."""
        if self.hooks is not None:
            ids = [row[0] for row in await db.all(select(self.pk))]
            async with self._errors(db, None), db.atomic():
                for row_id in ids:
                    await self._delete_in_transaction(db, row_id, actor, None)
            return len(ids)
        at = self.clock()
        async with self._errors(db, None), db.atomic():
            if self.postgres:
                return int(await db.scalar(self._fast_delete_all(), self._entry_parameters(actor)))
            gone = await db.all(delete(self.table).returning(*self._returned))
            fields = [*self.columns, *self.links]
            for row in gone:
                await self._entry(
                    db,
                    at,
                    actor,
                    row[self._pk_index],
                    "deleted",
                    int(row[-1]),
                    history.diff(self._full(row), None, fields),
                )
            return len(gone)

    # -- PostgreSQL's one-statement writes ---------------------------------------------------

    def _entry_parameters(self, actor: Actor) -> dict[str, Any]:
        return {_AT: self.clock(), _ACTOR_ID: actor.user_id, _ACTOR: actor.label}

    def _log(self, source: Any, action: str, changes: Any, version: Any) -> Any:
        """INSERT INTO the history SELECT one entry per row of `source` (a CTE), as a CTE."""
        table = history.HISTORY
        actor = history.actor_expression(
            bindparam(_ACTOR, type_=String()), bindparam(_ACTOR_ID, type_=table.c.actor_id.type)
        )
        entry = select(
            bindparam(_AT, type_=table.c.at.type),
            bindparam(_ACTOR_ID, type_=table.c.actor_id.type),
            actor,
            literal(self.name, String()),
            cast(source.c[self.pk.name], Text),
            literal(action, String()),
            version,
            changes,
        )
        names = ["at", "actor_id", "actor", "resource", "row_id", "action", "version", "changes"]
        return insert(table).from_select(names, entry).cte(f"tablestack_{action}_entry")

    def _fast_create(self, keys: tuple[str, ...], as_caller: bool) -> Select[Any]:
        """INSERT the row and its history entry, in one statement (cached per column set)."""
        shape = ("create", keys, as_caller)
        statement = self._fast.get(shape)
        if statement is None:
            values = [bindparam(key, type_=self.table.columns[key].type) for key in keys]
            chosen = select(*values)
            if as_caller:
                chosen = chosen.where(caller_may(self.resource.write_role))
            created = (
                insert(self.table)
                .from_select(list(keys), chosen)
                .returning(*self._inserted)
                .cte("tablestack_created")
            )
            changes = history.sql_changes(
                (c.name, c, None, created.c[c.name]) for c in self.columns.values()
            )
            log = self._log(created, "created", changes, created.c[self.version.name])
            statement = select(*created.c).add_cte(log)
            self._fast[shape] = statement
        return statement

    def _fast_update(self, keys: tuple[str, ...], as_caller: bool, expecting: bool) -> Select[Any]:
        """Read the row, check its version, UPDATE it and add the history entry, in one
        statement; a row comes back with the version it had (first), then the changed row -
        all null when the version did not match - and none when there is no such row.

        No row lock (it costs a write of its own): the UPDATE applies only while the row is
        at the version read with its old values, which PostgreSQL checks again on the row's
        latest version when another writer got there first. Then nothing is written (not a
        history entry with stale old values either) and the caller runs it again.
        """
        shape = ("update", keys, as_caller, expecting)
        statement = self._fast.get(shape)
        if statement is None:
            set_columns = [self.table.columns[key] for key in keys]
            stored = select(self.pk, self.version, *set_columns).where(
                self.pk == bindparam(_ROW_PK)
            )
            if as_caller:
                stored = stored.where(caller_may(self.resource.write_role))
            old = stored.cte("tablestack_old")
            changed_row = update(self.table).where(
                self.pk == old.c[self.pk.name], self.version == old.c[self.version.name]
            )
            if expecting:
                changed_row = changed_row.where(
                    old.c[self.version.name] == bindparam(_EXPECTED, type_=self.version.type)
                )
            assignments: dict[Any, Any] = {c: bindparam(c.key, type_=c.type) for c in set_columns}
            assignments[self.version] = old.c[self.version.name] + 1
            before = [old.c[c.name].label(f"tablestack_old_{i}") for i, c in enumerate(set_columns)]
            changed = (
                changed_row.values(assignments)
                .returning(*self._returned, *before)
                .cte("tablestack_changed")
            )
            returned = list(changed.c)[: len(self._returned)]
            old_values = list(changed.c)[len(self._returned) :]
            new_values = {c.name: changed.c[c.name] for c in set_columns}
            changes = history.sql_changes(
                (c.name, c, old_values[i], new_values[c.name])
                for i, c in enumerate(set_columns)
                if c.name not in self._refreshed
            )
            log = self._log(changed, "updated", changes, changed.c[self.version.name])
            statement = (
                select(old.c[self.version.name], *returned)
                .select_from(old.outerjoin(changed, true()))
                .add_cte(log)
            )
            self._fast[shape] = statement
        return statement

    def _fast_delete(self, expecting: bool) -> Select[Any]:
        """Lock the row, check its version, DELETE it and add the history entry."""
        shape = ("delete", expecting)
        statement = self._fast.get(shape)
        if statement is None:
            old = (
                select(self.pk, self.version)
                .where(self.pk == bindparam(_ROW_PK))
                .with_for_update(of=self.table)
                .cte("tablestack_old")
            )
            gone_row = delete(self.table).where(self.pk == old.c[self.pk.name])
            if expecting:
                gone_row = gone_row.where(
                    old.c[self.version.name] == bindparam(_EXPECTED, type_=self.version.type)
                )
            gone = gone_row.returning(*self._returned).cte("tablestack_gone")
            statement = (
                select(old.c[self.version.name], *gone.c)
                .select_from(old.outerjoin(gone, true()))
                .add_cte(self._log_deleted(gone))
            )
            self._fast[shape] = statement
        return statement

    def _fast_delete_all(self) -> Select[Any]:
        """DELETE every row and add an entry for each; the count."""
        statement = self._fast.get(("delete-all",))
        if statement is None:
            gone = delete(self.table).returning(*self._returned).cte("tablestack_gone")
            statement = select(func.count()).select_from(gone).add_cte(self._log_deleted(gone))
            self._fast[("delete-all",)] = statement
        return statement

    def _log_deleted(self, gone: Any) -> Any:
        """The history entries of the rows a DELETE ... RETURNING `_returned` CTE removed."""
        returned = list(gone.c)
        changes = history.sql_changes(
            (name, self.columns.get(name), returned[i], None)
            for i, name in enumerate(self._returned_names)
        )
        return self._log(gone, "deleted", changes, gone.c[self.version.name])

    async def _entry(
        self,
        db: Connection,
        at: datetime,
        actor: Actor,
        row_id: Any,
        action: str,
        version: int,
        changes: dict[str, Any],
    ) -> None:
        """Insert the history entry of one change of this resource (the general path)."""
        await history.record(
            db,
            at=at,
            actor=actor,
            resource=self.name,
            row_id=row_id,
            action=action,
            version=version,
            changes=changes,
        )

    # -- checks -----------------------------------------------------------------------------

    def _full(self, row: Row) -> dict[str, Any]:
        """Every data column and link of a row of `_returned`, by name."""
        full = dict(zip(self._returned_names, row, strict=False))
        record = self.rows.record(row)  # link ids decoded and sorted, times as written
        return {**full, **{name: record[name] for name in self.links}}

    def _pop_links(self, values: dict[str, Any]) -> dict[str, list[Any]]:
        """Take the `<name>_ids` fields out of `values`, without duplicates, in order."""
        return {
            name: list(dict.fromkeys(values.pop(name) or []))
            for name in self.links
            if name in values
        }

    async def _check_links(self, db: Connection, links: dict[str, list[Any]]) -> None:
        """Refuse ids in `<name>_ids` that have no row (one query per field)."""
        for name, ids in links.items():
            if not ids:
                continue
            link = self.links[name]
            statement = select(link.target_pk).where(link.target_pk.in_(ids))
            found = {row[0] for row in await db.all(statement)}
            missing = sorted(set(ids) - found, key=str)
            if missing:
                table = link.target_table.name
                shown = ", ".join(map(str, missing))
                raise WriteError(
                    [Problem(name, f"{name}: no {table} row has id {shown}", "foreign_key")]
                )

    async def _replace_links(
        self, db: Connection, row_id: Any, links: dict[str, list[Any]], *, new: bool
    ) -> None:
        """Make the link tables hold exactly `links` for this row."""
        for name, ids in links.items():
            link = self.links[name]
            if not new:
                await db.execute(delete(link.table).where(link.owner == row_id))
            rows = [{link.owner.name: row_id, link.target.name: i} for i in ids]
            await db.execute_many(insert(link.table), rows)

    async def _refuse_cycle(self, db: Connection, row_id: Any, values: dict[str, Any]) -> None:
        """Refuse a parent that is the row itself or one of its descendants."""
        assert self.resource.tree is not None
        parent_id = values[self.resource.tree]
        if await closes_cycle(db.scalar, self.resource, row_id, parent_id, dialect=self.dialect):
            raise self._cycle(row_id, parent_id)

    def _cycle(self, row_id: Any, parent_id: Any) -> WriteError:
        error = TreeCycleError(self.resource, row_id, parent_id)
        return WriteError([Problem(error.field, str(error), "tree_cycle")])

    async def _check_references(self, db: Connection, values: dict[str, Any]) -> None:
        """Name the field whose foreign key points at a missing row (one query each).

        The database refused the write already, but SQLite does not say which field.
        """
        for column in self.table.columns:
            value = values.get(column.name)
            if value is None or not column.foreign_keys:
                continue
            for foreign_key in column.foreign_keys:
                target: Column[Any] = foreign_key.column
                statement = select(literal(1)).select_from(target.table).where(target == value)
                if await db.first(statement.limit(1)) is None:
                    constraint = getattr(foreign_key.constraint, "name", None)
                    raise WriteError(
                        [
                            Problem(
                                column.name,
                                f"{column.name}: no {target.table.name} row has "
                                f"{target.name} {value}",
                                "foreign_key",
                                constraint if isinstance(constraint, str) else None,
                            )
                        ]
                    )

    async def _still_referenced(self, db: Connection, row_id: Any) -> StillReferenced:
        """The tables whose rows still point at this one."""
        found = []
        for table in self.table.metadata.tables.values():
            for foreign_key in table.foreign_keys:
                if foreign_key.column.table is not self.table:
                    continue
                statement = (
                    select(literal(1))
                    .select_from(table)
                    .where(foreign_key.parent == row_id)
                    .limit(1)
                )
                if await db.first(statement) is not None:
                    found.append(f"{table.name}.{foreign_key.parent.name}")
        return StillReferenced(self.name, row_id, sorted(found))

    @asynccontextmanager
    async def _errors(self, db: Connection, written: dict[str, Any] | None) -> AsyncIterator[None]:
        """Integrity and data errors as WriteErrors naming the field (no SQL in them).

        `written` holds the column values being written: a foreign key that points at no row
        is then named by `_check_references`, after the failed transaction was rolled back,
        instead of paying a query per foreign key on every write.
        """
        try:
            yield
        except IntegrityError as exc:
            violation = describe_integrity_error(exc)
            if violation.kind == "foreign_key" and written:
                await self._check_references(db, written)
            raise violation_error(violation) from None
        except DBAPIError as exc:
            if is_data_exception(exc):
                raise WriteError(
                    [Problem(None, "a value cannot be stored by the database", "invalid")]
                ) from None
            raise


_KINDS: dict[str, ProblemKind] = {
    "unique": "unique",
    "foreign_key": "foreign_key",
    "check": "check",
    "not_null": "missing",
}


def violation_error(violation: Violation) -> WriteError:
    """The WriteError of a database integrity violation."""
    return WriteError(
        [
            Problem(
                violation.fields[0] if violation.fields else None,
                violation.message(),
                _KINDS.get(violation.kind, "other"),
                violation.constraint,
                fields=violation.fields if len(violation.fields) > 1 else (),
            )
        ]
    )


@cache
def writer_for(resource: ResourceOptions, dialect: str) -> Writer:
    """The Writer of a resource on a database dialect (built once)."""
    return Writer(resource, dialect)
