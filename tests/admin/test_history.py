"""The admin's history pages over HTTP, on both backends: one record's history (for whoever
reads its table) and every change (admins only), with filters in the URL.

Until every write records its entry, each test inserts the entries it reads.
"""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape
from typing import Any

from fastapi import FastAPI
from sqlmodel import select

from backend.admin.history import PAGE_SIZE
from backend.models import Category, HistoryEntry, Product, Role, User
from tests.admin.conftest import AdminClient

MARCH = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_ENTRY = re.compile(r'<tr class="history-entry" data-entry-id="(\d+)">(.*?)</tr>', re.S)


def entries(html: str) -> list[tuple[int | None, str]]:
    """The (entry id, visible text) of each entry a page lists, in page order."""
    return [
        (int(match.group(1)), " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(2))).split()))
        for match in _ENTRY.finditer(html)
    ]


async def _product(app: FastAPI, sku: str = "BK-1") -> Product:
    async with app.state.database.api_sessions() as session:
        category = Category(name=f"Books {sku}", slug=f"books-{sku.lower()}")
        session.add(category)
        await session.flush()
        assert category.id is not None
        product = Product(sku=sku, name="Notebook", price=Decimal("9.99"), category_id=category.id)
        session.add(product)
        await session.commit()
        return product


async def _record(app: FastAPI, *made: dict[str, Any]) -> list[HistoryEntry]:
    """Insert history entries as the write service would, oldest first."""
    rows = [HistoryEntry(**values) for values in made]
    async with app.state.database.api_sessions() as session:
        session.add_all(rows)
        await session.commit()
    return rows


def _entry(product: Product, user: User, **values: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "at": MARCH,
        "actor_id": user.id,
        "actor": user.email,
        "resource": "products",
        "row_id": str(product.id),
        "action": "updated",
        "version": 2,
        "changes": {"price": ["12.50", "9.99"]},
    }
    entry.update(values)
    return entry


# -- one record's history ----------------------------------------------------------------------


async def test_details_and_edit_pages_lead_to_the_record_history(
    app: FastAPI, editor_client: AdminClient, users: dict[Role, User]
) -> None:
    product = await _product(app)
    editor = users[Role.editor]
    created, updated = await _record(
        app,
        _entry(
            product,
            editor,
            action="created",
            version=1,
            at=MARCH - timedelta(days=1),
            changes={"sku": [None, "BK-1"], "price": [None, "12.50"], "tags_ids": [None, [1, 2]]},
        ),
        _entry(
            product,
            editor,
            changes={"price": ["12.50", "9.99"], "description": [None, "Lined"]},
        ),
    )
    http = editor_client.http
    history_url = f"/admin/product/history/{product.id}"
    for page in (f"/admin/product/details/{product.id}", f"/admin/product/edit/{product.id}"):
        shown = await http.get(page)
        assert shown.status_code == 200
        assert f'id="history-button" href="http://testserver{history_url}"' in shown.text, page

    history = await http.get(history_url)
    assert history.status_code == 200
    listed = entries(history.text)
    assert [entry_id for entry_id, _ in listed] == [updated.id, created.id]  # newest first
    newest, oldest = (text for _, text in listed)
    assert newest.startswith("2026-03-01 12:00:00 UTC editor@example.com updated")
    assert "Price : 12.50 → 9.99" in newest
    assert "Description : empty → Lined" in newest
    assert oldest.startswith("2026-02-28 12:00:00 UTC editor@example.com created")
    assert "SKU : BK-1" in oldest and "Tags : 1, 2" in oldest  # link ids, by the relationship
    assert f'href="http://testserver/admin/product/details/{product.id}"' in history.text


async def test_a_viewer_reads_the_history_of_what_they_may_read(
    app: FastAPI, viewer_client: AdminClient, users: dict[Role, User]
) -> None:
    product = await _product(app)
    (entry,) = await _record(app, _entry(product, users[Role.admin]))
    http = viewer_client.http
    page = await http.get(f"/admin/product/history/{product.id}")
    assert page.status_code == 200
    assert [entry_id for entry_id, _ in entries(page.text)] == [entry.id]
    assert "Edit</a>" not in page.text  # a viewer is offered no edit
    # users are for admins only: so is their history
    refused = await http.get(f"/admin/user/history/{users[Role.admin].id}")
    assert refused.status_code == 403
    assert "You may not read users." in refused.text
    assert 'id="error-home" href="http://testserver/admin/"' in refused.text


async def test_a_password_change_is_shown_as_changed_only(
    app: FastAPI, admin_client: AdminClient, users: dict[Role, User]
) -> None:
    editor, admin = users[Role.editor], users[Role.admin]
    await _record(
        app,
        {
            "at": MARCH,
            "actor_id": admin.id,
            "actor": admin.email,
            "resource": "users",
            "row_id": str(editor.id),
            "action": "updated",
            "version": 3,
            "changes": {"hashed_password": "changed", "role": ["viewer", "editor"]},
        },
    )
    page = await admin_client.http.get(f"/admin/user/history/{editor.id}")
    assert page.status_code == 200
    ((_, text),) = entries(page.text)
    assert "Hashed password : changed" in text
    assert "Role : viewer → editor" in text
    assert "$argon2" not in page.text


async def test_the_record_history_pages_newest_first(
    app: FastAPI, editor_client: AdminClient, users: dict[Role, User]
) -> None:
    product = await _product(app)
    made = await _record(
        app,
        *(
            _entry(product, users[Role.editor], at=MARCH + timedelta(minutes=n), version=n + 2)
            for n in range(PAGE_SIZE + 5)
        ),
    )
    newest_first = [entry.id for entry in reversed(made)]
    url = f"/admin/product/history/{product.id}"
    first = await editor_client.http.get(url)
    assert [entry_id for entry_id, _ in entries(first.text)] == newest_first[:PAGE_SIZE]
    assert 'rel="prev"' not in first.text
    older = re.search(r'<a class="btn" rel="next" href="([^"]+)"', first.text)
    assert older is not None
    second = await editor_client.http.get(unescape(older.group(1)))
    assert [entry_id for entry_id, _ in entries(second.text)] == newest_first[PAGE_SIZE:]
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    # a page number that is not one is the first page, not an error
    assert (await editor_client.http.get(url, params={"page": "x"})).status_code == 200


async def test_a_deleted_record_keeps_its_history(
    app: FastAPI, editor_client: AdminClient, users: dict[Role, User]
) -> None:
    product = await _product(app)
    await _record(app, _entry(product, users[Role.editor]))
    async with app.state.database.api_sessions() as session:
        row = (await session.exec(select(Product).where(Product.id == product.id))).one()
        await session.delete(row)
        await session.commit()
    page = await editor_client.http.get(f"/admin/product/history/{product.id}")
    assert page.status_code == 200
    assert "This record no longer exists; its history remains." in page.text
    assert len(entries(page.text)) == 1


async def test_unknown_tables_and_malformed_ids_are_not_found(editor_client: AdminClient) -> None:
    http = editor_client.http
    assert (await http.get("/admin/nothing/history/1")).status_code == 404
    for pk in ("abc", "99999999999999999999999"):
        response = await http.get(f"/admin/product/history/{pk}")
        assert response.status_code == 404, pk
    empty = await http.get("/admin/product/history/12345")
    assert empty.status_code == 200 and "No changes recorded." in empty.text


# -- every change (admins only) ------------------------------------------------------------------


async def test_admins_see_every_change_filtered_in_the_url(
    app: FastAPI, admin_client: AdminClient, users: dict[Role, User]
) -> None:
    product, gone = await _product(app, "BK-1"), await _product(app, "BK-2")
    editor, admin = users[Role.editor], users[Role.admin]
    on_product, on_gone, on_user, load = await _record(
        app,
        _entry(product, editor, at=MARCH),
        _entry(gone, admin, at=MARCH + timedelta(days=2), action="deleted"),
        {
            "at": MARCH + timedelta(days=5),
            "actor_id": admin.id,
            "actor": admin.email,
            "resource": "users",
            "row_id": str(editor.id),
            "action": "updated",
            "version": 2,
            "changes": {"full_name": ["Ed", "Edith"]},
        },
        {
            "at": MARCH + timedelta(days=6),
            "actor": "fake",
            "resource": "products",
            "action": "loaded",
            "changes": {"rows": 250},
        },
    )
    async with app.state.database.api_sessions() as session:
        deleted = (await session.exec(select(Product).where(Product.id == gone.id))).one()
        await session.delete(deleted)
        await session.commit()
    http = admin_client.http

    async def listed(**params: str) -> list[int | None]:
        page = await http.get("/admin/history", params=params)
        assert page.status_code == 200, params
        assert "history-filter-errors" not in page.text, params
        ids = [entry_id for entry_id, _ in entries(page.text)]
        return [i for i in ids if i in {on_product.id, on_gone.id, on_user.id, load.id}]

    assert await listed() == [load.id, on_user.id, on_gone.id, on_product.id]
    assert await listed(table="products") == [load.id, on_gone.id, on_product.id]
    assert await listed(table="users") == [on_user.id]
    assert await listed(user="EDITOR@") == [on_product.id]
    assert await listed(**{"from": "2026-03-03"}) == [load.id, on_user.id, on_gone.id]
    assert await listed(**{"to": "2026-03-03"}) == [on_gone.id, on_product.id]  # to: inclusive
    assert await listed(**{"from": "2026-03-01", "to": "2026-03-01"}) == [on_product.id]
    assert await listed(table="products", user="admin", to="2026-03-05") == [on_gone.id]

    page = await http.get("/admin/history", params={"table": "products", "user": "editor"})
    text = dict(entries(page.text))[on_product.id]
    assert "Products" in text and "Price : 12.50 → 9.99" in text
    assert f'href="http://testserver/admin/product/details/{product.id}"' in page.text
    assert f'href="http://testserver/admin/product/history/{product.id}"' in page.text
    assert 'name="user" value="editor"' in page.text  # the filter is shown as given
    everything = await http.get("/admin/history")
    shown = dict(entries(everything.text))
    assert f"{gone.id} (no longer exists)" in shown[on_gone.id]
    assert f'href="http://testserver/admin/product/history/{gone.id}"' in everything.text
    assert "the whole table" in shown[load.id] and "250 rows" in shown[load.id]
    assert "Full name : Ed → Edith" in shown[on_user.id]


async def test_bad_filters_are_explained_on_the_page(admin_client: AdminClient) -> None:
    http = admin_client.http
    for params, message in [
        ({"from": "yesterday"}, "'From' must be a date such as 2026-01-31, not 'yesterday'."),
        ({"to": "2026-02-30"}, "'To' must be a date such as 2026-01-31, not '2026-02-30'."),
        ({"table": "nope"}, "There is no table 'nope': choose one from the list."),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "'From' is after 'To'"),
    ]:
        page = await http.get("/admin/history", params=params)
        assert page.status_code == 200, params
        errors = re.search(r'id="history-filter-errors">(.*?)</div>\s*</div>', page.text, re.S)
        assert errors is not None and message in unescape(errors.group(1)), params
        assert entries(page.text) == []


async def test_every_change_is_for_admins_only(
    admin_client: AdminClient, editor_client: AdminClient, viewer_client: AdminClient
) -> None:
    menu_link = 'href="http://testserver/admin/history"'
    assert menu_link in (await admin_client.http.get("/admin/")).text
    for client in (editor_client, viewer_client):
        assert menu_link not in (await client.http.get("/admin/")).text
        refused = await client.http.get("/admin/history")
        assert refused.status_code == 403
        assert "Only administrators may see every change." in refused.text
        assert 'id="error-home" href="http://testserver/admin/"' in refused.text
