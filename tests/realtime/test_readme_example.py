"""The README's browser example works as written: run in Chromium, on a page of a real server,
it receives a change made through the API (and resumes after its stream is closed)."""

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from backend.config import PROJECT_ROOT
from tests.admin.live import CHROMIUM, CHROMIUM_ARGS, chromium_missing_reason
from tests.realtime.servers import Server, headers, realtime_database, servers, token

pytestmark = pytest.mark.browser


def readme_example() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index("## Realtime") :]
    found = re.search(r"```js\n(.*?)```", section, flags=re.DOTALL)
    assert found is not None, "the Realtime section has no JavaScript example"
    return found.group(1)


def test_the_example_is_about_ten_lines() -> None:
    assert len(readme_example().strip().splitlines()) <= 12


@pytest.fixture
def server(backend: str, tmp_path: Path) -> Iterator[Server]:
    if backend != "sqlite":
        pytest.skip("the browser side is the same on both databases (tests/realtime/test_feed.py)")
    with realtime_database(backend, tmp_path) as url, servers(url, 1) as (started,):
        yield started


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    reason = chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


async def test_the_readme_example_receives_changes_in_a_browser(
    server: Server, browser: Browser
) -> None:
    page = await browser.new_page()
    logged: list[str] = []
    page.on("console", lambda message: logged.append(message.text))
    await page.goto(f"{server.url}/healthz")  # a page of the API's origin
    await page.add_script_tag(content=readme_example() + f'\nlisten("{token("viewer")}");\n')
    async with httpx.AsyncClient(base_url=server.url) as client:
        for _ in range(50):  # until the stream is open (a ticket first, then the EventSource)
            changed = await client.patch(
                "/api/products/1", json={"stock": 12}, headers=headers("editor")
            )
            assert changed.status_code == 200
            await page.wait_for_timeout(200)
            if any(line.startswith("updated products 1") for line in logged):
                break
    assert any(line.startswith("updated products 1") for line in logged), logged
    assert int(await page.evaluate("last")) > 0  # the cursor to resume from
    await page.close()
