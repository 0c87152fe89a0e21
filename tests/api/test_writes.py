"""The API's writes through the one write path: hooks, history, and conditional requests."""

from typing import Any

import pytest
from httpx import AsyncClient

from backend.models import Role
from tests.api.conftest import Account, Rows
from tests.fixture_app.hooks import REFUSED_NAME


async def history(client: AsyncClient, path: str, admin: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get(f"{path}/history", headers=admin)
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()
    return entries


async def test_a_hook_refuses_a_write_naming_the_field(
    client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    refused = await client.post(
        "/api/fx_currencies", json={"code": "QQQ", "name": REFUSED_NAME}, headers=admin
    )
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "name"] and "not a currency name" in error["msg"]
    assert (await client.get("/api/fx_currencies/QQQ", headers=admin)).status_code == 404
    currency = await rows.create("fx_currencies")
    path = f"/api/fx_currencies/{currency['code']}"
    refused = await client.patch(path, json={"name": REFUSED_NAME}, headers=admin)
    assert refused.status_code == 422, refused.text
    assert [e["action"] for e in await history(client, path, admin)] == ["created"]


@pytest.mark.parametrize("value", ["a\x00b", "x" * 300])
async def test_unstorable_values_are_422s_and_leave_no_entry(
    client: AsyncClient, rows: Rows, admin: dict[str, str], value: str
) -> None:
    product = await rows.create("products")
    path = f"/api/products/{product['id']}"
    response = await client.patch(path, json={"name": value}, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
    assert "SQL" not in response.text
    assert [e["action"] for e in await history(client, path, admin)] == ["created"]


async def test_a_conflict_leaves_no_entry(
    client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    first = await rows.create("products")
    second = await rows.create("products")
    path = f"/api/products/{second['id']}"
    response = await client.patch(path, json={"sku": first["sku"]}, headers=admin)
    assert response.status_code == 409
    assert response.json()["detail"][0]["loc"] == ["body", "sku"]
    assert [e["action"] for e in await history(client, path, admin)] == ["created"]


async def test_put_honours_if_match_weak_tags_never_match_malformed_ones_are_400(
    client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    tag = await rows.create("tags")
    path = f"/api/tags/{tag['id']}"
    for bad in ('W/"1"', '"one"'):
        response = await client.put(
            path, json={"name": "renamed"}, headers={**admin, "If-Match": bad}
        )
        assert response.status_code == 412, (bad, response.text)
        assert response.headers["etag"] == '"1"'
    for malformed in ("1", "null", "{}", ""):  # not an entity tag (RFC 9110, 8.8.3): 400
        response = await client.put(
            path, json={"name": "renamed"}, headers={**admin, "If-Match": malformed}
        )
        assert response.status_code == 400, (malformed, response.text)
    replaced = await client.put(path, json={"name": "renamed"}, headers={**admin, "If-Match": "*"})
    assert replaced.status_code == 200 and replaced.headers["etag"] == '"2"'
    several = await client.put(
        path, json={"name": "again"}, headers={**admin, "If-Match": '"2", "3"'}
    )
    assert several.status_code == 400


async def test_the_list_of_every_change_is_for_admins_and_filters(
    client: AsyncClient, rows: Rows, accounts: dict[Role, Account]
) -> None:
    admin, editor = accounts[Role.admin], accounts[Role.editor]
    tag = await rows.create("tags")
    made = await client.post("/api/tags", json={"name": "by-editor"}, headers=editor.headers)
    assert made.status_code == 201
    assert (await client.get("/api/history", headers=editor.headers)).status_code == 403
    assert (await client.get("/api/history")).status_code == 401
    response = await client.get(
        "/api/history", params={"resource": "tags", "actor": editor.email}, headers=admin.headers
    )
    assert response.status_code == 200
    [entry] = response.json()
    assert entry["row_id"] == str(made.json()["id"]) and entry["action"] == "created"
    assert response.headers["x-total-count"] == "1"
    by_row = await client.get(
        "/api/history",
        params={"resource": "tags", "row_id": str(tag["id"]), "action": "created"},
        headers=admin.headers,
    )
    assert [e["actor"] for e in by_row.json()] == [admin.email]
    future = await client.get(
        "/api/history", params={"since": "2999-01-01T00:00:00Z"}, headers=admin.headers
    )
    assert future.json() == []
    bad = await client.get("/api/history", params={"since": "yesterday"}, headers=admin.headers)
    assert bad.status_code == 422
    viewer = accounts[Role.viewer]
    own = await client.get(f"/api/tags/{tag['id']}/history", headers=viewer.headers)
    assert own.status_code == 200  # whoever may read the table reads its history
