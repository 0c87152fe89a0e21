"""Fixtures for the account tests: a real SMTP server, settings that send mail to it, users
of each role, and cheap password hashing."""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from backend.auth.passwords import hash_password
from backend.config import Settings
from backend.models import Role, User
from tests.auth.mailbox import Mailbox, smtp_server, smtp_settings
from tests.passwords import cheap_password_hashing

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def fast_password_hashing() -> Iterator[None]:
    """Hash and verify passwords cheaply (argon2 at its lowest cost)."""
    with cheap_password_hashing():
        yield


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def settings(database_url: str, mailbox: Mailbox) -> Settings:
    """The suite's settings, sending mail to `mailbox`."""
    return Settings(database_url=database_url, environment="test", **smtp_settings(mailbox))


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
