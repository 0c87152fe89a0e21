"""Real Tablestack servers (uvicorn subprocesses) on one freshly migrated database, and a small
Server-Sent Events reader for the realtime tests.

Each server is its own process, so PostgreSQL's LISTEN/NOTIFY is what carries a change from
one to another: nothing in this process shares memory with them.
"""

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy.engine import make_url

from backend import schema
from backend.auth.tokens import create_access_token
from backend.config import PROJECT_ROOT, Settings
from tests.admin.live import seed
from tests.databases import POSTGRES_ADMIN_URL, _postgres_execute

SECRET_KEY = "realtime-test-secret-key-0123456789abcdef"
SETTINGS = Settings(secret_key=SECRET_KEY, environment="test")
# The users `tests.admin.live.seed` creates, by role, with their ids in a fresh database.
USER_IDS = {"viewer": 1, "editor": 2, "admin": 3}


@contextmanager
def realtime_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database (named for these tests), migrated and seeded, dropped afterwards."""
    name = f"tablestack_realtime_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / name}.db"
    else:
        asyncio.run(_postgres_execute(f'CREATE DATABASE "{name}"'))
        url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False)
    try:
        asyncio.run(schema.upgrade(url))
        asyncio.run(seed(url))
        yield url
    finally:
        if backend == "postgresql":
            asyncio.run(_postgres_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def token(role: str) -> str:
    return create_access_token(USER_IDS[role], SETTINGS)


def headers(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role)}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """One running server process."""

    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def rss_kb(self) -> int:
        """The process's resident memory."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1])


def environment(database_url: str, **overrides: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "ENVIRONMENT": "test",
        "REALTIME_HEARTBEAT_S": "1",
        "REALTIME_RECHECK_S": "0.5",
        **overrides,
    }


def start_server(database_url: str, **overrides: str) -> Server:
    """Start `uvicorn backend.main:create_app` on a free port; return once it answers."""
    port = _free_port()
    env = environment(database_url, **overrides)
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
            "--timeout-graceful-shutdown",
            "10",
        ],
        cwd=PROJECT_ROOT,
        env=env,
    )
    server = Server(f"http://127.0.0.1:{port}", process, env)
    deadline = time.monotonic() + 120  # a loaded 2-core machine imports slowly
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the realtime test server exited with {process.returncode}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("the realtime test server did not start")
        time.sleep(0.1)


@contextmanager
def servers(database_url: str, count: int, **overrides: str) -> Iterator[list[Server]]:
    started: list[Server] = []
    try:
        for _ in range(count):
            started.append(start_server(database_url, **overrides))
        yield started
    finally:
        for server in started:
            server.stop()


@dataclass
class SSEMessage:
    event: str | None
    id: str | None
    data: str

    @property
    def json(self) -> Any:
        return orjson.loads(self.data)


class SSEStream:
    """The messages of an open `text/event-stream` response, one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        # Lines are read by a task of their own: a timed-out wait must not cancel (and so
        # close) the response's line iterator.
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())
        self.comments = 0

    async def _read(self) -> None:
        try:
            async for line in self.response.aiter_lines():
                await self._lines.put(line)
        except httpx.HTTPError:
            pass
        finally:
            await self._lines.put(None)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def next(self, timeout: float = 5.0) -> SSEMessage:
        """The next message (comments are counted, not returned)."""
        event: str | None = None
        event_id: str | None = None
        data: list[str] = []
        async with asyncio.timeout(timeout):
            while (line := await self._lines.get()) is not None:
                if line == "":
                    if data or event:
                        return SSEMessage(event, event_id, "\n".join(data))
                    continue
                if line.startswith(":"):
                    self.comments += 1
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    event = value
                elif name == "id":
                    event_id = value
                elif name == "data":
                    data.append(value)
        self._lines.put_nowait(None)  # stays ended
        raise EOFError("the stream ended")

    async def changes(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The next `count` change events (data), failing on any other message."""
        found = []
        for _ in range(count):
            message = await self.next(timeout)
            assert message.event is None, message
            found.append(message.json)
        return found

    async def nothing_for(self, seconds: float) -> None:
        """Assert no message arrives within `seconds` (heartbeats aside)."""
        try:
            message = await self.next(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {message}")


@asynccontextmanager
async def subscribe(
    base_url: str,
    role: str | None = "admin",
    *,
    headers_: dict[str, str] | None = None,
    **params: Any,
) -> AsyncIterator[SSEStream]:
    """An open SSE subscription (200 expected) as `role`."""
    sent = dict(headers_ or {})
    if role is not None:
        sent.update(headers(role))
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=None)) as client:
        async with client.stream("GET", "/api/realtime/events", params=params, headers=sent) as r:
            assert r.status_code == 200, (await r.aread()).decode()
            assert r.headers["content-type"].startswith("text/event-stream")
            stream = SSEStream(r)
            try:
                yield stream
            finally:
                await stream.close()
