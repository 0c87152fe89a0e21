"""The API's JSON, written by orjson from Core rows, is byte for byte what pydantic writes.

For every registered resource: the bytes of `GET /api/<name>/<id>` and of the list page equal
the Read schema validating the ORM object and dumping it, as the routes did before they
answered from rows.
"""

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import selectinload
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from backend.crud.rows import dump_json
from backend.crud.schemas import derive_schemas
from backend.registry import registry
from tests.api.conftest import Rows


@pytest.mark.parametrize("name", [resource.name for resource in registry])
async def test_api_json_is_what_pydantic_writes(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str], connection: AsyncConnection
) -> None:
    resource = registry.get(name)
    schemas = derive_schemas(resource)
    created = await rows.create(name)
    async with AsyncSession(bind=connection, join_transaction_mode="create_savepoint") as session:
        model: Any = resource.model
        statement = select(model).where(getattr(model, resource.primary_key) == created["id"])
        for link in schemas.many_to_many:
            statement = statement.options(selectinload(getattr(model, link.relationship)))
        row = (await session.exec(statement)).one()
        expected = schemas.read.model_validate(row).model_dump_json().encode()

    one = await client.get(f"/api/{name}/{created['id']}", headers=admin)
    assert one.status_code == 200, one.text
    assert one.content == expected
    assert one.headers["content-type"] == "application/json"

    page = await client.get(f"/api/{name}", params={"id": created["id"]}, headers=admin)
    assert page.status_code == 200, page.text
    assert page.content == b"[" + expected + b"]"


def test_dump_json_writes_decimals_and_times_as_pydantic_does() -> None:
    from datetime import UTC, datetime, timedelta, timezone
    from decimal import Decimal

    from pydantic import BaseModel

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
