"""One SQLAdmin ModelView per registered table, generated from the registry.

Nothing here names a table: every option comes from the table's columns and relationships,
with the registry's `AdminOptions` overriding the derived defaults. Writes do not go through
SQLAdmin's generic save: they use the resource's derived schemas (via `ResourceForm`), check
references first and turn integrity errors into messages next to the fields.
"""

import json
import logging
import re
import types
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError
from sqladmin import ModelView
from sqladmin.ajax import QueryAjaxModelLoader
from sqladmin.formatters import BASE_FORMATTERS
from sqladmin.helpers import secure_filename
from sqlalchemy import JSON, Column, Select, Text, delete, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper, RelationshipProperty, selectinload
from sqlmodel import SQLModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import StreamingResponse
from wtforms import Field, Form, PasswordField, StringField, validators

from backend.admin.fields import (
    ResourceConverter,
    bytes_detail_formatter,
    bytes_formatter,
    csv_lines,
    duration_formatter,
    export_value,
    json_formatter,
)
from backend.admin.forms import ResourceForm, current_mode, validated_form
from backend.auth.passwords import hash_password
from backend.crud.schemas import derive_schemas, integer_bounds, read_only_fields
from backend.integrity import describe_integrity_error
from backend.registry import (
    Registry,
    ResourceOptions,
    client_chosen_primary_key,
    column_python_type,
    data_columns,
)
from backend.trees import TreeCycleError, closes_cycle, needs_cycle_check

LIST_COLUMNS_MAX = 7
PAGE_SIZES = (10, 25, 50, 100)
AJAX_LOOKUP_LIMIT = 20


class AdminWriteError(Exception):
    """A write the admin refused or the database rejected; the message is for a person."""


class _ExpectedWriteErrors(logging.Filter):
    """SQLAdmin logs every failed save with a traceback; a refused form is not a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], AdminWriteError))


logging.getLogger("sqladmin.application").addFilter(_ExpectedWriteErrors())
logger = logging.getLogger(__name__)


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


def primary_key_value(model: type[SQLModel], identifier: str) -> Any:
    """The primary key value an admin URL's `identifier` stands for, or None when it cannot be
    one (not a number for an integer key, a malformed UUID, out of the column's range)."""
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


class ResourceView(ModelView):
    """Base of the generated views: validated, reference-checked, integrity-safe writes."""

    resource: ClassVar[ResourceOptions]
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

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        """The row's values for the edit form, read-only columns formatted for display."""
        data = await super().get_form_data_for_edit(obj)
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

    def _form(self) -> ResourceForm:
        form = validated_form()
        if form is None or form.payload is None:
            raise AdminWriteError("the form was not validated")
        return form

    # -- writes -----------------------------------------------------------------------------

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        """Create a row from the validated form: references checked, one transaction."""
        form = self._form()
        assert form.payload is not None
        values = form.payload.model_dump()
        link_ids = self._pop_links(values)
        values = self._row_values(values)
        async with self.session_maker() as session:
            related = await self._check_references(session, form, values, link_ids)
            # `values` were validated by the schema; model_validate() would also read
            # relationship names off the dict (an `items` relationship gets dict.items)
            row = self.model(**values)
            for relationship, rows in related.items():
                setattr(row, relationship, rows)
            session.add(row)
            await self._commit(session, form)
        return row

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        """Apply the validated form to the row `pk`: references checked, one transaction."""
        form = self._form()
        assert form.payload is not None
        values = form.payload.model_dump(exclude_unset=True)
        link_ids = self._pop_links(values)
        values = self._row_values(values)
        async with self.session_maker() as session:
            stmt = self._stmt_by_identifier(pk)
            for link in derive_schemas(self.resource).many_to_many:
                stmt = stmt.options(selectinload(getattr(self.model, link.relationship)))
            row = (await session.execute(stmt)).scalars().first()
            if row is None:
                raise AdminWriteError(f"{self.name} {pk} no longer exists")
            related = await self._check_references(session, form, values, link_ids)
            await self._check_tree(session, form, getattr(row, self.resource.primary_key), values)
            for name, value in values.items():
                if not _shown_unchanged(getattr(row, name, None), value):
                    setattr(row, name, value)
            for relationship, rows in related.items():
                setattr(row, relationship, rows)
            await self._commit(session, form)
        return row

    async def delete_model(self, request: Request, pk: Any) -> None:
        """Delete the row `pk`, letting the database apply its ON DELETE rules."""
        async with self.session_maker() as session:
            row = (await session.execute(self._stmt_by_identifier(pk))).scalars().first()
            if row is None:
                return
            label = str(row)
            conditions = [column == getattr(row, column.key) for column in self.pk_columns]
            try:
                await session.execute(delete(self.model).where(*conditions))
                await session.commit()
            except IntegrityError:
                await session.rollback()
                raise AdminWriteError(
                    f"Cannot delete {self.name.lower()} {label!r}: other rows still refer to it."
                ) from None

    def _pop_links(self, values: dict[str, Any]) -> dict[str, list[int]]:
        """Take the `<rel>_ids` lists out of `values`, keyed by relationship name."""
        popped: dict[str, list[int]] = {}
        for link in derive_schemas(self.resource).many_to_many:
            if link.field in values:
                popped[link.relationship] = list(values.pop(link.field) or [])
        return popped

    def _row_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """Schema values as column values: a given password becomes its stored hash."""
        if "password" in values and "hashed_password" in self.resource.table.columns:
            password = values.pop("password")
            if password is not None:
                values["hashed_password"] = hash_password(password)
        return {k: v for k, v in values.items() if k in self.resource.table.columns}

    async def _check_references(
        self,
        session: AsyncSession,
        form: ResourceForm,
        values: dict[str, Any],
        link_ids: dict[str, list[int]],
    ) -> dict[str, list[Any]]:
        """Refuse ids of rows that do not exist (SQLite would not say which field failed)."""
        problems = False
        for name, value in values.items():
            column = self.resource.table.columns[name]
            if value is None or not column.foreign_keys:
                continue
            target: Column[Any] = next(iter(column.foreign_keys)).column
            found = await session.scalar(select(target).where(target == value))
            if found is None:
                form.add_error(name, f"No {_singular(target.table.name)} with id {value} exists.")
                problems = True
        related: dict[str, list[Any]] = {}
        mapper = sa_inspect(self.model)
        for relationship, ids in link_ids.items():
            target_model = mapper.relationships[relationship].mapper.class_
            pk = sa_inspect(target_model).primary_key[0]
            rows = list((await session.execute(select(target_model).where(pk.in_(ids)))).scalars())
            missing = sorted(set(ids) - {getattr(r, pk.key) for r in rows})
            if missing:
                names = ", ".join(str(i) for i in missing)
                form.add_error(relationship, f"No {relationship} with id {names} exist.")
                problems = True
            related[relationship] = rows
        if problems:
            raise AdminWriteError("Please correct the errors below.")
        return related

    async def _check_tree(
        self, session: AsyncSession, form: ResourceForm, row_id: Any, values: dict[str, Any]
    ) -> None:
        """Refuse a parent that is the row itself or one of its descendants."""
        if not needs_cycle_check(self.resource, row_id, values):
            return
        assert self.resource.tree is not None
        parent_id = values[self.resource.tree]
        dialect = (await session.connection()).dialect.name
        if not await closes_cycle(
            session.scalar, self.resource, row_id, parent_id, dialect=dialect
        ):
            return
        error = TreeCycleError(self.resource, row_id, parent_id)
        if row_id == parent_id:
            message = f"A {self.name.lower()} cannot be its own parent."
        else:
            parent = await session.get(self.model, parent_id)
            message = (
                f"{parent} is below {await session.get(self.model, row_id)}: a "
                f"{self.name.lower()} cannot be moved under itself."
            )
        form.add_error(error.field, message)
        raise AdminWriteError(message)

    async def _commit(self, session: AsyncSession, form: ResourceForm) -> None:
        try:
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            violation = describe_integrity_error(exc)
            message = violation.message()
            message = message[:1].upper() + message[1:] + "."
            for field in violation.fields:
                form.add_error(field, message)
            raise AdminWriteError(message) from None
        except DBAPIError as exc:
            # the schemas should have caught it; never show the statement to the user
            await session.rollback()
            logger.warning("%s: the database refused a value: %s", self.name, exc.orig)
            raise AdminWriteError("A value cannot be stored by the database.") from None

    # -- export -----------------------------------------------------------------------------

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


def _humanize(name: str) -> str:
    words = name.removesuffix("_id").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _singular(table_name: str) -> str:
    if table_name.endswith("ies"):
        return table_name[:-3] + "y"
    return table_name.removesuffix("s").replace("_", " ")


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
