"""Admin forms that validate with the same derived schemas as the API.

SQLAdmin builds a WTForms form per view; WTForms only converts the posted strings to Python
values. `ResourceForm.validate()` then maps the form onto the resource's Create (or Update)
schema - the one the API uses - and puts every schema error next to the field it concerns,
so a negative price or a malformed email is a form error, never a 500.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import RelationshipProperty
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from wtforms import Form

from backend.crud.schemas import Schemas, derive_schemas
from backend.registry import ResourceOptions

Mode = Literal["create", "edit"]

# The edit form's hidden field holding the version its row was loaded at.
VERSION_FIELD = "row_version"

# Which admin endpoint is running (set by TablestackAdmin.create / .edit) and the form it
# validated; both live for one request, in the request's own task.
_mode: ContextVar[Mode | None] = ContextVar("tablestack_admin_form_mode", default=None)
_validated_form: ContextVar["ResourceForm | None"] = ContextVar(
    "tablestack_admin_validated_form", default=None
)


@contextmanager
def form_mode(mode: Mode) -> Iterator[None]:
    """Mark the running request as the create or the edit endpoint."""
    token = _mode.set(mode)
    try:
        yield
    finally:
        _mode.reset(token)


def current_mode() -> Mode | None:
    """'create' or 'edit' inside those endpoints, else None."""
    return _mode.get()


def validated_form() -> "ResourceForm | None":
    """The form the running request validated last, if any."""
    return _validated_form.get()


async def posted_form(request: Request) -> FormData:
    """A create or edit form as posted; a file in it is a 400 page. No generated form has a
    file field (bytes are base64 text), and SQLAdmin would hand the file to a text field
    (`TypeError: object of type 'UploadFile' has no len()`, a 500) or, editing, take the
    row's value for a stored file."""
    form = await request.form()
    files = [name for name, value in form.multi_items() if isinstance(value, UploadFile)]
    if files:
        await form.close()  # its temporary files; Starlette leaves them to the collector
        raise HTTPException(400, f"This form takes no files, but {files[0]!r} was sent as one.")
    return form


class ResourceForm(Form):
    """Base of every generated admin form; subclasses set `resource`."""

    resource: ClassVar[ResourceOptions]
    read_only: ClassVar[frozenset[str]] = frozenset()  # shown, never submitted nor written
    payload: BaseModel | None = None

    @classmethod
    def schemas(cls) -> Schemas:
        return derive_schemas(cls.resource)

    def validate(self, extra_validators: Any = None) -> bool:
        """WTForms' own checks, then the resource's Create/Update schema."""
        converted = super().validate(extra_validators)
        _validated_form.set(self)
        mode = current_mode() or "create"
        schema = self.schemas().create if mode == "create" else self.schemas().update
        data = self.schema_input(mode)
        try:
            self.payload = schema.model_validate(data)
        except ValidationError as exc:
            self.payload = None
            self.add_schema_errors(exc)
            return False
        return converted

    def schema_input(self, mode: Mode) -> dict[str, Any]:
        """The form's values under the schema's field names (relations as ids)."""
        resource = self.resource
        mapper = sa_inspect(resource.model)
        schema = self.schemas().create if mode == "create" else self.schemas().update
        links = {link.relationship: link.field for link in self.schemas().many_to_many}
        data: dict[str, Any] = {}
        for field in self:
            name = field.name
            if field.errors or name in self.read_only or name == VERSION_FIELD:
                continue  # errors: WTForms reported them
            value = field.data
            if name in links:
                ids = [_to_id(v) for v in (value or ()) if v not in ("", None)]
                data[links[name]] = sorted(ids, key=str)
                continue
            relationship = mapper.relationships.get(name)
            if isinstance(relationship, RelationshipProperty):
                column = relationship.local_remote_pairs[0][0].name
                data[column] = None if value in (None, "", "__None") else _to_id(value)
                continue
            if name not in resource.table.columns:
                # a schema-only field such as a user's password: blank means "not given"
                if value in (None, ""):
                    continue
                data[name] = value
                continue
            column = resource.table.columns[name]
            if isinstance(value, str) and value == "" and column.nullable:
                value = None
            data[name] = value
        return {key: value for key, value in data.items() if key in schema.model_fields}

    def submitted_version(self) -> int | None:
        """The version the edit form's row was loaded at (None: not an edit form, or a
        client that sent none - the save then does not check it)."""
        field = self._fields.get(VERSION_FIELD)
        data = field.data if field is not None else None
        try:
            return int(data) if data not in (None, "") else None
        except ValueError:
            return None

    def set_version(self, version: int) -> None:
        """Make the form, shown again, carry `version` (a save then overwrites up to it)."""
        field = self._fields.get(VERSION_FIELD)
        if field is not None:
            field.data = str(version)

    def field_for(self, schema_field: str) -> str | None:
        """The form field showing `schema_field` (a column, `<fk>_id` or `<rel>_ids`)."""
        if schema_field in self._fields:
            return schema_field
        for link in self.schemas().many_to_many:
            if link.field == schema_field and link.relationship in self._fields:
                return link.relationship
        for relationship in sa_inspect(self.resource.model).relationships:
            pairs = relationship.local_remote_pairs or []
            if any(local.name == schema_field for local, _ in pairs):
                if relationship.key in self._fields:
                    return str(relationship.key)
        return None

    def add_error(self, schema_field: str | None, message: str) -> bool:
        """Show `message` next to the field for `schema_field`; False if no field does."""
        name = self.field_for(schema_field) if schema_field else None
        if name is None:
            self.form_errors = [*self.form_errors, message]
            return False
        field = self._fields[name]
        if message not in field.errors:
            # WTForms keeps () until the form is validated, a list afterwards
            field.errors = [*field.errors, message]
        return True

    def add_schema_errors(self, exc: ValidationError) -> None:
        for error in exc.errors():
            location = [str(part) for part in error["loc"]]
            field = location[0] if location else None
            shown = self.field_for(field) if field is not None else None
            if shown is not None and error["type"] == "missing" and self._fields[shown].errors:
                continue  # left out of the schema's input because WTForms refused it already
            message = error["msg"].removeprefix("Value error, ")
            if field is not None and self.field_for(field) is None:
                message = f"{field}: {message}"
            self.add_error(field, message)


def _to_id(value: Any) -> Any:
    """A related row's key: a submitted id is left for the schema to convert to the key's
    type (an int, a UUID, a code); a model instance (an edit form's initial data) gives its
    identity."""
    if hasattr(value, "__table__"):
        return sa_inspect(value).identity[0]
    return value
