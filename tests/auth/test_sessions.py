"""Sessions and tokens the server can revoke (issue 11, item 6), on both databases.

A new password - through the API, the admin, `create-user --update` - ends every API token
and admin session of the user; so does a deactivation, for good. Signing out of the admin
ends that session (and the user's other admin sessions), and a session ends after its
configured lifetime or idle time.
"""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlmodel import select

from backend import schema
from backend.admin import auth as admin_auth
from backend.auth.users import upsert_user
from backend.config import Settings
from backend.main import create_app
from backend.models import Role, User
from tests.auth.conftest import PASSWORD

_META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
NEW_PASSWORD = "a-brand-new-password"


def csrf_token(html: str) -> str:
    found = _META_TOKEN.search(html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


@asynccontextmanager
async def http_client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def api_token(http: AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = await http.post("/api/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def admin_sign_in(http: AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Sign `http` in to the admin; the page's CSRF token."""
    page = await http.get("/admin/login")
    response = await http.post(
        "/admin/login",
        data={"csrftoken": csrf_token(page.text), "username": email, "password": password},
    )
    assert response.status_code == 302, response.text
    return csrf_token((await http.get("/admin/")).text)


async def admin_page(http: AsyncClient, cookie: str | None = None) -> Response:
    """The admin's index with this client's cookie (or `cookie` instead)."""
    if cookie is None:
        return await http.get("/admin/")
    return await http.get("/admin/", headers={"cookie": f"{admin_auth.SESSION_COOKIE}={cookie}"})


def signed_in(response: Response) -> bool:
    return response.status_code == 200 and "signed-in-as" in response.text


async def test_a_password_change_through_the_api_ends_every_token(
    app: FastAPI, users: dict[Role, User]
) -> None:
    editor, admin = users[Role.editor], users[Role.admin]
    async with http_client(app) as http:
        editor_token = await api_token(http, editor.email)
        admin_token = await api_token(http, admin.email)
        assert (await http.get("/api/products", headers=editor_token)).status_code == 200
        assert (await http.get("/api/auth/me", headers=editor_token)).status_code == 200

        changed = await http.patch(
            f"/api/users/{editor.id}", json={"password": NEW_PASSWORD}, headers=admin_token
        )
        assert changed.status_code == 200, changed.text

        for path in ("/api/products", "/api/auth/me", f"/api/products/{2**31 - 1}"):
            refused = await http.get(path, headers=editor_token)
            assert refused.status_code == 401, (path, refused.text)
            assert "revoked" in refused.json()["detail"]
        refused_write = await http.post("/api/tags", json={"name": "x"}, headers=editor_token)
        assert refused_write.status_code == 401
        # the admin's own token is untouched; a token issued now works
        assert (await http.get("/api/products", headers=admin_token)).status_code == 200
        fresh = await api_token(http, editor.email, NEW_PASSWORD)
        assert (await http.get("/api/products", headers=fresh)).status_code == 200

        # changing one's own password ends one's own tokens too
        own = await http.patch(
            f"/api/users/{admin.id}", json={"password": NEW_PASSWORD}, headers=admin_token
        )
        assert own.status_code == 200
        assert (await http.get("/api/users", headers=admin_token)).status_code == 401


async def test_a_deactivation_ends_tokens_for_good(app: FastAPI, users: dict[Role, User]) -> None:
    editor, admin = users[Role.editor], users[Role.admin]
    async with http_client(app) as http:
        editor_token = await api_token(http, editor.email)
        admin_token = await api_token(http, admin.email)
        url = f"/api/users/{editor.id}"
        assert (await http.patch(url, json={"is_active": False}, headers=admin_token)).is_success
        assert (await http.get("/api/products", headers=editor_token)).status_code == 401
        assert (await http.patch(url, json={"is_active": True}, headers=admin_token)).is_success
        # reactivated: the token from before stays revoked
        assert (await http.get("/api/products", headers=editor_token)).status_code == 401
        assert (
            await http.get("/api/products", headers=await api_token(http, editor.email))
        ).is_success


async def test_a_role_change_revokes_nothing(app: FastAPI, users: dict[Role, User]) -> None:
    editor, admin = users[Role.editor], users[Role.admin]
    async with http_client(app) as http:
        editor_token = await api_token(http, editor.email)
        admin_token = await api_token(http, admin.email)
        demoted = await http.patch(
            f"/api/users/{editor.id}", json={"role": "viewer"}, headers=admin_token
        )
        assert demoted.status_code == 200
        assert (await http.get("/api/products", headers=editor_token)).status_code == 200
        assert (
            await http.post("/api/tags", json={"name": "y"}, headers=editor_token)
        ).status_code == 403


async def test_admin_logout_ends_the_session_for_a_copied_cookie(
    app: FastAPI, users: dict[Role, User]
) -> None:
    editor = users[Role.editor]
    async with http_client(app) as http, http_client(app) as other:
        await admin_sign_in(http, editor.email)
        await admin_sign_in(other, editor.email)  # the same user in another browser
        token = await api_token(http, editor.email)
        captured = http.cookies[admin_auth.SESSION_COOKIE]
        assert signed_in(await admin_page(http))

        out = await http.get("/admin/logout")
        assert out.status_code == 302
        assert admin_auth.SESSION_COOKIE not in http.cookies or not signed_in(
            await admin_page(http)
        )
        # the cookie captured before the logout no longer signs anyone in ...
        async with http_client(app) as attacker:
            replay = await admin_page(attacker, captured)
            assert replay.status_code == 302 and replay.headers["location"].endswith("/admin/login")
        # ... nor does the user's other admin session; their API token stays valid
        assert not signed_in(await admin_page(other))
        assert (await http.get("/api/products", headers=token)).status_code == 200
        # signing in again works
        await admin_sign_in(http, editor.email)
        assert signed_in(await admin_page(http))


async def test_a_password_change_ends_admin_sessions(app: FastAPI, users: dict[Role, User]) -> None:
    editor, admin = users[Role.editor], users[Role.admin]
    async with http_client(app) as http, http_client(app) as admin_http:
        await admin_sign_in(http, editor.email)
        csrf = await admin_sign_in(admin_http, admin.email)
        assert signed_in(await admin_page(http))
        form = {
            "csrftoken": csrf,
            "email": editor.email,
            "role": "editor",
            "is_active": "y",
            "password": NEW_PASSWORD,
            "save": "Save",
        }
        saved = await admin_http.post(f"/admin/user/edit/{editor.id}", data=form)
        assert saved.status_code == 302, saved.text
        assert not signed_in(await admin_page(http))
        assert signed_in(await admin_page(admin_http))  # the admin's own session goes on
        await admin_sign_in(http, editor.email, NEW_PASSWORD)
        assert signed_in(await admin_page(http))


async def test_admin_sessions_end_after_the_idle_time_and_the_lifetime(
    app: FastAPI, users: dict[Role, User], monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    now = [1_800_000_000.0]
    monkeypatch.setattr(admin_auth, "clock", lambda: now[0])
    idle, lifetime = settings.admin_session_idle_s, settings.admin_session_max_age_s
    assert 0 < idle < lifetime
    async with http_client(app) as http:
        await admin_sign_in(http, users[Role.viewer].email)
        now[0] += idle - 1
        assert signed_in(await admin_page(http))  # used just in time: the idle clock restarts
        now[0] += idle - 1
        assert signed_in(await admin_page(http))
        now[0] += idle
        assert not signed_in(await admin_page(http))  # idle too long

        await admin_sign_in(http, users[Role.viewer].email)
        started = now[0]
        while now[0] + idle - 1 < started + lifetime:  # kept busy, up to the lifetime
            now[0] += idle - 1
            assert signed_in(await admin_page(http))
        now[0] = started + lifetime
        assert not signed_in(await admin_page(http))  # however busy, it ends


async def test_the_session_cookie_lives_no_longer_than_the_session(
    app: FastAPI, users: dict[Role, User], settings: Settings
) -> None:
    async with http_client(app) as http:
        page = await http.get("/admin/login")
        response = await http.post(
            "/admin/login",
            data={
                "csrftoken": csrf_token(page.text),
                "username": users[Role.viewer].email,
                "password": PASSWORD,
            },
        )
    cookie = response.headers["set-cookie"]
    assert f"Max-Age={settings.admin_session_max_age_s};" in cookie
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()


async def test_create_user_update_ends_every_token_and_session(
    empty_database_url: str,
) -> None:
    """`tablestack create-user --update` writes from another process's connection: the
    revocation is in the database, not in a server's memory."""
    await schema.upgrade(empty_database_url)
    settings = Settings(database_url=empty_database_url, environment="test")
    email = "ops@example.com"
    assert await upsert_user(settings, email=email, password=PASSWORD, role=Role.admin)
    app = create_app(settings)
    async with LifespanManager(app), http_client(app) as http:
        token = await api_token(http, email)
        await admin_sign_in(http, email)
        assert (await http.get("/api/users", headers=token)).status_code == 200
        assert not await upsert_user(
            settings, email=email, password=NEW_PASSWORD, role=Role.admin, update=True
        )
        assert (await http.get("/api/users", headers=token)).status_code == 401
        assert not signed_in(await admin_page(http))
        async with app.state.database.api_sessions() as session:
            user = (await session.exec(select(User).where(User.email == email))).one()
        assert user.auth_version == 2
