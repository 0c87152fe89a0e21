"""Fixtures for the admin tests: users of each role, signed-in HTTP clients, a live server
and a headless Chromium for the browser tests."""

import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from playwright.async_api import Browser, Page, async_playwright

from backend.auth.passwords import hash_password
from backend.models import Role, User
from tests.admin.live import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    LiveServer,
    chromium_missing_reason,
    live_server,
    reset_artifacts,
)
from tests.databases import fresh_database
from tests.passwords import cheap_password_hashing

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass
class AdminClient:
    """An HTTP client signed in to the admin, with the page's CSRF token at hand."""

    http: AsyncClient
    token: str

    async def post(
        self, url: str, data: Mapping[str, object], headers: dict[str, str] | None = None
    ) -> Response:
        """A form POST the way the admin's pages send it (token as the first field)."""
        fields = {"csrftoken": self.token, **data}
        return await self.http.post(url, data=fields, headers=headers)

    async def delete(self, url: str) -> Response:
        return await self.http.delete(url, headers={"x-csrftoken": self.token})


def csrf_token(html: str) -> str:
    match = _META_TOKEN.search(html)
    assert match is not None, "the page carries no CSRF token"
    return match.group(1)


async def sign_in(http: AsyncClient, email: str, password: str = PASSWORD) -> Response:
    page = await http.get("/admin/login")
    return await http.post(
        "/admin/login",
        data={"csrftoken": csrf_token(page.text), "username": email, "password": password},
    )


@pytest.fixture(autouse=True)
def fast_password_hashing() -> Iterator[None]:
    """Hash and verify passwords cheaply in this folder's tests: they sign in a lot."""
    with cheap_password_hashing():
        yield


@pytest.fixture
async def users(app: FastAPI) -> dict[Role, User]:
    """One active user per role, all with the password PASSWORD."""
    hashed = hash_password(PASSWORD)
    created: dict[Role, User] = {}
    async with app.state.database.api_sessions() as session:
        for role in Role:
            user = User(email=f"{role.value}@example.com", hashed_password=hashed, role=role)
            session.add(user)
            created[role] = user
        await session.commit()
    return created


async def _signed_in(app: FastAPI, email: str) -> AsyncIterator[AdminClient]:
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await sign_in(http, email)
        assert response.status_code == 302, response.text
        page = await http.get("/admin/")
        yield AdminClient(http, csrf_token(page.text))


@pytest.fixture
async def admin_client(app: FastAPI, users: dict[Role, User]) -> AsyncIterator[AdminClient]:
    async for client in _signed_in(app, users[Role.admin].email):
        yield client


@pytest.fixture
async def editor_client(app: FastAPI, users: dict[Role, User]) -> AsyncIterator[AdminClient]:
    async for client in _signed_in(app, users[Role.editor].email):
        yield client


@pytest.fixture
async def viewer_client(app: FastAPI, users: dict[Role, User]) -> AsyncIterator[AdminClient]:
    async for client in _signed_in(app, users[Role.viewer].email):
        yield client


# -- the browser suite: one server per backend, one Chromium per run -------------------------


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """test-artifacts/admin/, emptied once per run."""
    return reset_artifacts()


@pytest.fixture(scope="session")
def live(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A uvicorn server over a fresh, migrated, seeded database."""
    with (
        fresh_database(backend, tmp_path_factory.mktemp("live")) as url,
        live_server(backend, url) as server,
    ):
        yield server


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium; skipped (loudly) when absent, required with CI=true."""
    reason = chromium_missing_reason()
    if reason is not None:
        if CI:
            pytest.fail(f"CI=true requires the browser tests to run: {reason}")
        pytest.skip(f"BROWSER TESTS SKIPPED: {reason}")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser context (no cookies) and page for one test."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    yield page
    await context.close()
