"""`REQUIRE_IF_MATCH`: a write without `If-Match` is refused with 428."""

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from backend.config import Settings
from tests.api.conftest import Rows


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, environment="test", require_if_match=True)


async def test_if_match_can_be_required(
    app: FastAPI, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    tag = await rows.create("tags")
    path = f"/api/tags/{tag['id']}"
    missing = await client.patch(path, json={"name": "x"}, headers=admin)
    assert missing.status_code == 428 and "If-Match" in missing.json()["detail"]
    assert (await client.delete(path, headers=admin)).status_code == 428
    ok = await client.patch(path, json={"name": "x"}, headers={**admin, "If-Match": '"1"'})
    assert ok.status_code == 200
