"""Fake users, on both databases: never admins, and no way to sign in unless the load was
given a password for them (`seed --fake N --fake-password PW`)."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.auth.passwords import verify_password
from backend.config import Settings
from backend.db import create_engine
from backend.main import create_app
from backend.models import Role
from backend.seeding.fake import generate_fake
from backend.seeding.tables import seed_table
from tests.seeding.test_cli import invoke

USERS = 200  # of three roles drawn 8:2:2, enough that an admin would be among them
# The password every fake user had before; the README published it.
PUBLISHED = "fake-password"


@pytest.fixture
async def api(seed_database_url: str) -> AsyncIterator[AsyncClient]:
    """The API over the seeding tests' database (which their loads commit to)."""
    app = create_app(Settings(database_url=seed_database_url, environment="test"))
    async with (
        LifespanManager(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        yield client


async def sign_in(api: AsyncClient, email: str, password: str) -> int:
    """The status of the API's sign-in (`POST /api/auth/token`)."""
    response = await api.post("/api/auth/token", data={"username": email, "password": password})
    return response.status_code


async def fake_users(engine: AsyncEngine) -> list[tuple[str, str, str, bool]]:
    """(email, role, hashed_password, is_active) of every user."""
    users = seed_table("users").table
    query = select(users.c.email, users.c.role, users.c.hashed_password, users.c.is_active)
    async with engine.connect() as connection:
        return [(row[0], row[1], row[2], row[3]) for row in await connection.execute(query)]


async def test_fake_users_are_never_admins_and_cannot_sign_in(
    seed_engine: AsyncEngine, api: AsyncClient
) -> None:
    await generate_fake(seed_engine, rows=USERS, tables=["users"], random_seed=1)
    users = await fake_users(seed_engine)
    assert len(users) == USERS
    roles = {Role(role) for _, role, _, _ in users}
    assert Role.admin not in roles and roles == {Role.viewer, Role.editor}
    email, _, hashed, _ = next(user for user in users if user[3])  # an active one
    assert hashed.startswith("$argon2")  # a well-formed hash, checked at full cost...
    assert not verify_password(PUBLISHED, hashed)  # ...that no password matches
    assert not verify_password("", hashed)
    assert await sign_in(api, email, PUBLISHED) == 401


async def test_fake_users_sign_in_with_the_password_the_load_was_given(
    seed_engine: AsyncEngine, api: AsyncClient
) -> None:
    await generate_fake(
        seed_engine, rows=USERS, tables=["users"], random_seed=1, password="chosen-for-tests"
    )
    users = await fake_users(seed_engine)
    assert Role.admin not in {Role(role) for _, role, _, _ in users}
    email = next(user[0] for user in users if user[3])
    assert await sign_in(api, email, "chosen-for-tests") == 200
    assert await sign_in(api, email, PUBLISHED) == 401


async def test_the_unusable_password_is_reproduced_by_the_random_seed(
    seed_engine: AsyncEngine,
) -> None:
    """`--random-seed` still reproduces every row exactly, the password hash too."""
    await generate_fake(seed_engine, rows=3, tables=["users"], random_seed=5)
    first = await fake_users(seed_engine)
    users = seed_table("users").table
    async with seed_engine.begin() as connection:
        await connection.execute(users.delete())
    await generate_fake(seed_engine, rows=3, tables=["users"], random_seed=5)
    assert await fake_users(seed_engine) == first
    await generate_fake(seed_engine, rows=3, tables=["users"])  # no seed: a fresh digest
    async with seed_engine.connect() as connection:
        hashes = await connection.scalar(select(func.count(func.distinct(users.c.hashed_password))))
    assert hashes == 2


def test_seed_fake_password_through_the_command(other_database_url: str) -> None:
    """The command's option, its checks, and its one-line errors."""
    url = other_database_url
    weak = invoke(url, "seed", "--fake", "5", "--table", "users", "--fake-password", "short")
    assert weak.exit_code == 1
    assert weak.stderr == (
        "tablestack: error: --fake-password: password must be at least 8 characters\n"
    )
    alone = invoke(url, "seed", "--set", "demo", "--fake-password", "long-enough")
    assert alone.exit_code == 1
    assert alone.stderr == "tablestack: error: --fake-password goes with --fake\n"
    faked = invoke(url, "seed", "--fake", "5", "--table", "users", "--fake-password", "long-enough")
    assert faked.exit_code == 0, faked.output
    assert "users: 5 rows" in faked.stdout

    async def stored() -> list[tuple[str, str, str, bool]]:
        engine = create_engine(Settings(database_url=url, environment="test"))
        try:
            return await fake_users(engine)
        finally:
            await engine.dispose()

    users = asyncio.run(stored())
    assert len(users) == 5
    assert all(verify_password("long-enough", hashed) for _, _, hashed, _ in users)
    assert Role.admin not in {Role(role) for _, role, _, _ in users}
