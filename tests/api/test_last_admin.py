"""There is always an active admin: the last one cannot be demoted, deactivated or deleted,
whichever surface asks (the hook is the users table's, run by the one write path)."""

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.models import Role, User
from backend.registry import registry
from backend.writes.actor import CLI
from backend.writes.errors import WriteError
from backend.writes.service import writer_for
from tests.api.conftest import Account


@pytest.fixture
async def only_admin(connection: AsyncConnection, accounts: dict[Role, Account]) -> Account:
    """This test's admin, made the only active one (rolled back with the test)."""
    admin = accounts[Role.admin]
    users: Any = User.__table__  # type: ignore[attr-defined]
    await connection.execute(
        update(users).where(users.c.role == "admin", users.c.id != admin.id).values(is_active=False)
    )
    return admin


@pytest.mark.parametrize(
    ("change", "field"), [({"role": "editor"}, "role"), ({"is_active": False}, "is_active")]
)
async def test_the_last_admin_cannot_demote_or_deactivate_themself(
    client: AsyncClient, only_admin: Account, change: dict[str, Any], field: str
) -> None:
    response = await client.patch(
        f"/api/users/{only_admin.id}", json=change, headers=only_admin.headers
    )
    assert response.status_code == 409, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field] and "last active admin" in error["msg"]
    me = await client.get("/api/auth/me", headers=only_admin.headers)
    assert me.json()["role"] == "admin"


async def test_the_last_admin_cannot_be_deleted(client: AsyncClient, only_admin: Account) -> None:
    response = await client.delete(f"/api/users/{only_admin.id}", headers=only_admin.headers)
    assert response.status_code == 409, response.text
    assert "last active admin" in response.json()["detail"][0]["msg"]


async def test_with_another_admin_an_admin_may_step_down(
    client: AsyncClient, only_admin: Account
) -> None:
    other = await client.post(
        "/api/users",
        json={"email": "second-admin@example.com", "password": "a-long-password", "role": "admin"},
        headers=only_admin.headers,
    )
    assert other.status_code == 201, other.text
    stepped = await client.patch(
        f"/api/users/{only_admin.id}", json={"role": "editor"}, headers=only_admin.headers
    )
    assert stepped.status_code == 200, stepped.text


async def test_the_rule_holds_outside_the_api(
    app: FastAPI, only_admin: Account, backend: str
) -> None:
    users = writer_for(registry.get("users"), backend)
    async with app.state.database.api_connection() as db:
        with pytest.raises(WriteError) as caught:
            await users.update(db, only_admin.id, {"role": "viewer"}, CLI)
    assert caught.value.problems[0].field == "role"
