"""Fixtures for the account tests: a real SMTP server, settings that send mail to it, users
of each role, and cheap password hashing."""

from collections.abc import Iterator
from unittest.mock import patch

import pytest
from fastapi import FastAPI
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from backend.auth import passwords
from backend.auth.passwords import hash_password
from backend.config import Settings
from backend.models import Role, User
from tests.auth.mailbox import Mailbox, smtp_server, smtp_settings

PASSWORD = "correct-horse-battery"


def cheap_hasher() -> PasswordHash:
    return PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))


@pytest.fixture(autouse=True)
def fast_password_hashing() -> Iterator[None]:
    """Hash and verify passwords cheaply (argon2 at its lowest cost)."""
    with patch.object(passwords, "_hasher", cheap_hasher):
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
