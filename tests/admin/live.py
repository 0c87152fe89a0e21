"""A real Tablestack server (uvicorn, a real socket) on its own freshly migrated database.

The browser tests drive it with Debian's Chromium through Playwright; the test process reads
and writes the same database directly to prove admin writes are committed and visible.
"""

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from backend import schema
from backend.config import PROJECT_ROOT, Settings
from backend.main import create_app
from backend.models import Category, Product, Role, Tag, User
from tests.passwords import cheap_hasher

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "admin"
PASSWORD = "correct-horse-battery"
SECRET_KEY = "browser-test-secret-key-0123456789abcdef"


@dataclass(frozen=True)
class LiveServer:
    """A running server: its URL and the database it serves."""

    url: str
    database_url: str
    backend: str


def chromium_missing_reason() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def seed(database_url: str) -> None:
    """Users of each role, two categories, two tags and three products."""
    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            # cheap argon2 parameters: the server verifies with the parameters in the hash
            hashed = cheap_hasher().hash(PASSWORD)
            for role in Role:
                session.add(
                    User(email=f"{role.value}@example.com", hashed_password=hashed, role=role)
                )
            books = Category(name="Books", slug="books")
            garden = Category(name="Garden", slug="garden")
            new, sale = Tag(name="new"), Tag(name="sale")
            session.add_all([books, garden, new, sale])
            await session.flush()
            for sku, name, price, category in [
                ("BK-1", "Blue notebook", "12.50", books),
                ("GD-1", "Watering can", "3.99", garden),
                ("GD-2", "Garden widget", "45.00", garden),
            ]:
                assert category.id is not None
                product = Product(
                    sku=sku, name=name, price=Decimal(price), stock=5, category_id=category.id
                )
                product.tags = [new]
                session.add(product)
            await session.commit()
    finally:
        await engine.dispose()


@contextmanager
def live_server(
    backend: str, database_url: str, *, port: int | None = None, **settings: Any
) -> Iterator[LiveServer]:
    """Migrate and seed `database_url`, serve it with uvicorn until the block ends (on `port`,
    or a free one; `settings` override the test settings).

    The server runs in a thread of this process (with its own event loop and engine), which
    spares the seconds a fresh interpreter spends importing the app; requests still go over
    a real socket from a real browser.
    """
    asyncio.run(schema.upgrade(database_url))
    asyncio.run(seed(database_url))
    config = uvicorn.Config(
        create_app(
            Settings(
                database_url=database_url, environment="test", secret_key=SECRET_KEY, **settings
            )
        ),
        host="127.0.0.1",
        port=port or free_port(),
        log_level="warning",
        http="h11",
        ws="none",
        loop="asyncio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"admin-live-{backend}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {backend} test server did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{config.port}"
        yield LiveServer(url=url, database_url=database_url, backend=backend)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def reset_artifacts() -> Path:
    """The screenshot folder, emptied of earlier runs' files."""
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS
