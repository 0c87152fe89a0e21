"""Fixtures for the rate-limit tests: apps with limits on, users with tokens, clients at chosen
addresses, and a Redis key prefix of each test's own (its keys deleted afterwards)."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import coredis
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.auth.passwords import hash_password
from backend.auth.tokens import create_access_token
from backend.config import Settings
from backend.main import create_app
from backend.models import Role, User
from tests.passwords import cheap_password_hashing

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
PASSWORD = "correct-horse-battery-staple"
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


async def _redis_keys(prefix: str, delete: bool) -> list[str]:
    client: coredis.Redis[str] = coredis.Redis(
        host=REDIS_HOST, port=REDIS_PORT, decode_responses=True, connect_timeout=1
    )
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if delete and keys:
        await client.delete(tuple(keys))
    return keys


def redis_keys(prefix: str) -> list[str]:
    """The keys stored under `prefix` (from a synchronous test or fixture)."""
    return asyncio.run(_redis_keys(prefix, delete=False))


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix for this test alone; its keys are deleted when the test ends."""
    try:
        asyncio.run(_redis_keys("ratelimit-probe", delete=False))
    except (OSError, coredis.exceptions.RedisError) as exc:
        if CI:
            raise
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({exc})")
    prefix = f"tablestack-test-ratelimit-{uuid.uuid4().hex[:12]}"
    yield prefix
    asyncio.run(_redis_keys(prefix, delete=True))


@pytest.fixture(autouse=True)
def fast_password_hashing() -> Iterator[None]:
    """Real argon2 at its lowest cost: these tests sign in many times."""
    with cheap_password_hashing():
        yield


@dataclass
class Limited:
    """An app with rate limits on, joined to the test's transaction."""

    app: FastAPI
    settings: Settings

    def client(self, ip: str = "198.51.100.7") -> AsyncClient:
        """A client connecting from `ip`."""
        transport = ASGITransport(app=self.app, client=(ip, 40000))
        return AsyncClient(transport=transport, base_url="http://testserver")

    async def user(self, role: Role, email: str | None = None) -> tuple[User, str]:
        """A new active user of `role` with the password PASSWORD, and a token for them."""
        email = email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
        async with self.app.state.database.api_sessions() as session:
            user = User(email=email, hashed_password=hash_password(PASSWORD), role=role)
            session.add(user)
            await session.commit()
            await session.refresh(user)
        assert user.id is not None
        return user, create_access_token(user.id, self.settings)


LimitedFactory = Callable[..., Awaitable[Limited]]


@pytest.fixture
async def limited_app(
    settings: Settings, engine: AsyncEngine, connection: AsyncConnection
) -> AsyncIterator[LimitedFactory]:
    """Build apps with rate limits on and `**overrides` of the settings, started."""
    async with AsyncExitStack() as stack:

        async def build(**overrides: object) -> Limited:
            limited = settings.model_copy(update={"rate_limits_enabled": True, **overrides})
            app = create_app(limited, engine=engine)
            await stack.enter_async_context(LifespanManager(app))
            database = app.state.database
            for factory in (database.api_sessions, database.admin_sessions):
                factory.configure(bind=connection, join_transaction_mode="create_savepoint")
            return Limited(app, limited)

        yield build
