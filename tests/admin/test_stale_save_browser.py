"""Two admins in two real browsers save the same product: no lost update (both backends)."""

import re
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.admin.live import LiveServer
from tests.admin.test_browser import _product, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_the_second_of_two_saves_is_told_what_the_first_changed(
    browser: Browser, live: LiveServer, artifacts: Path
) -> None:
    product = await _product(live, "GD-1")
    assert product is not None
    price, stock = product.price, product.stock
    url = f"{live.url}/admin/product/edit/{product.id}"
    first_context = await browser.new_context(viewport={"width": 1440, "height": 900})
    second_context = await browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        first, second = await first_context.new_page(), await second_context.new_page()
        for page in (first, second):
            page.set_default_timeout(10_000)
        await sign_in(first, live, "admin@example.com")
        await sign_in(second, live, "editor@example.com")
        await first.goto(url)
        await second.goto(url)  # both have the page open before either saves

        # the admin raises the price
        await first.fill("#price", "4.50")
        await first.click("input[type=submit][value=Save]")
        await expect(first).to_have_url(re.compile(r"/admin/product/list"))

        # the editor renames it and sets the stock, on the page loaded before: refused
        await second.fill("#name", "Watering can XL")
        await second.fill("#stock", "9")
        await second.click("input[type=submit][value=Save]")
        alert = second.locator(".alert-danger")
        await expect(alert).to_contain_text(
            "Saved meanwhile by admin@example.com: Price changed. Your changes are below, not saved"
        )
        await expect(second.locator("#name")).to_have_value("Watering can XL")
        await expect(second.locator("#stock")).to_have_value("9")
        await second.screenshot(
            path=f"{artifacts / live.backend}-stale-save-refused.png", full_page=True
        )
        saved = await _product(live, "GD-1")
        assert saved is not None
        assert (saved.name, saved.price, saved.stock) == ("Watering can", Decimal("4.50"), stock)

        # having read that, the editor saves again: their form replaces the row as shown
        await second.click("input[type=submit][value=Save]")
        await expect(second).to_have_url(re.compile(r"/admin/product/list"))
        saved = await _product(live, "GD-1")
        assert saved is not None
        assert (saved.name, saved.price, saved.stock) == ("Watering can XL", price, 9)
    finally:
        await first_context.close()
        await second_context.close()
