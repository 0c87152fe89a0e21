"""Fixtures for the API suite: users per role with tokens, and valid rows for any resource.

`app` is built once per distinct Settings and reused: generating every resource's routes
takes a few hundred milliseconds, too much to repeat for each of hundreds of tests. Each test
binds the reused app's session factories to its own engine and rolled-back connection.

`Rows.payload(name)` builds a valid Create body for any registered resource from its derived
schema alone (polyfactory, seeded per test), creating referenced rows first, with values unique
where the table requires it; so a newly registered table is covered by the contract suite
without writing a test.
"""

import itertools
import random
import types
import typing
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any

import pytest
from faker import Faker
from fastapi import FastAPI
from httpx import AsyncClient
from polyfactory.factories.base import BaseFactory
from polyfactory.factories.pydantic_factory import ModelFactory
from polyfactory.field_meta import FieldMeta
from pydantic import AwareDatetime, BaseModel, EmailStr, NaiveDatetime, ValidationError
from sqlalchemy import Table, UniqueConstraint, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.auth.passwords import hash_password
from backend.auth.tokens import create_access_token
from backend.config import Settings
from backend.crud.schemas import derive_schemas
from backend.main import create_app
from backend.models import Role
from backend.registry import ResourceOptions, registry
from tests.passwords import cheap_password_hashing

PASSWORD = "correct-horse-battery-staple"
MISSING_ID = 2**31 - 1
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
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
def fast_password_hashing() -> Iterator[None]:
    """Real argon2, with test-sized cost: the default costs ~0.5 s per hash on this machine,
    and the contract suite creates hundreds of users. Verification reads the cost from each
    hash, so production-cost hashes still verify."""
    with cheap_password_hashing():
        yield


@pytest.fixture(scope="session")
def password_hash(fast_password_hashing: None) -> str:
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


def _unwrap(annotation: Any) -> Any:
    """`X` of `X | None`."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


class SampleFactory(ModelFactory[Any]):
    """Valid values for any derived input schema, honouring its types and constraints
    (patterns, lengths, bounds, decimal places, enums), with every field filled.

    One Random and one Faker serve every schema, reseeded per test (see `rows`): a test's
    sample data is the same on every run, and differs from the next test's.
    """

    __is_base_factory__ = True
    __check_model__ = False
    __allow_none_optionals__ = False
    __faker__ = Faker()
    __random__ = random.Random(0)
    __min_collection_length__ = 1
    __max_collection_length__ = 3

    @classmethod
    def get_model_fields(cls) -> list[FieldMeta]:
        fields = super().get_model_fields()
        for field in fields:
            field.required = True  # fill fields that have a default too: they are filtered on
            if _unwrap(field.annotation) is EmailStr:
                field.constraints = None  # polyfactory refuses an EmailStr with max_length
        return fields

    @classmethod
    def get_provider_map(cls) -> dict[Any, Callable[[], Any]]:
        providers = super().get_provider_map()
        # Faker's time_delta() is always zero; durations of either sign, to the microsecond.
        providers[timedelta] = lambda: timedelta(
            seconds=cls.__random__.randint(-(10**8), 10**8),
            microseconds=cls.__random__.randint(0, 999_999),
        )
        # Faker's dates and times depend on today's date: from the seed alone instead.
        providers[AwareDatetime] = cls._moment
        providers[datetime] = cls._moment
        providers[NaiveDatetime] = lambda: cls._moment().replace(tzinfo=None)
        providers[date] = lambda: cls._moment().date()
        providers[time] = lambda: cls._moment().time()
        return providers

    @classmethod
    def _moment(cls) -> datetime:
        """A UTC instant between 1900 and 2100, to the microsecond."""
        return EARLIEST + timedelta(
            seconds=cls.__random__.randint(0, 200 * 365 * 86_400),
            microseconds=cls.__random__.randint(0, 999_999),
        )

    @classmethod
    def seed(cls, seed: int) -> None:
        """Restart every schema's values from `seed`."""
        cls.__random__.seed(seed)
        cls.__faker__.seed_instance(seed)


@cache
def sample_factory(schema: type[BaseModel]) -> type[BaseFactory[BaseModel]]:
    """The factory of one input schema (built once: polyfactory inspects the schema)."""
    return SampleFactory.create_factory(model=schema)


def unique_keys(resource: ResourceOptions) -> list[tuple[str, ...]]:
    """The column sets whose values must differ between rows: unique columns and constraints,
    and the primary key."""
    table = resource.table
    keys: list[tuple[str, ...]] = [(c.name,) for c in table.columns if c.unique]
    keys += [
        tuple(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    keys.append(tuple(table.primary_key.columns.keys()))
    return keys


def resource_of_table(table: Table) -> ResourceOptions:
    return next(r for r in registry if r.table is table)


class Rows:
    """Creates valid rows of any resource through the API, as an admin."""

    TRIES = 100

    def __init__(self, client: AsyncClient, admin: dict[str, str]) -> None:
        self.client = client
        self.admin = admin
        self._used: dict[tuple[str, tuple[str, ...]], set[tuple[Any, ...]]] = {}
        self._making: list[str] = []

    async def payload(self, name: str, /, **overrides: Any) -> dict[str, Any]:
        """A valid Create body for `name`: values generated from its Create schema, unique
        where the table says so, and the rows it refers to created first.

        A foreign key that would lead back to a table being made (a tree's `parent_id`) is
        left null when nullable; every other one gets a new row of its own.
        """
        resource = registry.get(name)
        schemas = derive_schemas(resource)
        body = self._unique_sample(resource, schemas.create, overrides)
        self._making.append(name)
        try:
            for column in resource.table.columns:
                if column.name not in body or column.name in overrides or not column.foreign_keys:
                    continue
                target = next(iter(column.foreign_keys)).column
                parent = resource_of_table(target.table)
                if parent.name in self._making:
                    assert column.nullable, f"{name}.{column.name}: a cycle of required keys"
                    body[column.name] = None
                else:
                    body[column.name] = (await self.create(parent.name))[target.name]
            for link in schemas.many_to_many:
                if link.field in overrides:
                    continue
                linked = registry.for_model(link.target)
                created = await self.create(linked.name)
                body[link.field] = [created[linked.primary_key]]
        finally:
            self._making.pop()
        return {**body, **overrides}

    def _unique_sample(
        self, resource: ResourceOptions, schema: type[BaseModel], overrides: dict[str, Any]
    ) -> dict[str, Any]:
        """A generated body whose unique keys are new (keys with a foreign key, filled with a
        new row later, or given whole in `overrides`, are new or meant to be)."""
        factory = sample_factory(schema)
        fields = set(schema.model_fields)
        references = {c.name for c in resource.table.columns if c.foreign_keys}
        keys = [
            key
            for key in unique_keys(resource)
            if set(key) <= fields
            and not (set(key) & references) - set(overrides)
            and not set(key) <= set(overrides)
        ]
        for _ in range(self.TRIES):
            try:
                built = factory.build()
            except ValidationError:  # e.g. a pattern's match cut to the field's max_length
                continue
            body: dict[str, Any] = built.model_dump(mode="json")
            values = {**body, **overrides}
            found = {key: tuple(values[field] for field in key) for key in keys}
            used = [self._used.setdefault((resource.name, key), set()) for key in found]
            if all(value not in seen for value, seen in zip(found.values(), used, strict=True)):
                for value, seen in zip(found.values(), used, strict=True):
                    seen.add(value)
                return body
        raise AssertionError(f"{resource.name}: no valid, new sample in {self.TRIES} tries")

    async def missing_id(self, name: str, /) -> Any:
        """A valid primary key value of `name` that no row has."""
        resource = registry.get(name)
        python_type = resource.primary_key_type
        if python_type is int:
            return MISSING_ID
        if python_type is uuid.UUID:
            return str(uuid.UUID(int=SampleFactory.__random__.getrandbits(128), version=4))
        return (await self.payload(name))[resource.primary_key]

    async def create(self, name: str, /, **overrides: Any) -> dict[str, Any]:
        """Create a row of `name` and return it as the API shows it."""
        body = await self.payload(name, **overrides)
        response = await self.client.post(f"/api/{name}", json=body, headers=self.admin)
        assert response.status_code == 201, (name, body, response.text)
        created: dict[str, Any] = response.json()
        return created


@pytest.fixture
def rows(client: AsyncClient, admin: dict[str, str], request: pytest.FixtureRequest) -> Rows:
    SampleFactory.seed(zlib.crc32(request.node.nodeid.encode()))
    return Rows(client, admin)
