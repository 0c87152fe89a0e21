"""The admin writes through the one write path, on both databases: every save leaves a history
entry naming the signed-in admin, a refused save leaves none and says why next to the field
(never SQL), a table's hooks refuse admin saves as they refuse the API's."""

import dataclasses
import html
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.exc import ProgrammingError
from starlette.routing import Mount

from backend.admin.views import ResourceView
from backend.models import Category, Product, Role, Tag, User
from backend.registry import registry
from backend.writes.errors import refuse
from backend.writes.history import HISTORY, shown_changes
from backend.writes.hooks import Change, Hooks
from backend.writes.service import Writer
from tests.admin.conftest import AdminClient
from tests.admin.test_admin_http import field_errors
from tests.fixture_app.hooks import REFUSED_NAME

_ALERT = re.compile(r'<div class="alert alert-danger" role="alert">(.*?)</div>', re.S)
_VERSION = re.compile(r'<input[^>]*name="row_version"[^>]*value="(\d+)"')
SQL_TEXT = re.compile(r"\[SQL|INSERT INTO|UPDATE products|sqlalchemy|asyncpg|sqlite3", re.I)


async def entries(app: FastAPI, resource: str, row_id: Any = None) -> list[dict[str, Any]]:
    """The history entries of a resource (of one row), oldest first."""
    statement = select(HISTORY).where(HISTORY.c.resource == resource).order_by(HISTORY.c.id)
    if row_id is not None:
        statement = statement.where(HISTORY.c.row_id == str(row_id))
    async with app.state.database.api_connection() as db:
        rows = await db.all(statement)
    return [dict(zip(HISTORY.columns.keys(), row, strict=True)) for row in rows]


def top_message(page: str) -> str:
    """The messages at the top of a form page, as text."""
    return " ".join(re.sub(r"<[^>]+>", " ", m).strip() for m in _ALERT.findall(page))


def shown_errors(page: str) -> dict[str, list[str]]:
    """`field_errors` as the reader sees them (HTML entities decoded)."""
    return {k: [html.unescape(m) for m in v] for k, v in field_errors(page).items()}


def version_in(page: str) -> str:
    match = _VERSION.search(page)
    assert match is not None, "the edit form carries no row_version"
    return match.group(1)


async def _catalog(app: FastAPI) -> tuple[Category, Tag, Product]:
    async with app.state.database.api_sessions() as session:
        category, tag = Category(name="Books", slug="books"), Tag(name="new")
        session.add_all([category, tag])
        await session.flush()
        assert category.id is not None
        product = Product(
            sku="BK-1", name="Notebook", price=Decimal("12.50"), category_id=category.id
        )
        session.add(product)
        await session.commit()
        return category, tag, product


async def _product(app: FastAPI, product_id: int | None) -> Product:
    async with app.state.database.api_sessions() as session:
        found: Product | None = await session.get(Product, product_id)
        assert found is not None
        return found


def product_form(category: Category, **changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "sku": "NB-2",
        "name": "Red notebook",
        "description": "",
        "price": "9.99",
        "stock": "3",
        "is_active": "y",
        "category": str(category.id),
        "save": "Save",
    }
    form.update(changes)
    return form


def assert_clean(page: str) -> None:
    """No statement, driver or library text on a page a person sees."""
    assert not SQL_TEXT.search(page), SQL_TEXT.search(page)


# -- history ------------------------------------------------------------------------------------


async def test_create_update_delete_are_recorded_as_the_admin(
    app: FastAPI, admin_client: AdminClient, users: dict[Role, User]
) -> None:
    category, tag, _ = await _catalog(app)
    admin = users[Role.admin]
    products = registry.get("products")

    created = await admin_client.post(
        "/admin/product/create", product_form(category, tags=[str(tag.id)])
    )
    assert created.status_code == 302, field_errors(created.text)
    [entry] = [e for e in await entries(app, "products") if e["action"] == "created"]
    assert (entry["actor"], entry["actor_id"], entry["version"]) == (admin.email, admin.id, 1)
    changes = shown_changes(products, entry["changes"])
    assert changes["sku"] == [None, "NB-2"] and changes["price"] == [None, "9.99"]
    assert changes["tag_ids"] == [None, [tag.id]]
    row_id = entry["row_id"]

    page = await admin_client.http.get(f"/admin/product/edit/{row_id}")
    assert version_in(page.text) == "1"
    edit = product_form(category, price="11.00", tags=[str(tag.id)], row_version="1")
    edited = await admin_client.post(f"/admin/product/edit/{row_id}", edit)
    assert edited.status_code == 302, field_errors(edited.text)
    entry = (await entries(app, "products", row_id))[-1]
    assert (entry["action"], entry["actor"], entry["actor_id"]) == (
        "updated",
        admin.email,
        admin.id,
    )
    assert entry["version"] == 2
    # only what changed: the form sent every field, the name and the tags as they were
    assert shown_changes(products, entry["changes"]) == {"price": ["9.99", "11.00"]}

    deleted = await admin_client.delete(f"/admin/product/delete?pks={row_id}")
    assert deleted.status_code == 200 and "error=" not in deleted.text
    entry = (await entries(app, "products", row_id))[-1]
    assert (entry["action"], entry["actor"], entry["version"]) == ("deleted", admin.email, 2)
    assert shown_changes(products, entry["changes"])["price"] == ["11.00", None]


async def test_bulk_delete_records_each_row(
    app: FastAPI, editor_client: AdminClient, users: dict[Role, User]
) -> None:
    category, _, first = await _catalog(app)
    second = await editor_client.post("/admin/product/create", product_form(category))
    assert second.status_code == 302
    ids = sorted(str(e["row_id"]) for e in await entries(app, "products"))
    ids.append(str(first.id))
    response = await editor_client.delete(f"/admin/product/delete?pks={','.join(ids)}")
    assert response.status_code == 200 and "error=" not in response.text
    deleted = [e for e in await entries(app, "products") if e["action"] == "deleted"]
    assert sorted(e["row_id"] for e in deleted) == sorted(ids)
    assert {e["actor"] for e in deleted} == {users[Role.editor].email}


async def test_a_password_set_in_the_admin_is_recorded_as_changed(
    app: FastAPI, admin_client: AdminClient
) -> None:
    form = {
        "email": "new@example.com",
        "full_name": "New",
        "role": "viewer",
        "is_active": "y",
        "password": "a-long-password",
        "save": "Save",
    }
    assert (await admin_client.post("/admin/user/create", form)).status_code == 302
    [entry] = await entries(app, "users")
    assert entry["changes"]["hashed_password"] == "changed"
    assert "a-long-password" not in str(entry["changes"])


# -- refused writes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"sku": "BK-1"}, "sku", "Sku must be unique: a row with this value exists."),
        ({"name": "Red\x00notebook"}, "name", "Must not contain NUL characters."),
        ({"sku": "S" * 65}, "sku", "Field cannot be longer than 64 characters."),
    ],
    ids=["unique", "nul", "oversize"],
)
async def test_a_refused_create_names_the_field_and_leaves_no_entry(
    app: FastAPI, editor_client: AdminClient, changes: dict[str, str], field: str, message: str
) -> None:
    category, _, _ = await _catalog(app)
    response = await editor_client.post("/admin/product/create", product_form(category, **changes))
    assert response.status_code == 400
    assert field_errors(response.text) == {field: [message]}
    assert_clean(response.text)
    assert await entries(app, "products") == []


async def test_a_refused_update_names_the_field_and_leaves_no_entry(
    app: FastAPI, editor_client: AdminClient
) -> None:
    category, _, product = await _catalog(app)
    response = await editor_client.post(
        f"/admin/product/edit/{product.id}",
        product_form(category, sku="BK-1", description="tab\x00", row_version="1"),
    )
    assert response.status_code == 400
    assert field_errors(response.text) == {"description": ["Must not contain NUL characters."]}
    assert top_message(response.text) == "Please correct the errors below."
    assert_clean(response.text)
    # the form is shown again as typed (the NUL character aside, which HTML cannot show)
    assert 'value="Red notebook"' in response.text
    assert await entries(app, "products") == []
    assert (await _product(app, product.id)).name == "Notebook"


class RefusingHooks(Hooks):
    """Refuses a product named 'Forbidden', on create and on update."""

    async def before_create(self, change: Change) -> None:
        self._check(change)

    async def before_update(self, change: Change) -> None:
        self._check(change)

    async def before_delete(self, change: Change) -> None:
        assert change.before is not None
        if change.before["stock"]:
            raise refuse(None, "a product in stock cannot be deleted")

    @staticmethod
    def _check(change: Change) -> None:
        if change.values.get("name") == "Forbidden":
            raise refuse("name", "this name is reserved")


def admin_views(app: FastAPI) -> dict[str, ResourceView]:
    """The app's admin views by resource name (each app builds its own view classes)."""
    [mount] = [r for r in app.router.routes if isinstance(r, Mount) and r.name == "admin"]
    admin = next(
        route.endpoint.__self__  # type: ignore[attr-defined]
        for route in mount.routes
        if hasattr(getattr(route, "endpoint", None), "__self__")
    )
    return {view.resource.name: view for view in admin.views if isinstance(view, ResourceView)}


@pytest.fixture
def refusing_products(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The products table with RefusingHooks, as `registry.register(..., hooks=)` gives."""
    view = admin_views(app)["products"]
    hooked = dataclasses.replace(view.resource, hooks=RefusingHooks())
    monkeypatch.setattr(type(view), "resource", hooked)
    yield


@pytest.mark.usefixtures("refusing_products")
async def test_a_hook_refuses_an_admin_write_next_to_the_field(
    app: FastAPI, editor_client: AdminClient
) -> None:
    category, _, product = await _catalog(app)
    created = await editor_client.post(
        "/admin/product/create", product_form(category, name="Forbidden")
    )
    assert created.status_code == 400
    assert field_errors(created.text) == {"name": ["This name is reserved."]}
    edited = await editor_client.post(
        f"/admin/product/edit/{product.id}",
        product_form(category, sku="BK-1", name="Forbidden", row_version="1"),
    )
    assert edited.status_code == 400
    assert field_errors(edited.text) == {"name": ["This name is reserved."]}
    assert await entries(app, "products") == []
    # a refusal of the row as a whole is the message at the top of the list
    refused = await editor_client.delete(f"/admin/product/delete?pks={product.id}")
    assert "error=" not in refused.text  # stock 0: allowed
    assert [e["action"] for e in await entries(app, "products")] == ["deleted"]


@pytest.mark.usefixtures("refusing_products")
async def test_a_hook_refusing_a_delete_is_shown_on_the_list(
    app: FastAPI, editor_client: AdminClient
) -> None:
    category, _, _ = await _catalog(app)
    created = await editor_client.post("/admin/product/create", product_form(category))
    [entry] = await entries(app, "products")
    response = await editor_client.delete(f"/admin/product/delete?pks={entry['row_id']}")
    page = await editor_client.http.get(response.text)
    assert created.status_code == 302
    assert "A product in stock cannot be deleted." in page.text
    assert [e["action"] for e in await entries(app, "products")] == ["created"]


async def test_deleting_a_referenced_row_names_who_refers_to_it(
    app: FastAPI, editor_client: AdminClient
) -> None:
    category, _, _ = await _catalog(app)
    response = await editor_client.delete(f"/admin/category/delete?pks={category.id}")
    page = await editor_client.http.get(response.text)
    assert "Cannot delete category &#39;Books&#39;: other rows still refer to it" in page.text
    assert "products.category_id" in page.text
    assert await entries(app, "categories") == []


async def test_an_unexpected_database_error_shows_no_sql(
    app: FastAPI, editor_client: AdminClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the write service lets through is logged, and the page says only that."""

    async def broken(*args: object, **kwargs: object) -> None:
        raise ProgrammingError("INSERT INTO products (sku) VALUES ($1)", {}, Exception("boom"))

    monkeypatch.setattr(Writer, "create", broken)
    category, _, _ = await _catalog(app)
    response = await editor_client.post("/admin/product/create", product_form(category))
    assert response.status_code == 400
    assert top_message(response.text) == (
        "The change could not be saved because of an error on the server; it has been logged."
    )
    assert_clean(response.text)
    assert "boom" not in response.text


async def test_the_registered_hook_refuses_in_the_admin_too(
    app: FastAPI, editor_client: AdminClient
) -> None:
    """The fixture app's currencies are registered with `hooks=CurrencyHooks()`: the hook the
    API and seeding run refuses the admin's create and edit alike."""
    refused = {"code": "EUR", "name": REFUSED_NAME, "save": "Save"}
    created = await editor_client.post("/admin/currency/create", refused)
    assert created.status_code == 400
    message = [f"{REFUSED_NAME!r} is not a currency name."]
    assert shown_errors(created.text) == {"name": message}
    fine = await editor_client.post("/admin/currency/create", {**refused, "name": "Euro"})
    assert fine.status_code == 302, field_errors(fine.text)
    edited = await editor_client.post("/admin/currency/edit/EUR", {**refused, "row_version": "1"})
    assert edited.status_code == 400
    assert shown_errors(edited.text) == {"name": message}
    assert [e["action"] for e in await entries(app, "fx_currencies", "EUR")] == ["created"]
