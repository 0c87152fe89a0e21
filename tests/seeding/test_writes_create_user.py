"""`create-user` writes through the users' Writer as the `cli` actor: a history entry with the
password recorded as "changed", and errors without SQL."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.auth.users import UserError, upsert_user
from backend.config import Settings
from backend.models import Role
from backend.seeding.tables import seed_table
from tests.seeding.conftest import row_counts
from tests.seeding.test_writes import entries


async def test_create_user_writes_through_the_writer_as_cli(
    seed_engine: AsyncEngine, seed_database_url: str
) -> None:
    settings = Settings(database_url=seed_database_url, environment="test")
    created = await upsert_user(
        settings, email="Boss@Example.com", password="a-long-password", role=Role.editor
    )
    assert created
    [entry] = await entries(seed_engine, "users")
    assert (entry["action"], entry["actor"], entry["actor_id"], entry["version"]) == (
        "created",
        "cli",
        None,
        1,
    )
    assert entry["changes"]["hashed_password"] == "changed"
    assert entry["changes"]["email"] == [None, "boss@example.com"]
    assert entry["changes"]["role"] == [None, "editor"]

    with pytest.raises(UserError, match="already exists"):
        await upsert_user(
            settings, email="boss@example.com", password="a-long-password", role=Role.admin
        )
    again = await upsert_user(
        settings,
        email="boss@example.com",
        password="another-long-password",
        role=Role.admin,
        update=True,
    )
    assert not again
    [_, updated] = await entries(seed_engine, "users")
    assert (updated["action"], updated["actor"], updated["version"]) == ("updated", "cli", 2)
    assert updated["changes"]["hashed_password"] == "changed"
    assert updated["changes"]["role"] == ["editor", "admin"]
    async with seed_engine.connect() as connection:
        users = seed_table("users").table
        assert await connection.scalar(select(func.count()).select_from(users)) == 1


async def test_create_user_refuses_a_nul_in_the_name_without_sql(
    seed_engine: AsyncEngine, seed_database_url: str
) -> None:
    settings = Settings(database_url=seed_database_url, environment="test")
    with pytest.raises(UserError) as caught:
        await upsert_user(
            settings,
            email="nul@example.com",
            password="a-long-password",
            role=Role.viewer,
            full_name="Nul\x00Name",
        )
    assert str(caught.value) == "full_name: must not contain NUL characters"
    assert set((await row_counts(seed_engine)).values()) == {0}
