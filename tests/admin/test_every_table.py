"""Every registered table through the admin, on both databases: create, list, search, sort,
details, edit, export and delete, with sample values drawn from the table's own schemas.

Nothing here names a table: a newly registered one is covered by these tests as it stands.
"""

import base64
import enum
import json
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import selectinload
from sqlmodel import select

from backend.admin.views import ResourceView, ViewOptions, build_views
from backend.crud.schemas import derive_schemas
from backend.registry import VERSION_COLUMN, ResourceOptions, client_chosen_primary_key, registry
from tests.admin.conftest import AdminClient
from tests.admin.samples import Samples
from tests.admin.test_admin_http import field_errors

VIEWS = {view.resource.name: view for view in build_views(registry)}
_EDIT_URL = re.compile(r"/admin/[^/]+/edit/(?P<pk>[^/?]+)$")


@pytest.fixture(params=[resource.name for resource in registry])
def resource(request: pytest.FixtureRequest) -> ResourceOptions:
    return registry.get(request.param)


def form_value(value: Any) -> Any:
    """A Python value as a browser would post it in the admin's form."""
    if isinstance(value, bool):
        return "y" if value else None
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


class AdminRows:
    """Creates rows of any registered table through the admin's own forms."""

    def __init__(self, app: FastAPI, client: AdminClient) -> None:
        self.app = app
        self.client = client
        self.samples = Samples()

    def view(self, resource: ResourceOptions) -> type[ResourceView]:
        return VIEWS[resource.name]

    async def form(self, resource: ResourceOptions, *, editing: bool = False) -> dict[str, Any]:
        """Form fields (by form name) with fresh sample values; related rows are created."""
        view = self.view(resource)
        options = ViewOptions(resource, registry)
        schemas = derive_schemas(resource)
        schema = schemas.update if editing else schemas.create
        links = {link.field: link for link in schemas.many_to_many}
        form: dict[str, Any] = {}
        for name, info in schema.model_fields.items():
            if name in links:
                target = registry.for_model(links[name].target)
                form[links[name].relationship] = (await self.create(target),)
                continue
            if name in resource.table.columns:
                column = resource.table.columns[name]
                shown = options._shown(column)
                if shown not in view.form_columns:
                    continue
                if editing and column.primary_key:
                    continue  # read-only on the edit page
                relationship = options.many_to_one.get(name)
                if relationship is not None:
                    target = registry.for_model(relationship.mapper.class_)
                    if target is resource and not editing:
                        continue  # no other row of this table to refer to yet
                    form[shown] = await self.create(target)
                    continue
            form[name] = self.samples.value(resource.name, name, info)
        return form

    async def post(self, url: str, form: dict[str, Any], save: str) -> Any:
        data = {k: v for k, v in ((k, _posted(v)) for k, v in form.items()) if v is not None}
        return await self.client.post(url, {**data, "save": save})

    async def create(self, resource: ResourceOptions) -> str:
        """A new row's primary key, as it appears in admin URLs."""
        identity = self.view(resource).identity
        form = await self.form(resource)
        response = await self.post(f"/admin/{identity}/create", form, "Save and continue editing")
        assert response.status_code == 302, (
            resource.name,
            field_errors(response.text),
            _alerts(response.text),
        )
        match = _EDIT_URL.search(response.headers["location"])
        assert match is not None, response.headers["location"]
        return match.group("pk")

    async def row(self, resource: ResourceOptions, pk: str) -> Any:
        """The row `pk` as a fresh session reads it."""
        model = resource.model
        key: Any = TypeAdapter(resource.primary_key_type).validate_python(pk)
        query = select(model).where(resource.table.columns[resource.primary_key] == key)
        for name in resource.many_to_many:
            query = query.options(selectinload(getattr(model, name)))
        async with self.app.state.database.api_sessions() as session:
            return (await session.exec(query)).first()


def _alerts(html: str) -> list[str]:
    return re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', html, re.S)


def _posted(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)  # ids of related rows
    return form_value(value)


def assert_stored(resource: ResourceOptions, row: Any, form: dict[str, Any]) -> None:
    """Every value the form sent is what the row holds (as the schema reads it)."""
    payload: BaseModel = derive_schemas(resource).read.model_validate(row)
    options = ViewOptions(resource, registry)
    for column in resource.table.columns:
        shown = options._shown(column)
        if shown not in form or column.name not in type(payload).model_fields:
            continue
        sent = form[shown]
        stored = getattr(payload, column.name)
        if shown != column.name:  # a related row, sent by its key
            assert str(stored) == sent, (resource.name, column.name, stored, sent)
        else:
            assert same(stored, sent), (resource.name, column.name, stored, sent)
    for name in resource.many_to_many:
        stored_ids = {str(sa_inspect(r).identity[0]) for r in getattr(row, name)}
        assert stored_ids == set(form[name]), (resource.name, name)


def same(stored: Any, sent: Any) -> bool:
    if isinstance(stored, enum.Enum):
        stored = stored.value
    if isinstance(sent, enum.Enum):
        sent = sent.value
    if isinstance(sent, (Decimal, float)) and not isinstance(sent, bool):
        return Decimal(str(stored)) == Decimal(str(sent))
    if isinstance(sent, str) and not isinstance(stored, str):
        return str(stored) == sent
    equal: bool = stored == sent
    return equal


def assert_no_version(text: str) -> None:
    """The server's row version is not the row's data: no admin page or export shows it
    (a hidden form field may carry it back, as the version an edit was loaded at)."""
    shown = re.sub(r'<input[^>]*type="hidden"[^>]*>', "", text)
    assert VERSION_COLUMN not in shown and "Row version" not in shown


@pytest.fixture
def rows(app: FastAPI, admin_client: AdminClient) -> AdminRows:
    return AdminRows(app, admin_client)


async def test_create_show_edit_export_and_delete(
    resource: ResourceOptions, rows: AdminRows, admin_client: AdminClient
) -> None:
    http = admin_client.http
    view = rows.view(resource)
    base = f"/admin/{view.identity}"
    create_page = await http.get(f"{base}/create")
    assert create_page.status_code == 200
    assert_no_version(create_page.text)

    form = await rows.form(resource)
    created = await rows.post(f"{base}/create", form, "Save and continue editing")
    assert created.status_code == 302, (field_errors(created.text), _alerts(created.text))
    match = _EDIT_URL.search(created.headers["location"])
    assert match is not None
    pk = match.group("pk")
    row = await rows.row(resource, pk)
    assert row is not None
    assert_stored(resource, row, form)

    listing = await http.get(f"{base}/list")
    assert listing.status_code == 200
    assert f"{base}/details/{pk}" in listing.text
    details = await http.get(f"{base}/details/{pk}")
    assert details.status_code == 200, (
        pk,
        re.findall(r"<h[1-3][^>]*>.*?</h[1-3]>|<p>.*?</p>", details.text, re.S),
    )
    edit_page = await http.get(f"{base}/edit/{quote(pk)}")
    assert edit_page.status_code == 200
    history = await http.get(f"{base}/history/{quote(pk)}")
    assert history.status_code == 200
    # the admin's create, recorded under the signed-in admin
    assert '<td class="text-nowrap history-action">created</td>' in history.text
    for page in (listing, details, edit_page, history):
        assert_no_version(page.text)

    for field in view.column_searchable_list:
        value = getattr(row, str(field))
        if isinstance(value, str) and value:
            found = await http.get(f"{base}/list", params={"search": value})
            assert found.status_code == 200 and f"{base}/details/{pk}" in found.text
    for field in view.column_sortable_list:
        for direction in ("asc", "desc"):
            page = await http.get(f"{base}/list", params={"sortBy": str(field), "sort": direction})
            assert page.status_code == 200, (field, direction)
            assert f"{base}/details/{pk}" in page.text

    exported = await http.get(f"{base}/export/json")
    assert exported.status_code == 200
    records = json.loads(exported.text)
    assert any(str(record[resource.primary_key]) == pk for record in records)
    csv = await http.get(f"{base}/export/csv")
    assert csv.status_code == 200 and pk in csv.text
    assert all(VERSION_COLUMN not in record for record in records)
    assert_no_version(csv.text)

    changes = await rows.form(resource, editing=True)
    edited = await rows.post(f"{base}/edit/{pk}", changes, "Save")
    assert edited.status_code == 302, field_errors(edited.text)
    row = await rows.row(resource, pk)
    assert_stored(resource, row, changes)

    deleted = await admin_client.delete(f"{base}/delete?pks={quote(pk)}")
    assert deleted.status_code == 200 and "error=" not in deleted.text, deleted.text
    assert await rows.row(resource, pk) is None


async def test_unknown_or_malformed_ids_are_not_found(
    resource: ResourceOptions, admin_client: AdminClient
) -> None:
    base = f"/admin/{VIEWS[resource.name].identity}"
    for pk in ("not-a-key", "99999999999999999999999", "00000000-0000-0000-0000-000000000000"):
        for page in ("details", "edit"):
            response = await admin_client.http.get(f"{base}/{page}/{pk}")
            assert response.status_code == 404, (page, pk, response.status_code)
    deleted = await admin_client.delete(f"{base}/delete?pks=99999999999999999999999")
    # refused before the delete (a key of the wrong type) or by it (no such row): never a 500
    assert deleted.status_code == 404 or "error=" in deleted.text


def test_client_chosen_keys_are_written_on_create_only(resource: ResourceOptions) -> None:
    view = VIEWS[resource.name]
    chosen = client_chosen_primary_key(resource.table)
    assert (resource.primary_key in view.form_columns) == chosen
    assert view.form_include_pk == chosen
