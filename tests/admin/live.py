"""A real Tablestack server in a subprocess, on its own freshly migrated database.

The browser tests drive it with Debian's Chromium through Playwright; the test process reads
and writes the same database directly to prove admin writes are committed and visible.
"""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from backend import schema
from backend.auth.passwords import hash_password
from backend.config import PROJECT_ROOT
from backend.models import Category, Product, Role, Tag, User

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def seed(database_url: str) -> None:
    """Users of each role, two categories, two tags and three products."""
    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            hashed = hash_password(PASSWORD)
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
def live_server(backend: str, database_url: str, log_dir: Path) -> Iterator[LiveServer]:
    """Migrate and seed `database_url`, serve it with uvicorn until the block ends."""
    asyncio.run(schema.upgrade(database_url))
    asyncio.run(seed(database_url))
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "test",
        "SECRET_KEY": SECRET_KEY,
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"server-{backend}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "backend.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url, process, log_path)
            yield LiveServer(url=url, database_url=database_url, backend=backend)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not start in 30 s: {log_path.read_text()[-2000:]}")


def reset_artifacts() -> Path:
    """The screenshot folder, emptied of earlier runs' files."""
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS
