"""Signing in, tokens, anonymous reads and user management through the API."""

import asyncio
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.passwords import verify_password
from backend.auth.tokens import create_access_token, read_access_token
from backend.auth.users import authenticate
from backend.config import Settings
from backend.models import Role, User
from tests.api.conftest import PASSWORD, Account, Rows
from tests.loop_gate import password_checks_gated


async def sign_in(client: AsyncClient, email: str, password: str) -> tuple[int, dict[str, object]]:
    response = await client.post("/api/auth/token", data={"username": email, "password": password})
    return response.status_code, response.json()


async def test_password_flow_issues_a_working_expiring_token(
    client: AsyncClient, accounts: dict[Role, Account], settings: Settings
) -> None:
    editor = accounts[Role.editor]
    status, body = await sign_in(client, editor.email.upper(), PASSWORD)
    assert status == 200, body
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_expire_minutes * 60
    token = str(body["access_token"])
    assert read_access_token(token, settings) == editor.id
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == settings.access_token_expire_minutes * 60
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["email"] == editor.email
    assert "hashed_password" not in me.text


@pytest.mark.parametrize("who", ["wrong-password", "unknown-email", "inactive"])
async def test_bad_credentials_are_401(
    who: str, client: AsyncClient, accounts: dict[Role, Account], connection: AsyncConnection
) -> None:
    account = accounts[Role.viewer]
    email, password = account.email, PASSWORD
    if who == "wrong-password":
        password = "not-the-password"
    elif who == "unknown-email":
        email = "nobody@example.com"
    else:
        await connection.execute(update(User).where(User.id == account.id).values(is_active=False))  # type: ignore[arg-type]
    status, body = await sign_in(client, email, password)
    assert status == 401
    assert body == {"detail": "Incorrect email or password"}


@pytest.mark.parametrize("who", ["right-password", "unknown-email"])
async def test_sign_in_checks_the_password_off_the_event_loop(
    who: str, client: AsyncClient, accounts: dict[Role, Account]
) -> None:
    """Argon2 costs ~0.2 s of CPU: other requests must be served while it runs."""
    email = accounts[Role.viewer].email if who == "right-password" else "nobody@example.com"
    async with password_checks_gated(turns=200) as loop:
        status, body = await sign_in(client, email, PASSWORD)
    assert status == (200 if who == "right-password" else 401), body
    assert loop.checks == 1  # an unknown email is checked too, against a stand-in hash
    assert loop.turns == 200  # the loop turned while the check ran


async def test_sign_in_holds_no_connection_while_checking_the_password(
    app: FastAPI, accounts: dict[Role, Account]
) -> None:
    email = accounts[Role.viewer].email
    async with app.state.database.api_sessions() as session:
        async with password_checks_gated() as loop:
            signing_in = asyncio.create_task(authenticate(session, email, PASSWORD))
            assert await asyncio.to_thread(loop.started.wait, 15)  # the check has begun
            assert not session.in_transaction()  # its connection went back to the pool
            user = await signing_in
    assert user is not None and user.email == email


async def test_missing_form_fields_are_422(client: AsyncClient) -> None:
    response = await client.post("/api/auth/token", data={"username": "a@example.com"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "password"]


async def test_another_grant_type_is_422_and_the_form_documents_no_null(
    client: AsyncClient, accounts: dict[Role, Account]
) -> None:
    form = {"username": accounts[Role.viewer].email, "password": PASSWORD}
    refused = await client.post(
        "/api/auth/token", data={**form, "grant_type": "client_credentials"}
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "grant_type"]
    taken = await client.post("/api/auth/token", data={**form, "grant_type": "password"})
    assert taken.status_code == 200, taken.text
    spec = (await client.get("/openapi.json")).json()
    fields = spec["components"]["schemas"]["PasswordForm"]["properties"]
    # a form sends text or nothing: none of its fields is documented as null
    assert all("anyOf" not in field and field["type"] == "string" for field in fields.values())


async def test_expired_forged_and_revoked_tokens_are_401(
    client: AsyncClient,
    accounts: dict[Role, Account],
    settings: Settings,
    connection: AsyncConnection,
) -> None:
    account = accounts[Role.admin]
    expired = create_access_token(account.id, settings, now=datetime.now(UTC) - timedelta(days=1))
    forged = jwt.encode(
        {"sub": str(account.id), "typ": "access", "iat": 0, "exp": 2**40},
        "a-guessed-key-that-is-long-enough-for-hs256",
        "HS256",
    )
    unsigned = jwt.encode({"sub": str(account.id), "exp": 2**40}, None, "none")
    for token in (expired, forged, unsigned, "garbage"):
        response = await client.get("/api/products", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    await connection.execute(update(User).where(User.id == account.id).values(is_active=False))  # type: ignore[arg-type]
    inactive = await client.get("/api/products", headers=account.headers)
    assert inactive.status_code == 401
    await connection.execute(text("DELETE FROM users WHERE id = :id"), {"id": account.id})
    deleted = await client.get("/api/products", headers=account.headers)
    assert deleted.status_code == 401


async def test_a_role_change_takes_effect_at_once(
    client: AsyncClient, accounts: dict[Role, Account], connection: AsyncConnection
) -> None:
    account = accounts[Role.viewer]
    assert (await client.get("/api/users", headers=account.headers)).status_code == 403
    await connection.execute(update(User).where(User.id == account.id).values(role="admin"))  # type: ignore[arg-type]
    assert (await client.get("/api/users", headers=account.headers)).status_code == 200


async def test_users_are_created_with_a_hashed_password(
    client: AsyncClient, admin: dict[str, str], connection: AsyncConnection
) -> None:
    body = {"email": "New.User@Example.com", "password": "a-long-password", "role": "editor"}
    response = await client.post("/api/users", json=body, headers=admin)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["email"] == "new.user@example.com"
    assert "password" not in response.text and "hashed_password" not in response.text
    stored = (
        await connection.execute(
            text("SELECT hashed_password FROM users WHERE id = :id"), {"id": created["id"]}
        )
    ).scalar_one()
    assert stored.startswith("$argon2") and verify_password("a-long-password", stored)
    status, _ = await sign_in(client, "new.user@example.com", "a-long-password")
    assert status == 200
    changed = await client.patch(
        f"/api/users/{created['id']}", json={"password": "another-long-one"}, headers=admin
    )
    assert changed.status_code == 200
    assert (await sign_in(client, "new.user@example.com", "another-long-one"))[0] == 200
    assert (await sign_in(client, "new.user@example.com", "a-long-password"))[0] == 401
    short = await client.post("/api/users", json={**body, "password": "short"}, headers=admin)
    assert short.status_code == 422
    assert short.json()["detail"][0]["loc"] == ["body", "password"]


class TestAnonymousRead:
    """With ANONYMOUS_READ on, viewer-level resources can be read without a token."""

    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, environment="test", anonymous_read=True)

    async def test_reads_are_open_and_writes_are_not(self, client: AsyncClient, rows: Rows) -> None:
        product = await rows.create("products")
        assert (await client.get("/api/products")).status_code == 200
        assert (await client.get(f"/api/products/{product['id']}")).status_code == 200
        assert (await client.get("/api/users")).status_code == 401
        body = await rows.payload("products")
        assert (await client.post("/api/products", json=body)).status_code == 401
        assert (await client.delete(f"/api/products/{product['id']}")).status_code == 401
        bad = await client.get("/api/products", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        paths = (await client.get("/openapi.json")).json()["paths"]
        assert paths["/api/products"]["get"]["security"] == [{"bearer": []}, {}]
        assert paths["/api/products"]["post"]["security"] == [{"bearer": []}]
        assert paths["/api/users"]["get"]["security"] == [{"bearer": []}]


class TestCors:
    """Browser frontends on the configured origins may call the API and read paging headers."""

    ORIGIN = "http://localhost:5173"

    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(database_url=database_url, environment="test", cors_origins=[self.ORIGIN])

    async def test_preflight_and_exposed_headers(
        self, client: AsyncClient, admin: dict[str, str]
    ) -> None:
        preflight = await client.options(
            "/api/products",
            headers={
                "Origin": self.ORIGIN,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == self.ORIGIN
        response = await client.get("/api/products", headers={**admin, "Origin": self.ORIGIN})
        exposed = response.headers["access-control-expose-headers"].lower()
        assert "x-total-count" in exposed and "content-range" in exposed
        other = await client.get(
            "/api/products", headers={**admin, "Origin": "http://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers


async def test_a_user_sent_back_as_read_keeps_its_password(
    client: AsyncClient, admin: dict[str, str]
) -> None:
    """react-admin updates with PUT and the record it read, which has no password."""
    body = {"email": "kept@example.com", "password": "a-long-password", "role": "viewer"}
    created = (await client.post("/api/users", json=body, headers=admin)).json()
    edited = {**created, "full_name": "Kept Password"}
    response = await client.put(f"/api/users/{created['id']}", json=edited, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["full_name"] == "Kept Password"
    assert (await sign_in(client, "kept@example.com", "a-long-password"))[0] == 200
    edited["password"] = "a-new-long-password"
    response = await client.put(f"/api/users/{created['id']}", json=edited, headers=admin)
    assert response.status_code == 200
    assert (await sign_in(client, "kept@example.com", "a-new-long-password"))[0] == 200
