"""Fixtures for the API suite: users per role with tokens, and valid rows for any resource.

`app` is built once per distinct Settings and reused: generating every resource's routes
takes a few hundred milliseconds, too much to repeat for each of hundreds of tests. Each test
binds the reused app's session factories to its own engine and rolled-back connection.

`Rows.payload(name)` builds a valid Create body for any registered resource from its derived
schema alone, creating referenced rows first (recursively), with values unique per call; so a
newly registered table is covered by the contract suite without writing a test.
"""

import enum
import itertools
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from annotated_types import Ge, Gt, MaxLen, MinLen
from fastapi import FastAPI
from httpx import AsyncClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.auth import passwords
from backend.auth.passwords import hash_password
from backend.auth.tokens import create_access_token
from backend.config import Settings
from backend.crud.schemas import derive_schemas
from backend.main import create_app
from backend.models import Role
from backend.registry import ResourceOptions, registry

PASSWORD = "correct-horse-battery-staple"
_counter = itertools.count(1)


_APPS: dict[str, FastAPI] = {}


@pytest.fixture
def app(settings: Settings, engine: AsyncEngine, connection: AsyncConnection) -> FastAPI:
    """The app for `settings` (built once), its sessions joined to this test's transaction."""
    key = settings.model_dump_json()
    if key not in _APPS:
        _APPS[key] = create_app(settings)
    application = _APPS[key]
    database = application.state.database
    database.start(engine)
    for factory in (database.api_sessions, database.admin_sessions):
        factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    return application


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Real argon2, with test-sized cost: the default costs ~0.5 s per hash on this machine,
    and the contract suite creates hundreds of users. Verification reads the cost from each
    hash, so production-cost hashes still verify."""
    cheap = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", lambda: cheap)
        yield


@pytest.fixture(scope="session")
def password_hash(cheap_password_hashing: None) -> str:
    """Hashed once per run: argon2 is slow on purpose."""
    return hash_password(PASSWORD)


@dataclass
class Account:
    id: int
    email: str
    role: Role
    headers: dict[str, str]


@pytest.fixture
async def accounts(
    connection: AsyncConnection, settings: Settings, password_hash: str
) -> dict[Role, Account]:
    """One active user per role, with a bearer token header each."""
    made = {}
    for role in Role:
        email = f"{role.value}-{next(_counter)}@example.com"
        users = registry.get("users").table
        result = await connection.execute(
            insert(users)
            .values(email=email, hashed_password=password_hash, role=role.value, is_active=True)
            .returning(users.c.id)
        )
        user_id = int(result.scalar_one())
        token = create_access_token(user_id, settings)
        made[role] = Account(user_id, email, role, {"Authorization": f"Bearer {token}"})
    return made


@pytest.fixture
def admin(accounts: dict[Role, Account]) -> dict[str, str]:
    return accounts[Role.admin].headers


@pytest.fixture
def editor(accounts: dict[Role, Account]) -> dict[str, str]:
    return accounts[Role.editor].headers


@pytest.fixture
def viewer(accounts: dict[Role, Account]) -> dict[str, str]:
    return accounts[Role.viewer].headers


def writer(resource: ResourceOptions, accounts: dict[Role, Account]) -> dict[str, str]:
    """Headers of the least-privileged user who may write `resource`."""
    return accounts[resource.write_role].headers


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, nullable) of `X | None`."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(annotation))
    return annotation, False


def _constraint(metadata: list[Any], kind: type) -> Any:
    for item in metadata:
        if isinstance(item, kind):
            return item
    return None


def sample_value(name: str, annotation: Any, metadata: list[Any], n: int) -> Any:
    """A valid, unique-per-`n` JSON value for a field of this type and constraints."""
    inner, _nullable = _unwrap(annotation)
    text = typing.get_origin(inner) is None and isinstance(inner, type) and issubclass(inner, str)
    if name == "password":
        return PASSWORD
    if "email" in name or getattr(inner, "__name__", "") in ("EmailStr", "NameEmail"):
        return f"user{n:06d}@example.com"
    if inner is bool:
        return n % 2 == 0
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        members = list(inner)
        return members[n % len(members)].value
    if inner is int:
        low = _constraint(metadata, Ge)
        above = _constraint(metadata, Gt)
        start = low.ge if low else (above.gt + 1 if above else 0)
        return max(start, 0) + n % 90 + 1
    if inner in (Decimal, float):
        return f"{n % 900 + 1}.{n % 100:02d}"
    if inner is datetime or getattr(inner, "__name__", "") == "AwareDatetime":
        return (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=n)).isoformat()
    if text or inner is Any:
        longest = _constraint(metadata, MaxLen)
        shortest = _constraint(metadata, MinLen)
        value = f"v{n:06d}"
        if shortest is not None and len(value) < shortest.min_length:
            value = value.ljust(shortest.min_length, "x")
        return value[: longest.max_length] if longest else value
    raise NotImplementedError(f"no sample value for {name}: {annotation!r}")


class Rows:
    """Creates valid rows of any resource through the API, as an admin."""

    def __init__(self, client: AsyncClient, admin: dict[str, str]) -> None:
        self.client = client
        self.admin = admin

    async def payload(self, name: str, /, **overrides: Any) -> dict[str, Any]:
        """A valid Create body for `name`, creating the rows it refers to."""
        resource = registry.get(name)
        schemas = derive_schemas(resource)
        references = {
            column.name: next(iter(column.foreign_keys)).column.table.name
            for column in resource.table.columns
            if column.foreign_keys
        }
        links = {link.field: str(link.target.__tablename__) for link in schemas.many_to_many}
        body: dict[str, Any] = {}
        for field_name, info in schemas.create.model_fields.items():
            if field_name in overrides:
                continue
            if field_name in references:
                body[field_name] = (await self.create(references[field_name]))["id"]
            elif field_name in links:
                body[field_name] = [(await self.create(links[field_name]))["id"]]
            else:
                body[field_name] = sample_value(
                    field_name, info.annotation, info.metadata, next(_counter)
                )
        return {**body, **overrides}

    async def create(self, name: str, /, **overrides: Any) -> dict[str, Any]:
        """Create a row of `name` and return it as the API shows it."""
        body = await self.payload(name, **overrides)
        response = await self.client.post(f"/api/{name}", json=body, headers=self.admin)
        assert response.status_code == 201, (name, body, response.text)
        created: dict[str, Any] = response.json()
        return created


@pytest.fixture
def rows(client: AsyncClient, admin: dict[str, str]) -> Rows:
    return Rows(client, admin)
