"""Account recovery by email, against a real SMTP server in this process, on both databases:
each test follows the link in the message it received."""

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.auth import recovery
from backend.config import Settings
from backend.main import create_app
from backend.models import Role, User
from tests.auth.conftest import PASSWORD
from tests.auth.mailbox import Mailbox, link_in, token_of
from tests.auth.test_sessions import (
    NEW_PASSWORD,
    admin_page,
    admin_sign_in,
    api_token,
    csrf_token,
    http_client,
    signed_in,
)


def unused_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def request_reset(http: AsyncClient, email: str) -> dict[str, object]:
    response = await http.post("/api/auth/password-reset", json={"email": email})
    assert response.status_code == 202, response.text
    body: dict[str, object] = response.json()
    return body


async def test_the_reset_link_sets_a_new_password_once(
    app: FastAPI, users: dict[Role, User], mailbox: Mailbox, settings: Settings
) -> None:
    editor = users[Role.editor]
    async with http_client(app) as http:
        old_token = await api_token(http, editor.email)
        await admin_sign_in(http, editor.email)
        answer = await request_reset(http, editor.email.upper())  # any case
        message = mailbox.next()
        assert message["To"] == editor.email and "Reset your password" in message["Subject"]
        assert message["From"] == settings.smtp_from
        link = link_in(message)
        assert link.startswith(f"{settings.public_base_url}/admin/set-password?token=")

        # an unknown email gets the same answer, and no message
        assert await request_reset(http, "nobody@example.com") == answer
        assert mailbox.empty()

        # the link opens the admin's form for that user
        form = await http.get(urlsplit(link).path, params={"token": token_of(link)})
        assert form.status_code == 200 and editor.email in form.text

        confirmed = await http.post(
            "/api/auth/password-reset/confirm",
            json={"token": token_of(link), "password": NEW_PASSWORD},
        )
        assert confirmed.status_code == 200, confirmed.text
        # the new password signs in, the old one does not; every old token and session ended
        await api_token(http, editor.email, NEW_PASSWORD)
        wrong = await http.post(
            "/api/auth/token", data={"username": editor.email, "password": PASSWORD}
        )
        assert wrong.status_code == 401
        assert (await http.get("/api/auth/me", headers=old_token)).status_code == 401
        assert not signed_in(await admin_page(http))

        # the link works once
        again = await http.post(
            "/api/auth/password-reset/confirm",
            json={"token": token_of(link), "password": "yet-another-password"},
        )
        assert again.status_code == 400
        assert again.json()["detail"].startswith("token: ")
        used = await http.get(urlsplit(link).path, params={"token": token_of(link)})
        assert used.status_code == 400 and "already used" in used.text


async def test_a_reset_is_written_in_the_history(
    app: FastAPI, users: dict[Role, User], mailbox: Mailbox
) -> None:
    viewer, admin = users[Role.viewer], users[Role.admin]
    async with http_client(app) as http:
        await request_reset(http, viewer.email)
        token = token_of(link_in(mailbox.next()))
        payload = {"token": token, "password": NEW_PASSWORD}
        assert (await http.post("/api/auth/password-reset/confirm", json=payload)).is_success
        admin_token = await api_token(http, admin.email)
        history = await http.get(f"/api/users/{viewer.id}/history", headers=admin_token)
        assert history.status_code == 200, history.text
        latest = history.json()[0]
        assert latest["actor"] == viewer.email and "hashed_password" in latest["changes"]


async def test_expired_forged_and_misused_links_are_refused(
    app: FastAPI,
    users: dict[Role, User],
    mailbox: Mailbox,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    viewer = users[Role.viewer]
    now = [1_800_000_000.0]
    monkeypatch.setattr(recovery, "clock", lambda: now[0])
    async with http_client(app) as http:
        await request_reset(http, viewer.email)
        token = token_of(link_in(mailbox.next()))

        async def confirm(token: str, password: str = NEW_PASSWORD) -> int:
            response = await http.post(
                "/api/auth/password-reset/confirm", json={"token": token, "password": password}
            )
            return response.status_code

        assert await confirm(token, "short") == 422  # the schema's minimum length
        assert await confirm(token[:-2] + ("AA" if token[-2:] != "AA" else "BB")) == 400
        assert await confirm("not-a-token") == 400
        now[0] += settings.password_reset_max_age_s + 1
        assert await confirm(token) == 400  # expired
        now[0] -= 2
        # a password changed meanwhile (here by the admin) voids the link
        admin_token = await api_token(http, users[Role.admin].email)
        changed = await http.patch(
            f"/api/users/{viewer.id}", json={"password": "changed-by-admin"}, headers=admin_token
        )
        assert changed.status_code == 200
        assert await confirm(token) == 400


async def test_an_inactive_user_gets_no_link(
    app: FastAPI, users: dict[Role, User], mailbox: Mailbox
) -> None:
    async with http_client(app) as http:
        admin_token = await api_token(http, users[Role.admin].email)
        url = f"/api/users/{users[Role.viewer].id}"
        assert (await http.patch(url, json={"is_active": False}, headers=admin_token)).is_success
        await request_reset(http, users[Role.viewer].email)
    assert mailbox.empty()


async def test_the_admin_forgot_password_flow(
    app: FastAPI, users: dict[Role, User], mailbox: Mailbox
) -> None:
    editor = users[Role.editor]
    async with http_client(app) as http:
        login = await http.get("/admin/login")
        assert 'id="forgot-password"' in login.text
        page = await http.get("/admin/forgot-password")
        assert page.status_code == 200
        csrf = csrf_token(login.text)
        bad = await http.post("/admin/forgot-password", data={"csrftoken": csrf, "email": "x"})
        assert bad.status_code == 400 and "valid email" in bad.text
        sent = await http.post(
            "/admin/forgot-password", data={"csrftoken": csrf, "email": editor.email}
        )
        assert sent.status_code == 200 and "on its way" in sent.text
        unknown = await http.post(
            "/admin/forgot-password", data={"csrftoken": csrf, "email": "nobody@example.com"}
        )
        assert unknown.text.replace("nobody@example.com", editor.email) == sent.text
        link = link_in(mailbox.next())
        assert mailbox.empty()

        form = await http.get(urlsplit(link).path + "?" + urlsplit(link).query)
        assert form.status_code == 200
        fields = {"csrftoken": csrf, "token": token_of(link), "email": editor.email}
        differ = await http.post(
            "/admin/set-password",
            data={**fields, "password": NEW_PASSWORD, "password_confirm": "something-else"},
        )
        assert differ.status_code == 400 and "differ" in differ.text
        short = await http.post(
            "/admin/set-password", data={**fields, "password": "short", "password_confirm": "short"}
        )
        assert short.status_code == 400 and "at least 8 characters" in short.text
        done = await http.post(
            "/admin/set-password",
            data={**fields, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD},
        )
        assert done.status_code == 303 and "password-set=1" in done.headers["location"]
        notice = await http.get(done.headers["location"])
        assert "Your password is set" in notice.text
        await admin_sign_in(http, editor.email, NEW_PASSWORD)
        assert signed_in(await admin_page(http))


async def test_an_admin_invites_a_user_who_sets_their_password(
    app: FastAPI, users: dict[Role, User], mailbox: Mailbox
) -> None:
    async with http_client(app) as admin_http, http_client(app) as invitee:
        csrf = await admin_sign_in(admin_http, users[Role.admin].email)
        index = await admin_http.get("/admin/")
        assert "/admin/invite-user" in index.text
        form = {"csrftoken": csrf, "email": "New.Hire@Example.com", "full_name": "New Hire"}
        bad_role = await admin_http.post("/admin/invite-user", data={**form, "role": "root"})
        assert bad_role.status_code == 400 and "role:" in bad_role.text
        invited = await admin_http.post("/admin/invite-user", data={**form, "role": "editor"})
        assert invited.status_code == 200, invited.text
        assert "Invitation sent to new.hire@example.com" in invited.text
        again = await admin_http.post("/admin/invite-user", data={**form, "role": "editor"})
        assert again.status_code == 400 and "exists" in again.text
        message = mailbox.next()
        assert message["To"] == "new.hire@example.com" and "invited" in message["Subject"]
        assert mailbox.empty()

        # nobody can sign in before the password is chosen
        refused = await invitee.post(
            "/api/auth/token", data={"username": "new.hire@example.com", "password": ""}
        )
        assert refused.status_code in (401, 422)
        link = link_in(message)
        page = await invitee.get(urlsplit(link).path + "?" + urlsplit(link).query)
        assert page.status_code == 200 and "new.hire@example.com" in page.text
        done = await invitee.post(
            "/admin/set-password",
            data={
                "csrftoken": csrf_token(page.text),
                "token": token_of(link),
                "password": NEW_PASSWORD,
                "password_confirm": NEW_PASSWORD,
            },
        )
        assert done.status_code == 303
        await admin_sign_in(invitee, "new.hire@example.com", NEW_PASSWORD)
        me = await invitee.get("/admin/")
        assert "Signed in as new.hire@example.com (editor)" in me.text


@pytest.mark.parametrize("role", [Role.viewer, Role.editor])
async def test_only_admins_invite(app: FastAPI, users: dict[Role, User], role: Role) -> None:
    async with http_client(app) as http:
        csrf = await admin_sign_in(http, users[role].email)
        assert "/admin/invite-user" not in (await http.get("/admin/")).text
        assert (await http.get("/admin/invite-user")).status_code == 403
        posted = await http.post(
            "/admin/invite-user",
            data={"csrftoken": csrf, "email": "sneaky@example.com", "role": "admin"},
        )
        assert posted.status_code == 403


@asynccontextmanager
async def app_with(
    settings: Settings, engine: AsyncEngine, connection: AsyncConnection
) -> AsyncIterator[FastAPI]:
    """An app for `settings`, joined to the test's transaction as the `app` fixture is."""
    application = create_app(settings, engine=engine)
    async with LifespanManager(application):
        database = application.state.database
        for factory in (database.api_sessions, database.admin_sessions):
            factory.configure(bind=connection, join_transaction_mode="create_savepoint")
        yield application


async def test_a_failed_invitation_mail_says_so(
    settings: Settings,
    engine: AsyncEngine,
    connection: AsyncConnection,
    users: dict[Role, User],
) -> None:
    # a port nobody listens on: the user is created, the page says the mail was not sent
    broken = settings.model_copy(update={"smtp_port": unused_port()})
    async with app_with(broken, engine, connection) as app, http_client(app) as http:
        csrf = await admin_sign_in(http, users[Role.admin].email)
        response = await http.post(
            "/admin/invite-user",
            data={"csrftoken": csrf, "email": "lost@example.com", "role": "viewer"},
        )
        assert response.status_code == 502 and "could not be sent" in response.text
        # the user exists: a reset link (once mail works) lets them in
        admin_token = await api_token(http, users[Role.admin].email)
        found = await http.get("/api/users?email=lost@example.com", headers=admin_token)
        assert [user["email"] for user in found.json()] == ["lost@example.com"]


async def test_without_mail_settings_the_feature_says_it_is_unavailable(
    database_url: str,
    engine: AsyncEngine,
    connection: AsyncConnection,
    users: dict[Role, User],
) -> None:
    plain = Settings(database_url=database_url, environment="test")
    assert not plain.mail_enabled
    async with app_with(plain, engine, connection) as app, http_client(app) as http:
        reset = await http.post("/api/auth/password-reset", json={"email": "admin@example.com"})
        assert reset.status_code == 503
        assert "SMTP_HOST" in reset.json()["detail"]
        login = await http.get("/admin/login")
        assert "forgot-password" not in login.text
        forgot = await http.get("/admin/forgot-password")
        assert forgot.status_code == 503 and "unavailable" in forgot.text
        await admin_sign_in(http, users[Role.admin].email)
        invite = await http.get("/admin/invite-user")
        assert invite.status_code == 503 and "unavailable" in invite.text
