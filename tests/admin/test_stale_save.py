"""No lost updates in the admin, on both databases: an edit form carries the version its row
was loaded at, and a save over a newer version is refused, naming who changed which fields,
with the form shown again as typed."""

from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI

from backend.crud.connection import Connection
from backend.models import Role, User
from backend.writes.actor import Actor
from backend.writes.service import Writer
from tests.admin.conftest import AdminClient
from tests.admin.test_admin_http import field_errors
from tests.admin.test_writes import (
    _catalog,
    _product,
    assert_clean,
    entries,
    product_form,
    top_message,
    version_in,
)

STALE = (
    "Saved meanwhile by {who}: {fields} changed. Your changes are below, not saved: reload the "
    "page to see theirs, or save again to overwrite them."
)


async def test_a_stale_save_is_refused_naming_the_fields_and_keeps_what_was_typed(
    app: FastAPI,
    admin_client: AdminClient,
    editor_client: AdminClient,
    users: dict[Role, User],
) -> None:
    category, tag, product = await _catalog(app)
    url = f"/admin/product/edit/{product.id}"
    loaded = version_in((await admin_client.http.get(url)).text)
    assert loaded == version_in((await editor_client.http.get(url)).text) == "1"
    as_loaded = product_form(category, sku="BK-1", name="Notebook", price="12.50", stock="0")

    # the admin saves a new price and a tag
    first = await admin_client.post(
        url, {**as_loaded, "price": "20.00", "tags": [str(tag.id)], "row_version": loaded}
    )
    assert first.status_code == 302, field_errors(first.text)

    # the editor, on the page loaded before, renames it: refused, nothing of either lost
    typed = {**as_loaded, "name": "Blue notebook", "stock": "7", "row_version": loaded}
    stale = await editor_client.post(url, typed)
    assert stale.status_code == 400
    admin = users[Role.admin].email
    assert top_message(stale.text) == STALE.format(who=admin, fields="Price, Tags")
    assert_clean(stale.text)
    assert 'value="Blue notebook"' in stale.text and 'value="7"' in stale.text
    saved = await _product(app, product.id)
    assert (saved.name, saved.price, saved.stock) == ("Notebook", Decimal("20.00"), 0)
    assert [e["action"] for e in await entries(app, "products", product.id)] == ["updated"]

    # the form now carries the version the editor was told about: saving again overwrites
    assert version_in(stale.text) == "2"
    again = await editor_client.post(url, {**typed, "row_version": "2"})
    assert again.status_code == 302, top_message(again.text)
    saved = await _product(app, product.id)
    assert (saved.name, saved.price, saved.stock) == ("Blue notebook", Decimal("12.50"), 7)
    last = (await entries(app, "products", product.id))[-1]
    assert last["actor"] == users[Role.editor].email and last["version"] == 3


async def test_saving_again_overwrites_only_what_was_shown(
    app: FastAPI, admin_client: AdminClient, editor_client: AdminClient
) -> None:
    """A save made after the refusal was shown is refused in turn: the overwrite is of the
    changes the message named, never of ones nobody saw."""
    category, _, product = await _catalog(app)
    url = f"/admin/product/edit/{product.id}"
    as_loaded = product_form(category, sku="BK-1", name="Notebook", price="12.50", stock="0")
    await admin_client.post(url, {**as_loaded, "price": "20.00", "row_version": "1"})
    stale = await editor_client.post(url, {**as_loaded, "name": "Blue", "row_version": "1"})
    assert "Price changed" in top_message(stale.text) and version_in(stale.text) == "2"
    third = await admin_client.post(
        url, {**as_loaded, "price": "20.00", "stock": "4", "row_version": "2"}
    )
    assert third.status_code == 302
    again = await editor_client.post(url, {**as_loaded, "name": "Blue", "row_version": "2"})
    assert again.status_code == 400
    assert top_message(again.text) == STALE.format(who="admin@example.com", fields="Stock")
    saved = await _product(app, product.id)
    assert (saved.name, saved.price, saved.stock) == ("Notebook", Decimal("20.00"), 4)


async def test_a_save_after_a_delete_says_the_row_is_gone(
    app: FastAPI, admin_client: AdminClient, editor_client: AdminClient
) -> None:
    category, _, product = await _catalog(app)
    url = f"/admin/product/edit/{product.id}"
    assert (await admin_client.delete(f"/admin/product/delete?pks={product.id}")).status_code == 200
    response = await editor_client.post(url, {**product_form(category), "row_version": "1"})
    assert response.status_code == 404  # SQLAdmin's own answer for an edit of no row


async def test_a_row_deleted_while_saving_is_said_to_be_gone(
    app: FastAPI, editor_client: AdminClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleted between SQLAdmin loading it and the write service writing it."""
    category, _, product = await _catalog(app)
    update = Writer.update

    async def deleted_meanwhile(
        self: Writer, db: Connection, row_id: Any, *args: Any, **kwargs: Any
    ) -> Any:
        await self.delete(db, row_id, Actor("ann@example.com"))
        return await update(self, db, row_id, *args, **kwargs)

    monkeypatch.setattr(Writer, "update", deleted_meanwhile)
    response = await editor_client.post(
        f"/admin/product/edit/{product.id}", {**product_form(category), "row_version": "1"}
    )
    assert response.status_code == 400
    assert top_message(response.text) == (
        f"This product (id {product.id}) no longer exists: it was deleted meanwhile."
    )
    assert 'value="Red notebook"' in response.text
