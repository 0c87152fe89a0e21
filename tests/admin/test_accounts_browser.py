"""Account recovery and sign-out in a real browser (headless Chromium), against a real
server that sends its mail to a real SMTP server in this process, on both backends:
"Forgot password?" -> the emailed link -> a new password -> signed in; and a session cookie
captured before signing out no longer signs anyone in.
"""

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.admin.live import PASSWORD, LiveServer, free_port, live_server
from tests.auth.mailbox import Mailbox, link_in, smtp_server, smtp_settings
from tests.databases import fresh_database

pytestmark = [pytest.mark.asyncio(loop_scope="session")]

NEW_PASSWORD = "a-brand-new-password"


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def mail_live(
    backend: str, tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox
) -> Iterator[LiveServer]:
    """A live server whose mail goes to `mailbox`, and whose links name itself."""
    port = free_port()
    settings = {**smtp_settings(mailbox), "public_base_url": f"http://127.0.0.1:{port}"}
    with (
        fresh_database(backend, tmp_path_factory.mktemp("mail-live")) as url,
        live_server(backend, url, port=port, **settings) as server,
    ):
        yield server


async def sign_in(page: Page, live: LiveServer, email: str, password: str) -> None:
    await page.goto(f"{live.url}/admin/login")
    await page.fill("#username", email)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(re.compile(r"/admin/$"))


@pytest.mark.browser
async def test_forgot_password_in_the_browser(
    page: Page, mail_live: LiveServer, mailbox: Mailbox, artifacts: Path
) -> None:
    prefix = artifacts / f"accounts-{mail_live.backend}"
    await page.goto(f"{mail_live.url}/admin/login")
    await page.click("#forgot-password")
    await expect(page).to_have_url(re.compile(r"/admin/forgot-password$"))
    await page.fill("#email", "editor@example.com")
    await page.click("button[type=submit]")
    await expect(page.locator("#account-message")).to_contain_text("on its way")

    link = link_in(mailbox.next())
    assert link.startswith(f"{mail_live.url}/admin/set-password?token=")
    await page.goto(link)
    await expect(page.locator("#email")).to_have_value("editor@example.com")
    await page.screenshot(path=f"{prefix}-set-password.png", full_page=True)
    await page.fill("#password", NEW_PASSWORD)
    await page.fill("#password_confirm", NEW_PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.locator("#account-message")).to_contain_text("Your password is set")

    await page.fill("#username", "editor@example.com")
    await page.fill("#password", PASSWORD)  # the old one
    await page.click("button[type=submit]")
    await expect(page.locator(".alert-danger")).to_contain_text("Wrong email or password")
    await sign_in(page, mail_live, "editor@example.com", NEW_PASSWORD)
    await expect(page.locator("#signed-in-as")).to_contain_text("editor@example.com")

    await page.goto(link)  # the link worked once
    await expect(page.locator("#account-message")).to_contain_text("already used")


@pytest.mark.browser
async def test_a_cookie_captured_before_logout_is_refused(
    page: Page, browser: Browser, mail_live: LiveServer
) -> None:
    await sign_in(page, mail_live, "viewer@example.com", PASSWORD)
    captured = await page.context.cookies()
    assert any(cookie["name"] == "tablestack_admin" for cookie in captured)
    await page.goto(f"{mail_live.url}/admin/logout")
    await expect(page).to_have_url(re.compile(r"/admin/login$"))

    replay = await browser.new_context()
    try:
        await replay.add_cookies(captured)  # type: ignore[arg-type]
        other = await replay.new_page()
        await other.goto(f"{mail_live.url}/admin/")
        await expect(other).to_have_url(re.compile(r"/admin/login$"))
    finally:
        await replay.close()


async def test_the_reset_answer_does_not_wait_for_the_mail(
    mail_live: LiveServer, mailbox: Mailbox
) -> None:
    """Over a real socket, with an SMTP server that holds every message: the answer comes
    first, the same for a known and an unknown email; the message follows."""
    url = f"{mail_live.url}/api/auth/password-reset"
    mailbox.gate.clear()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            answers, seconds = [], []
            for email in ("admin@example.com", "nobody@example.com"):
                started = time.perf_counter()
                response = await http.post(url, json={"email": email})
                seconds.append(time.perf_counter() - started)
                answers.append((response.status_code, response.json()))
        assert answers[0] == answers[1] and answers[0][0] == 202
        assert mailbox.empty()  # the message is still held by the SMTP server
        assert max(seconds) < 2.0, seconds
    finally:
        mailbox.gate.set()
    assert mailbox.next()["To"] == "admin@example.com"
    assert mailbox.empty()
