"""The admin in a real browser (headless Chromium), against a real server, on both backends.

Each journey is what an admin does by hand; after each write the test reads the database
directly from this process, so "saved" means committed and visible to everyone.
"""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import selectinload
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.models import Category, HistoryEntry, Product
from tests.admin.live import PASSWORD, LiveServer
from tests.fixture_app.models import Node, Specimen, SpecimenKind

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def _product(live: LiveServer, sku: str) -> Product | None:
    """The product `sku` as a fresh connection sees it (with its tags)."""
    engine = create_async_engine(live.database_url)
    try:
        async with AsyncSession(engine) as session:
            query = select(Product).where(Product.sku == sku).options(selectinload(Product.tags))  # type: ignore[arg-type]
            return (await session.exec(query)).first()
    finally:
        await engine.dispose()


async def _insert_product(live: LiveServer, sku: str, name: str) -> None:
    engine = create_async_engine(live.database_url)
    try:
        async with AsyncSession(engine) as session:
            category = (await session.exec(select(Category))).first()
            assert category is not None and category.id is not None
            session.add(Product(sku=sku, name=name, price=Decimal("1.00"), category_id=category.id))
            await session.commit()
    finally:
        await engine.dispose()


async def sign_in(page: Page, live: LiveServer, email: str) -> None:
    await page.goto(f"{live.url}/admin/")
    await expect(page).to_have_url(re.compile(r"/admin/login$"))
    await page.fill("#username", email)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/admin/$"))


async def pick(page: Page, field: str, typed: str, option: str) -> None:
    """Choose `option` in the search-as-you-type select of `field`."""
    await page.locator(f"select#{field} + .select2").click()
    await page.locator(".select2-container--open .select2-search__field").fill(typed)
    await page.locator(".select2-results__option", has_text=option).click()


async def test_editor_journey(page: Page, live: LiveServer, artifacts: Path) -> None:
    prefix = artifacts / live.backend
    await sign_in(page, live, "editor@example.com")
    await expect(page.locator("#signed-in-as")).to_have_text(
        "Signed in as editor@example.com (editor)"
    )
    await expect(page.locator("a.card-link", has_text="Products")).to_contain_text("3 rows")
    await expect(page.locator("a.card-link", has_text="Users")).to_have_count(0)
    await page.screenshot(path=f"{prefix}-index.png", full_page=True)

    # list: the seeded products, the most telling columns, related rows by label
    await page.goto(f"{live.url}/admin/product/list")
    table = page.locator("table tbody tr")
    await expect(table).to_have_count(3)
    await expect(page.locator("table thead")).to_contain_text("SKU")
    await expect(page.locator("table tbody")).to_contain_text("Garden")  # category by __str__
    await page.screenshot(path=f"{prefix}-product-list.png", full_page=True)

    # search
    await page.fill("#search-input", "widget")
    await page.press("#search-input", "Enter")
    await expect(page).to_have_url(re.compile(r"search=widget"))
    await expect(table).to_have_count(1)
    await expect(table).to_contain_text("Garden widget")

    # sort by price, both ways
    await page.goto(f"{live.url}/admin/product/list")
    await page.locator("table thead a", has_text="Price").click()
    await expect(page).to_have_url(re.compile(r"sortBy=price&sort=asc"))
    prices = [Decimal(p) for p in await page.locator("tbody tr td:nth-child(6)").all_inner_texts()]
    assert prices == sorted(prices) and len(prices) == 3
    await page.locator("table thead a", has_text="Price").click()
    await expect(page).to_have_url(re.compile(r"sort=desc"))
    prices = [Decimal(p) for p in await page.locator("tbody tr td:nth-child(6)").all_inner_texts()]
    assert prices == sorted(prices, reverse=True)

    # create with tags; a negative price is an error next to the field, nothing is saved
    await page.locator("a", has_text="New Product").click()
    await page.fill("#sku", "NB-2")
    await page.fill("#name", "Red notebook")
    await page.fill("#price", "-5")
    await page.fill("#stock", "3")
    await pick(page, "category", "Boo", "Books")
    await pick(page, "tags", "sa", "sale")
    await pick(page, "tags", "ne", "new")
    await page.click("input[type=submit][value=Save]")
    price_error = page.locator("#price ~ .invalid-feedback")
    await expect(price_error).to_contain_text("greater than or equal to 0")
    await expect(page.locator("#price")).to_have_class(re.compile("is-invalid"))
    await page.screenshot(path=f"{prefix}-product-form-error.png", full_page=True)
    assert await _product(live, "NB-2") is None

    await page.fill("#price", "9.99")
    await page.click("input[type=submit][value=Save]")
    await expect(page).to_have_url(re.compile(r"/admin/product/list"))
    await expect(page.locator("table tbody")).to_contain_text("Red notebook")
    created = await _product(live, "NB-2")
    assert created is not None
    assert created.price == Decimal("9.99")
    assert sorted(tag.name for tag in created.tags) == ["new", "sale"]

    # edit
    row = page.locator("tbody tr", has_text="NB-2")
    await row.locator("a[href*='/admin/product/edit/']").click()
    await expect(page.locator("#name")).to_have_value("Red notebook")
    await expect(page.locator("select#tags + .select2")).to_contain_text("sale")
    await page.screenshot(path=f"{prefix}-product-edit.png", full_page=True)
    await page.fill("#name", "Red notebook XL")
    await page.click("input[type=submit][value=Save]")
    await expect(page.locator("table tbody")).to_contain_text("Red notebook XL")
    edited = await _product(live, "NB-2")
    assert edited is not None and edited.name == "Red notebook XL"
    assert sorted(tag.name for tag in edited.tags) == ["new", "sale"]

    # delete
    row = page.locator("tbody tr", has_text="NB-2")
    await row.locator("a[data-bs-target='#modal-delete']").click()
    await expect(page.locator("#modal-delete")).to_be_visible()
    await page.click("#modal-delete-button")
    await expect(page.locator("tbody tr", has_text="NB-2")).to_have_count(0)
    assert await _product(live, "NB-2") is None

    # an editor does not see the users table, nor its empty category
    await expect(page.locator("#navbar-menu")).not_to_contain_text("Users")
    await expect(page.locator("#navbar-menu")).not_to_contain_text("Administration")

    # log out: the session is gone
    await page.locator("a", has_text="Logout").click()
    await expect(page).to_have_url(re.compile(r"/admin/login$"))
    await page.goto(f"{live.url}/admin/product/list")
    await expect(page).to_have_url(re.compile(r"/admin/login$"))


async def test_viewer_is_read_only(page: Page, live: LiveServer, artifacts: Path) -> None:
    await _insert_product(live, "DI-1", "Directly inserted lamp")
    await sign_in(page, live, "viewer@example.com")

    await page.goto(f"{live.url}/admin/product/list")
    await expect(page.locator("table tbody")).to_contain_text("Directly inserted lamp")
    await page.screenshot(
        path=f"{artifacts / live.backend}-viewer-product-list.png", full_page=True
    )
    await expect(page.locator("a", has_text="New Product")).to_have_count(0)
    await expect(page.locator("a[href*='/admin/product/edit/']")).to_have_count(0)
    await expect(page.locator("a[data-bs-target='#modal-delete']")).to_have_count(0)
    await expect(page.locator("#navbar-menu")).not_to_contain_text("Users")

    row = page.locator("tbody tr", has_text="DI-1")
    await row.locator("a[href*='/admin/product/details/']").click()
    await expect(page.locator("body")).to_contain_text("Directly inserted lamp")
    await expect(page.locator("a", has_text="Edit")).to_have_count(0)
    await expect(page.locator("a", has_text="Delete")).to_have_count(0)

    # forged requests carrying a valid CSRF token: the role check still refuses them
    token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    statuses = await page.evaluate(
        """async ([base, token]) => {
            const body = new FormData();
            body.append('csrftoken', token);
            for (const [k, v] of [['sku', 'FORGED'], ['name', 'Forged'], ['price', '1'],
                                  ['stock', '1'], ['category', '1'], ['save', 'Save']]) {
                body.append(k, v);
            }
            const created = await fetch(base + '/admin/product/create', {method: 'POST', body});
            const removed = await fetch(base + '/admin/product/delete?pks=1',
                                        {method: 'DELETE', headers: {'X-CSRFToken': token}});
            return [created.status, removed.status];
        }""",
        [live.url, token],
    )
    assert statuses == [403, 403]
    assert await _product(live, "FORGED") is None
    assert await _product(live, "BK-1") is not None


async def _nodes(live: LiveServer, *names_and_parents: tuple[str, str | None]) -> dict[str, int]:
    """Insert tree nodes (each after its parent); their ids by name."""
    engine = create_async_engine(live.database_url)
    ids: dict[str, int] = {}
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            for name, parent in names_and_parents:
                node = Node(name=name, parent_id=ids[parent] if parent else None)
                session.add(node)
                await session.commit()
                assert node.id is not None
                ids[name] = node.id
    finally:
        await engine.dispose()
    return ids


async def _read(live: LiveServer, model: type[Any], **where: Any) -> Any:
    engine = create_async_engine(live.database_url)
    try:
        async with AsyncSession(engine) as session:
            query = select(model).filter_by(**where)
            return (await session.exec(query)).first()
    finally:
        await engine.dispose()


async def test_any_table_journey(page: Page, live: LiveServer, artifacts: Path) -> None:
    """A row of the fixture app's every-type table, then a tree: a parent picked by search,
    a cycle refused next to the field."""
    prefix = artifacts / live.backend
    await sign_in(page, live, "editor@example.com")

    # a date, an enum, JSON and a patterned string; bad JSON and a bad pattern first
    await page.goto(f"{live.url}/admin/specimen/create")
    await page.fill("#slug", "Amethyst 1")
    await page.fill("#country_code", "BR")
    await page.fill("#amount", "2.50")
    await page.fill("#found_on", "2026-03-04")
    await page.keyboard.press("Escape")  # close the date picker
    await page.select_option("#kind", "plant")
    await page.fill("#attributes", '{"colour": "purple",}')
    await page.click("input[type=submit][value=Save]")
    await expect(page.locator("#attributes ~ .invalid-feedback")).to_contain_text("Invalid JSON")
    await expect(page.locator("#slug ~ .invalid-feedback")).to_contain_text("should match pattern")
    await page.screenshot(path=f"{prefix}-specimen-form-errors.png", full_page=True)
    assert await _read(live, Specimen, country_code="BR") is None

    await page.fill("#slug", "amethyst-1")
    await page.fill("#attributes", '{"colour": "purple", "facets": [1, 2]}')
    await page.click("input[type=submit][value=Save]")
    await expect(page).to_have_url(re.compile(r"/admin/specimen/list"))
    await expect(page.locator("table tbody")).to_contain_text("amethyst-1")
    specimen = await _read(live, Specimen, slug="amethyst-1")
    assert specimen is not None
    assert specimen.found_on == date(2026, 3, 4) and specimen.kind is SpecimenKind.plant
    assert specimen.attributes == {"colour": "purple", "facets": [1, 2]}
    assert specimen.amount == Decimal("2.50") and specimen.grade == "low"

    # a tree: pick a parent through the search select, then try to close a cycle
    ids = await _nodes(live, ("Earth", None), ("Europe", "Earth"), ("France", "Europe"))
    await _nodes(live, ("Orphan", None))
    orphan = await _read(live, Node, name="Orphan")
    await page.goto(f"{live.url}/admin/node/edit/{orphan.id}")
    await pick(page, "parent", "eur", "Europe")
    await page.click("input[type=submit][value=Save]")
    await expect(page).to_have_url(re.compile(r"/admin/node/list"))
    assert (await _read(live, Node, name="Orphan")).parent_id == ids["Europe"]

    await page.goto(f"{live.url}/admin/node/edit/{ids['Earth']}")
    await pick(page, "parent", "fra", "France")
    await page.click("input[type=submit][value=Save]")
    error = page.locator("#parent ~ .invalid-feedback")
    await expect(error).to_contain_text("France is below Earth: a node cannot be moved")
    await expect(page.locator("#id")).to_have_value(str(ids["Earth"]))  # still shown
    await page.screenshot(path=f"{prefix}-node-cycle-refused.png", full_page=True)
    assert (await _read(live, Node, name="Earth")).parent_id is None


async def test_history_of_a_product(page: Page, live: LiveServer, artifacts: Path) -> None:
    await _insert_product(live, "HX-1", "Product with a history")
    product = await _product(live, "HX-1")
    assert product is not None and product.id is not None
    engine = create_async_engine(live.database_url)
    try:
        async with AsyncSession(engine) as session:
            session.add(
                HistoryEntry(
                    at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
                    actor="history-tester@example.com",
                    resource="products",
                    row_id=str(product.id),
                    action="updated",
                    version=2,
                    changes={"price": ["2.00", "1.00"], "name": ["Old name", product.name]},
                )
            )
            await session.commit()
    finally:
        await engine.dispose()

    await sign_in(page, live, "editor@example.com")
    await page.goto(f"{live.url}/admin/product/list")
    row = page.locator("tbody tr", has_text="HX-1")
    await row.locator("a[href*='/admin/product/details/']").click()
    await page.locator("#history-button").click()
    await expect(page).to_have_url(re.compile(rf"/admin/product/history/{product.id}$"))
    entry = page.locator("tr.history-entry")
    await expect(entry).to_have_count(1)
    await expect(entry).to_contain_text("2026-03-01 09:30:00 UTC")
    await expect(entry).to_contain_text("history-tester@example.com")
    await expect(entry).to_contain_text("Price: 2.00 → 1.00")
    await expect(entry).to_contain_text("Name: Old name → Product with a history")
    await page.screenshot(path=f"{artifacts / live.backend}-product-history.png", full_page=True)
    await page.locator("#history-record-link").click()
    await expect(page).to_have_url(re.compile(rf"/admin/product/details/{product.id}$"))
