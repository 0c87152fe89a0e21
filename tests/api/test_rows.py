"""The API's JSON, written by orjson from Core rows, is byte for byte what pydantic writes.

For every registered resource, with every field set to a value that would show a difference
(`tests/api/samples.py`): the bytes of the write's own response (POST, PUT, PATCH, DELETE),
of `GET /api/<name>/<id>` and of the list page equal the Read schema validating the ORM object
and dumping it, as the routes did before they answered from rows.
"""

import base64
import uuid
from datetime import timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from httpx import AsyncClient
from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticUndefined
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import selectinload
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.crud.rows import RowShape, dump_json
from backend.crud.schemas import Base64Data, derive_replace_schema, derive_schemas
from backend.registry import registry
from tests.api.samples import FullRows, sample_value

RESOURCES = [resource.name for resource in registry]


async def pydantic_json(connection: AsyncConnection, name: str, item_id: Any) -> bytes:
    """The row as the Read schema validating the ORM object writes it."""
    resource = registry.get(name)
    schemas = derive_schemas(resource)
    item_id = TypeAdapter(resource.primary_key_type).validate_python(item_id)  # from JSON
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as session:
        model: Any = resource.model
        statement = select(model).where(getattr(model, resource.primary_key) == item_id)
        for link in schemas.many_to_many:
            statement = statement.options(selectinload(getattr(model, link.relationship)))
        row = (await session.exec(statement)).one()
        return schemas.read.model_validate(row).model_dump_json().encode()


@pytest.mark.parametrize("name", RESOURCES)
async def test_every_response_is_what_pydantic_writes(
    name: str, client: AsyncClient, admin: dict[str, str], connection: AsyncConnection
) -> None:
    resource = registry.get(name)
    schemas = derive_schemas(resource)
    full = FullRows(client, admin)
    pk = resource.primary_key

    created = await full.create(name)
    item_id = created[pk]
    url = f"/api/{name}/{item_id}"
    posted = await client.get(url, headers=admin)
    assert posted.status_code == 200, posted.text
    expected = await pydantic_json(connection, name, item_id)
    assert posted.content == expected
    assert posted.headers["content-type"] == "application/json"
    assert orjson.loads(expected) == created  # the POST's own response

    page = await client.get(f"/api/{name}", params={pk: item_id}, headers=admin)
    assert page.status_code == 200, page.text
    assert page.content == b"[" + expected + b"]"

    # Every field written again, through PUT and PATCH: each response is the stored row.
    for method, schema in (("PUT", derive_replace_schema(resource)), ("PATCH", schemas.update)):
        body = await full.body(name, 1 if method == "PUT" else 2, schema=schema)
        changed = await client.request(method, url, json=body, headers=admin)
        assert changed.status_code == 200, (method, body, changed.text)
        assert changed.content == await pydantic_json(connection, name, item_id), method
        assert changed.json()[pk] == item_id  # never changed, even where the client chose it

    stored = await pydantic_json(connection, name, item_id)
    deleted = await client.delete(url, headers=admin)
    assert deleted.status_code == 200, deleted.text
    assert deleted.content == stored


async def test_every_fixture_column_was_covered_with_a_value(
    client: AsyncClient, admin: dict[str, str]
) -> None:
    """The test above sets every column: none of its values is null or a default."""
    for resource in registry:
        if not resource.table.name.startswith("fx_"):
            continue
        record = await FullRows(client, admin).create(resource.name)
        schemas = derive_schemas(resource)
        for field, info in schemas.create.model_fields.items():
            assert record[field] is not None, (resource.name, field)
            if info.default not in (None, PydanticUndefined):
                adapter: TypeAdapter[Any] = TypeAdapter(info.annotation)  # type: ignore[arg-type]
                default = adapter.dump_python(info.default, mode="json")
                assert record[field] != default, (resource.name, field)


def test_dump_json_writes_decimals_and_times_as_pydantic_does() -> None:
    from datetime import UTC, datetime, timezone

    class Shown(BaseModel):
        price: Decimal
        at: datetime

    for price, at in [
        (Decimal("12.30"), datetime(2026, 1, 1, tzinfo=UTC)),
        (Decimal("1E+2"), datetime(2026, 1, 1, 1, 2, 3, 4500, tzinfo=UTC)),
        (Decimal("-0.00"), datetime(2026, 1, 1, 1, 2, 3, 450000)),
        (Decimal("99999999.99"), datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))),
    ]:
        shown = Shown(price=price, at=at)
        assert dump_json({"price": price, "at": at}) == shown.model_dump_json().encode()


def test_dump_json_writes_what_orjson_cannot_as_pydantic_does() -> None:
    """Durations, bytes, UUIDs of asyncpg's own class (which orjson refuses)."""
    from asyncpg.pgproto.pgproto import UUID as DriverUUID

    class Shown(BaseModel):
        every: list[timedelta]
        data: Base64Data
        key: uuid.UUID

    text = "12345678-9abc-def0-0fed-cba987654321"
    driver_uuid = DriverUUID(text)
    with pytest.raises(TypeError):
        orjson.dumps(driver_uuid)  # the reason `_json_default` converts it
    durations = [
        timedelta(0),
        timedelta(days=400, seconds=3723, microseconds=5),
        timedelta(days=-3, seconds=5, microseconds=7),
        timedelta(microseconds=-1),
    ]
    data = bytes(range(256))
    shown = Shown(every=durations, data=data, key=uuid.UUID(text))
    written = dump_json({"every": durations, "data": data, "key": driver_uuid})
    assert written == shown.model_dump_json().encode()
    assert base64.b64decode(orjson.loads(written)["data"]) == data


def test_a_value_orjson_and_the_default_do_not_know_is_written_by_pydantic() -> None:
    """The encoder never fails where pydantic would not: a value neither orjson nor pydantic's
    inference writes (a read-only mapping, as a JSON type of the user's own might return) goes
    through the Read schema, which takes any mapping for a dict field."""
    resource = registry.get("fx_specimens")
    shape = RowShape(resource, "sqlite")
    record = {
        name: sample_value(name, info.annotation, info.metadata, resource.table.columns[name], 0)
        for name, info in shape.read.model_fields.items()
    }
    record["attributes"] = MappingProxyType({"k": [1, "ü"]})
    with pytest.raises(TypeError):
        dump_json(record)
    written = shape.json(record)
    assert orjson.loads(written)["attributes"] == {"k": [1, "ü"]}
    assert orjson.loads(shape.json([record, record]))[1]["attributes"] == {"k": [1, "ü"]}
