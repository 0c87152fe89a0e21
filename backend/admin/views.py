"""One SQLAdmin ModelView per registered table, generated from the registry.

Nothing here names a table: every option comes from the table's columns and relationships,
with the registry's `AdminOptions` overriding the derived defaults. Writes do not go through
SQLAdmin's generic save: the form is validated with the resource's derived schemas (via
`ResourceForm`), then written by the resource's Writer - the one write path of the API and
seeding too - as the signed-in admin; its errors become messages next to the fields. An edit
form carries the version its row was loaded at, and a save over a newer version is refused.
"""

import dataclasses
import json
import logging
import re
import types
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import TypeAdapter, ValidationError
from sqladmin import ModelView
from sqladmin.ajax import QueryAjaxModelLoader
from sqladmin.formatters import BASE_FORMATTERS
from sqladmin.helpers import secure_filename
from sqlalchemy import JSON, Column, Select, Text, false, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper, RelationshipProperty
from sqlmodel import SQLModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import StreamingResponse
from wtforms import Field, Form, HiddenField, PasswordField, StringField, validators

from backend.admin.auth import current_user
from backend.admin.fields import (
    ResourceConverter,
    bytes_detail_formatter,
    bytes_formatter,
    csv_lines,
    duration_formatter,
    export_value,
    json_formatter,
)
from backend.admin.forms import VERSION_FIELD, ResourceForm, current_mode, validated_form
from backend.crud.connection import Connection
from backend.crud.query import ParameterError, check_text
from backend.crud.schemas import derive_schemas, integer_bounds, read_only_fields
from backend.models import Role
from backend.registry import (
    Registry,
    ResourceOptions,
    client_chosen_primary_key,
    column_python_type,
    data_columns,
)
from backend.writes.actor import Actor
from backend.writes.errors import RowNotFound, StillReferenced, VersionMismatch, WriteError
from backend.writes.history import HISTORY, changed_fields_since, is_secret
from backend.writes.service import Writer, writer_for

LIST_COLUMNS_MAX = 7
PAGE_SIZES = (10, 25, 50, 100)
AJAX_LOOKUP_LIMIT = 20


class AdminWriteError(Exception):
    """A write the admin refused or the database rejected; the message is for a person."""


class _ExpectedWriteErrors(logging.Filter):
    """SQLAdmin logs every failed save with a traceback; a refused form is not a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], AdminWriteError))


if TYPE_CHECKING:
    from backend.db import Database

logging.getLogger("sqladmin.application").addFilter(_ExpectedWriteErrors())
logger = logging.getLogger(__name__)

# The row an edit request loaded and the version it was at (read in the same statement).
_loaded: ContextVar[tuple[Any, int] | None] = ContextVar("tablestack_admin_loaded", default=None)


def _format_datetime(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return value.strftime("%Y-%m-%d %H:%M:%S")


FORMATTERS: dict[type, Any] = {
    **BASE_FORMATTERS,
    datetime: _format_datetime,
    Decimal: str,
    timedelta: duration_formatter,
    dict: json_formatter,
    list: json_formatter,
    bytes: bytes_formatter,
}
DETAIL_FORMATTERS: dict[type, Any] = {**FORMATTERS, bytes: bytes_detail_formatter}


@cache
def _key_adapter(python_type: type) -> TypeAdapter[Any]:
    return TypeAdapter(python_type)


def storable(text: str) -> bool:
    """Whether `text` could be stored text: no NUL character, no lone surrogate. Every write
    refuses such text (`backend.writes.values`) and PostgreSQL cannot even compare with it
    (`invalid byte sequence for encoding "UTF8": 0x00`), so it matches nothing stored."""
    try:
        check_text(text)
    except ParameterError:
        return False
    return True


def primary_key_value(model: type[SQLModel], identifier: str) -> Any:
    """The primary key value an admin URL's `identifier` stands for, or None when it cannot be
    one (not a number for an integer key, a malformed UUID, out of the column's range, text no
    row can hold or longer than the column)."""
    columns = list(sa_inspect(model).primary_key)
    if len(columns) != 1:
        return None
    column = columns[0]
    try:
        value = _key_adapter(column_python_type(column) or str).validate_python(identifier)
    except ValidationError:
        return None
    if isinstance(value, int):
        low, high = integer_bounds(column)
        if not low <= value <= high:
            return None
    if isinstance(value, str):
        length = getattr(column.type, "length", None)
        if not storable(value) or (length is not None and len(value) > length):
            return None
    return value


class RelatedRowLoader(QueryAjaxModelLoader):
    """SQLAdmin's search-as-you-type loader, finding the chosen row by a key of any type."""

    async def format_by_pk(self, pk: Any) -> dict[str, Any]:
        value = primary_key_value(self.model, str(pk)) if pk is not None else None
        if value is None:
            return {}
        key: Column[Any] = sa_inspect(self.model).primary_key[0]
        rows = await self.model_admin._run_query(select(self.model).where(key == value).limit(1))
        return self.format(rows[0]) if rows else {}

    async def get_list(self, request: Request, term: str) -> list[Any]:
        """The rows whose fields contain `term`; none for a term no stored text can hold."""
        if not storable(term):
            return []
        rows: list[Any] = await super().get_list(request, term)
        return rows


class ResourceView(ModelView):
    """Base of the generated views: validated forms, written through the one write path."""

    resource: ClassVar[ResourceOptions]
    # The app's Database (set by `mount_admin`): the admin's writes take their connections
    # where the API's do.
    database: ClassVar["Database"]
    model: ClassVar[type[SQLModel]]
    form_converter = ResourceConverter
    column_type_formatters = FORMATTERS
    column_type_formatters_detail = DETAIL_FORMATTERS
    export_types = ["csv", "json"]
    can_import = False

    # -- forms ------------------------------------------------------------------------------

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        """SQLAdmin's form plus the schema-only fields (a user's password)."""
        form = await super().scaffold_form(rules)
        read_only = self._read_only_fields()
        extras = {**self._schema_only_fields(), **read_only}
        if current_mode() == "edit":
            extras[VERSION_FIELD] = HiddenField()
        if not extras:
            return form
        return type(form.__name__, (form,), {**extras, "read_only": frozenset(read_only)})

    def _read_only_names(self) -> list[str]:
        """Columns an edit page shows but never writes: the key, server-managed and
        `readonly_columns` ones (unless the registry leaves them out of forms)."""
        resource = self.resource
        hidden = {
            *resource.admin.form_excluded_columns,
            *resource.admin.column_details_exclude_list,
        }
        names = [*read_only_fields(resource), *resource.admin.readonly_columns]
        names = [
            name
            for name in dict.fromkeys(names)
            if name not in hidden and name not in self._form_prop_names and "password" not in name
        ]
        if client_chosen_primary_key(resource.table):
            # chosen on create; other rows refer to it, so an edit page shows it read-only
            names.insert(0, resource.primary_key)
        return names

    def _read_only_fields(self) -> dict[str, Any]:
        if current_mode() != "edit":
            return {}
        fields: dict[str, Any] = {}
        for name in self._read_only_names():
            field = StringField(
                self._column_labels.get(name, _humanize(name)),
                # readonly, not disabled: the browser posts it back, so a page shown again
                # with errors still shows it (it is never written)
                render_kw={"class": "form-control", "readonly": True},
                description="Read-only.",
            )
            if name == self.resource.primary_key:
                field.creation_counter = 0  # type: ignore[attr-defined]  # first, as on create
            fields[name] = field
        return fields

    async def get_object_for_edit(self, request: Request) -> Any:
        """The row to edit, and (in the same statement) the version it is at."""
        statement = self.form_edit_query(request).add_columns(self.resource.version_column)
        async with self.session_maker(expire_on_commit=False) as session:
            found = (await session.execute(statement)).unique().first()
        if found is None:
            return None
        row, version = found
        _loaded.set((row, int(version)))
        return row

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        """The row's values for the edit form, read-only columns formatted for display, and
        the version the row was loaded at (a hidden field: a save checks it)."""
        data = await super().get_form_data_for_edit(obj)
        loaded = _loaded.get()
        if loaded is not None and loaded[0] is obj:
            data[VERSION_FIELD] = str(loaded[1])
        for name in self._read_only_names():
            value = getattr(obj, name, None)
            if isinstance(value, datetime):
                data[name] = _format_datetime(value)
            else:
                data[name] = "" if value is None else str(value)
        return data

    def _schema_only_fields(self) -> dict[str, Any]:
        """Fields of the Create/Update schemas that are neither columns nor relationships."""
        editing = current_mode() == "edit"
        schemas = derive_schemas(self.resource)
        schema = schemas.update if editing else schemas.create
        links = {link.field for link in schemas.many_to_many}
        fields: dict[str, Any] = {}
        for name, info in schema.model_fields.items():
            if name in self.resource.table.columns or name in links:
                continue
            label = self._column_labels.get(name, _humanize(name))
            required = info.is_required() and not editing
            checks = [validators.InputRequired()] if required else [validators.Optional()]
            field_class: type[Field] = PasswordField if "password" in name else StringField
            description = "Leave blank to keep the current one." if editing else ""
            fields[name] = field_class(
                label,
                validators=checks,
                description=description,
                render_kw={"class": "form-control", "autocomplete": "new-password"},
            )
        return fields

    def __init__(self) -> None:
        super().__init__()
        self._form_ajax_refs = {  # SQLAdmin's loader cannot parse a string key (see below)
            name: RelatedRowLoader(name, loader.model, self, **self.form_ajax_refs[name])
            for name, loader in self._form_ajax_refs.items()
        }

    def _stmt_by_identifier(self, identifier: str) -> Select[Any]:
        """The row `identifier` names; a 404 (not a 500) when it cannot be one of this table's
        keys: `abc` for an integer key, a malformed UUID, an integer out of the column's range.

        SQLAdmin's own parsing calls the column's `python_type`, which is `object` for
        SQLModel's string columns (`TypeError: object() takes no arguments`).
        """
        value = primary_key_value(self.model, identifier)
        if value is None:
            raise HTTPException(404, f"There is no {self.name.lower()} with id {identifier!r}.")
        return select(self.model).where(self.pk_columns[0] == value)

    async def check_can_delete(self, request: Request, model: Any) -> bool:
        """Asked by SQLAdmin for each row of a (bulk) delete before any is deleted: a key of
        no row refuses the whole request with a 404, rather than deleting the rows before it
        and reporting the rest (SQLAdmin's own order)."""
        if model is None:
            pk = request.path_params.get("pk", "")
            raise HTTPException(
                404, f"There is no {self.name.lower()} with id {pk!r}: nothing was deleted."
            )
        allowed: bool = await super().check_can_delete(request, model)
        return allowed

    def search_query(self, stmt: Select[Any], term: str) -> Select[Any]:
        """The list's search; a term no stored text can hold (a NUL, a lone surrogate) finds
        nothing, instead of reaching the database as a parameter it refuses."""
        if not storable(term):
            return stmt.where(false())
        searched: Select[Any] = super().search_query(stmt, term)
        return searched

    async def get_object_filepath(self, identifier: str, column_name: str) -> Path:
        """SQLAdmin's file download and preview routes: the generated views have no file
        columns (bytes are base64 text), so there is never a file to serve. SQLAdmin's own
        answer for a missing row is an AttributeError (a 500)."""
        raise HTTPException(404, "There is no file here.")

    def _form(self) -> ResourceForm:
        form = validated_form()
        if form is None or form.payload is None:
            raise AdminWriteError("the form was not validated")
        return form

    # -- writes -----------------------------------------------------------------------------
    # Every write goes through the resource's Writer (backend.writes.service), as the API's
    # and seeding's do: the admin only turns its errors into messages next to the fields.

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        """Create a row from the validated form (`data`, WTForms' own, is not used)."""
        form = self._form()
        assert form.payload is not None
        values = form.payload.model_dump()
        async with self._writing(request, form) as (writer, db, actor):
            written = await writer.create(db, values, actor)
        return await self._reloaded(written.row_id)

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        """Apply the validated form to the row `pk`, unless it changed since the form was
        loaded (the version in the form's hidden field)."""
        form = self._form()
        assert form.payload is not None
        row_id = primary_key_value(self.model, pk)
        if row_id is None:
            raise AdminWriteError(self._gone(pk))
        values = form.payload.model_dump(exclude_unset=True)
        loaded = _loaded.get()
        if loaded is not None:
            for name, value in list(values.items()):
                if _shown_unchanged(getattr(loaded[0], name, None), value):
                    del values[name]
        expected = form.submitted_version()
        async with self._writing(request, form, row_id) as (writer, db, actor):
            try:
                written = await writer.update(db, row_id, values, actor, expected_version=expected)
            except VersionMismatch as exc:
                message = await self._stale_save_message(db, form, row_id, exc.expected)
                # Django's admin has no such check (the last save wins, silently). Here the
                # first click over a newer version is refused; an admin who has then read who
                # changed which fields may still mean to replace them, so the form shown again
                # carries the version they were told about: saving again overwrites exactly
                # the changes the message named, never later ones (a save made meanwhile is
                # refused the same way). Chosen over an "overwrite" checkbox, which would sit
                # on every edit form and mean nothing except after a conflict.
                form.set_version(exc.current)
                raise AdminWriteError(message) from None
        return await self._reloaded(written.row_id)

    async def delete_model(self, request: Request, pk: Any) -> None:
        """Delete the row `pk` (also each row of the list's bulk delete)."""
        row_id = primary_key_value(self.model, str(pk))
        if row_id is None:
            raise AdminWriteError(self._gone(pk))
        try:
            async with self._writing(request, None) as (writer, db, actor):
                await writer.delete(db, row_id, actor)
        except StillReferenced as exc:
            row = await self.get_object_for_delete(str(pk))
            label = repr(str(row)) if row is not None else str(pk)
            where = ", ".join(exc.referenced_by) or "other tables"
            raise AdminWriteError(
                f"Cannot delete {self.name.lower()} {label}: other rows still refer to it "
                f"({where})."
            ) from None

    @asynccontextmanager
    async def _writing(
        self, request: Request, form: ResourceForm | None, row_id: Any = None
    ) -> AsyncIterator[tuple[Writer, Connection, Actor]]:
        """The Writer, a connection (joined to a test's transaction) and the signed-in admin;
        the write's errors as AdminWriteErrors whose messages a person can read."""
        user = current_user(request)
        if user is None or user.id is None:
            raise AdminWriteError("Sign in again to save.")
        writer = writer_for(self.resource, self.database.engine.dialect.name)
        actor = Actor.user(user.id, user.email, "admin")
        try:
            async with self.database.api_connection() as db:
                yield writer, db, actor
        except (AdminWriteError, StillReferenced):
            raise
        except WriteError as exc:
            labelled = await self._cycle_by_labels(exc, form, row_id)
            raise AdminWriteError(self._show_problems(form, labelled)) from None
        except RowNotFound as exc:
            raise AdminWriteError(self._gone(exc.row_id)) from None
        except Exception:
            # never a statement, a driver's message or a traceback on the page
            logger.exception("%s: the admin's write failed", self.name)
            raise AdminWriteError(
                "The change could not be saved because of an error on the server; it has been "
                "logged."
            ) from None

    async def _cycle_by_labels(
        self, error: WriteError, form: ResourceForm | None, row_id: Any
    ) -> WriteError:
        """A tree cycle named by the rows' labels (`France is below Earth`), not their ids."""
        tree = self.resource.tree
        payload = form.payload if form is not None else None
        if tree is None or row_id is None or payload is None:
            return error
        if not any(problem.kind == "tree_cycle" for problem in error.problems):
            return error
        parent_id = getattr(payload, tree, None)
        name = self.name.lower()
        if parent_id == row_id:
            message = f"A {name} cannot be its own parent."
        else:
            async with self.session_maker() as session:
                parent = await session.get(self.model, parent_id)
                row = await session.get(self.model, row_id)
            message = f"{parent} is below {row}: a {name} cannot be moved under itself."
        return WriteError(
            [
                dataclasses.replace(problem, message=message)
                if problem.kind == "tree_cycle"
                else problem
                for problem in error.problems
            ]
        )

    def _show_problems(self, form: ResourceForm | None, error: WriteError) -> str:
        """Put each problem next to its fields; the message for the top of the form."""
        top: list[str] = []
        for problem in error.problems:
            placed = False
            for field in problem.location:
                if form is not None and form.field_for(field) is not None:
                    form.add_error(field, _sentence(_without_field(problem.message, field)))
                    placed = True
            if not placed:
                top.append(self._unplaced(problem.message, problem.location))
        return " ".join(top) or "Please correct the errors below."

    def _unplaced(self, message: str, fields: Sequence[str]) -> str:
        """A problem no form field shows, named by its field's label."""
        if not fields:
            return _sentence(message)
        label = self._column_labels.get(fields[0], _humanize(fields[0]))
        stripped = _without_field(message, fields[0])
        return _sentence(f"{label}: {stripped}" if stripped != message else message)

    def _gone(self, pk: Any) -> str:
        return f"This {self.name.lower()} (id {pk}) no longer exists: it was deleted meanwhile."

    async def _stale_save_message(
        self, db: Connection, form: ResourceForm, row_id: Any, version: int
    ) -> str:
        """Who changed the row since `version`, and which fields (by the form's labels)."""
        fields = await changed_fields_since(db, self.resource.name, row_id, version)
        entries = (
            select(HISTORY.c.actor)
            .where(
                HISTORY.c.resource == self.resource.name,
                HISTORY.c.row_id == str(row_id),
                HISTORY.c.version > version,
            )
            .order_by(HISTORY.c.id)
        )
        authors = list(dict.fromkeys(str(row[0]) for row in await db.all(entries) if row[0]))
        labels = list(dict.fromkeys(self._label(form, field) for field in fields))
        who = ", ".join(authors) or "someone else"
        what = f": {', '.join(labels)} changed" if labels else ""
        return (
            f"Saved meanwhile by {who}{what}. Your changes are below, not saved: reload the "
            "page to see theirs, or save again to overwrite them."
        )

    def _label(self, form: ResourceForm, field: str) -> str:
        """The label a form shows for a history field (a column, `<fk>_id`, `<name>_ids`)."""
        if is_secret(field) and "password" in form._fields:
            field = "password"
        name = form.field_for(field)
        if name is not None:
            return str(form[name].label.text)
        return str(self._column_labels.get(field, _humanize(field)))

    async def _reloaded(self, row_id: Any) -> Any:
        """The written row as an ORM object: SQLAdmin redirects to it."""
        async with self.session_maker() as session:
            return await session.get(self.model, row_id)

    # -- export -----------------------------------------------------------------------------

    async def check_can_export(self, request: Request) -> bool:
        """Exporting needs the table's `AdminOptions.export_role` (editors by default) as well
        as reading the table: the list page shows the export button only then, and a direct
        request without it is a 403."""
        user = current_user(request)
        if user is None or not Role(user.role).allows(self.resource.admin.export_role):
            return False
        allowed: bool = await super().check_can_export(request)
        return allowed

    async def export_data(
        self, data: list[Any], export_type: str = "csv", request: Request | None = None
    ) -> StreamingResponse:
        """CSV or JSON of the rows' columns, values written as the API writes them."""
        names = [str(name) for name in self.column_export_list]
        rows = [[getattr(row, name, None) for name in names] for row in data]
        filename = secure_filename(self.get_export_name(export_type=export_type))
        headers = {"Content-Disposition": f"attachment;filename={filename}"}
        if export_type == "json":
            records = [dict(zip(names, map(export_value, row), strict=True)) for row in rows]
            body = json.dumps(records, ensure_ascii=False)
            return StreamingResponse(iter([body]), media_type="application/json", headers=headers)
        if export_type == "csv":
            return StreamingResponse(
                csv_lines(names, rows), media_type="text/csv; charset=utf-8", headers=headers
            )
        raise HTTPException(404, f"No export as {export_type!r}.")


def _shown_unchanged(stored: Any, submitted: Any) -> bool:
    """Whether `submitted` is `stored` as the form showed it: a datetime is edited to the
    second (the date picker has no finer unit), and saving a row must not truncate one."""
    if isinstance(stored, datetime) and isinstance(submitted, datetime):
        return stored.microsecond != 0 and stored.replace(microsecond=0) == submitted
    return False


def _sentence(message: str) -> str:
    """A message as a sentence: capitalised, with a full stop (one that has a full stop
    already is left as it is: it may start with a row's label)."""
    message = message.strip()
    if message.endswith((".", "!", "?")):
        return message
    return message[:1].upper() + message[1:] + "."


def _without_field(message: str, field: str) -> str:
    """`message` without the `field: ` it starts with (shown next to that field anyway)."""
    return message.removeprefix(f"{field}: ")


def _humanize(name: str) -> str:
    words = name.removesuffix("_id").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _class_label(model: type) -> str:
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", model.__name__).lower()
    return words[:1].upper() + words[1:]


class ViewOptions:
    """The derived class attributes of one resource's view."""

    def __init__(self, resource: ResourceOptions, registry: Registry) -> None:
        self.resource = resource
        self.registry = registry
        self.mapper: Mapper[Any] = sa_inspect(resource.model)
        self.columns = data_columns(resource.table)
        self.many_to_one: dict[str, RelationshipProperty[Any]] = {}
        for relationship in self.mapper.relationships:
            if relationship.direction.name == "MANYTOONE":
                local = relationship.local_remote_pairs[0][0]
                self.many_to_one[local.name] = relationship
        self.many_to_many = tuple(resource.many_to_many)

    def _shown(self, column: Column[Any]) -> str:
        """A column as shown: a foreign key by its relationship (the related row's label)."""
        relationship = self.many_to_one.get(column.name)
        return relationship.key if relationship is not None else column.name

    def column_list(self) -> list[str]:
        if self.resource.admin.column_list is not None:
            return list(self.resource.admin.column_list)
        hidden = set(self.resource.admin.column_details_exclude_list)
        first = [self.resource.primary_key, *self.resource.natural_key]
        names = list(dict.fromkeys(self._shown(self.resource.table.columns[c]) for c in first))
        for column in self.columns:
            if len(names) >= LIST_COLUMNS_MAX:
                break
            if isinstance(column.type, Text) or "password" in column.name:
                continue
            if column.name in hidden:
                continue
            shown = self._shown(column)
            if shown not in names:
                names.append(shown)
        return names

    def searchable(self) -> list[str]:
        admin = self.resource.admin
        if admin.column_searchable_list is not None:
            return list(admin.column_searchable_list)
        return list(self.resource.search_fields)

    def sortable(self) -> list[str]:
        if self.resource.admin.column_sortable_list is not None:
            return list(self.resource.admin.column_sortable_list)
        # JSON has no order on PostgreSQL ("could not identify an ordering operator")
        return [
            c.name
            for c in self.columns
            if "password" not in c.name and not isinstance(c.type, JSON)
        ]

    def details(self) -> list[str]:
        hidden = set(self.resource.admin.column_details_exclude_list)
        names: list[str] = []
        for column in self.columns:
            if column.name in hidden:
                continue
            names.append(column.name)
            relationship = self.many_to_one.get(column.name)
            if relationship is not None:
                names.append(relationship.key)
        names += [name for name in self.many_to_many if name not in hidden]
        return names

    def export(self) -> list[str]:
        hidden = set(self.resource.admin.column_details_exclude_list)
        return [c.name for c in self.columns if c.name not in hidden]

    def form_columns(self) -> list[str]:
        """Editable columns in table order; foreign keys as their relationship's select."""
        excluded = {
            *read_only_fields(self.resource),
            *self.resource.admin.readonly_columns,
            *self.resource.admin.form_excluded_columns,
        }
        names: list[str] = []
        chosen_key = client_chosen_primary_key(self.resource.table)
        for column in self.columns:
            if column.name in excluded or (column.primary_key and not chosen_key):
                continue
            names.append(self._shown(column))
        names += [name for name in self.many_to_many if name not in excluded]
        return [name for name in names if name not in excluded]

    def labels(self) -> dict[str, str]:
        labels = {c.name: _humanize(c.name) for c in self.columns}
        labels.update({r.key: _humanize(r.key) for r in self.mapper.relationships})
        labels[self.resource.primary_key] = self.resource.primary_key.upper()
        labels.update(self.resource.admin.column_labels)
        return labels

    def ajax_refs(self, form_columns: Sequence[str]) -> dict[str, dict[str, Any]]:
        """A search-as-you-type select for every relationship in the form."""
        refs: dict[str, dict[str, Any]] = {}
        for name in form_columns:
            relationship = self.mapper.relationships.get(name)
            if relationship is None:
                continue
            target = relationship.mapper.class_
            try:
                target_resource = self.registry.for_model(target)
            except KeyError:
                fields: tuple[str, ...] = tuple(
                    c.name for c in target.__table__.columns if c.primary_key
                )
                order_by = fields[0]
            else:
                fields = target_resource.search_fields or target_resource.natural_key
                order_by = target_resource.natural_key[0]
            refs[name] = {"fields": fields, "order_by": order_by, "limit": AJAX_LOOKUP_LIMIT}
        return refs

    def attributes(self) -> dict[str, Any]:
        admin = self.resource.admin
        form_columns = self.form_columns()
        form_class = type(
            f"{self.resource.model.__name__}AdminForm", (ResourceForm,), {"resource": self.resource}
        )
        attributes: dict[str, Any] = {
            "resource": self.resource,
            "name": _class_label(self.resource.model),
            "name_plural": self.resource.label,
            "column_list": self.column_list(),
            "column_searchable_list": self.searchable(),
            "column_sortable_list": self.sortable(),
            "column_default_sort": [(self.resource.primary_key, True)],
            "column_details_list": self.details(),
            "column_export_list": self.export(),
            "column_labels": self.labels(),
            "form_columns": form_columns,
            "form_include_pk": client_chosen_primary_key(self.resource.table),
            "form_ajax_refs": self.ajax_refs(form_columns),
            "form_base_class": form_class,
            "page_size": admin.page_size,
            "page_size_options": sorted({*PAGE_SIZES, admin.page_size}),
        }
        if admin.icon:
            attributes["icon"] = admin.icon
        if admin.category:
            attributes["category"] = admin.category
        return attributes


def build_view(resource: ResourceOptions, registry: Registry) -> type[ResourceView]:
    """The ModelView class of one registered table."""
    attributes = ViewOptions(resource, registry).attributes()
    view = types.new_class(
        f"{resource.model.__name__}Admin",
        (ResourceView,),
        {"model": resource.model},
        lambda namespace: namespace.update(attributes),
    )
    return view


def build_views(registry: Registry) -> list[type[ResourceView]]:
    """One view per registered table, in registration order."""
    return [build_view(resource, registry) for resource in registry]
