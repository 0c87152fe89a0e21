"""While the database is down (or busy), every admin page - sign-in and form posts included -
is a readable 503 page in the admin's look with a way back, never a 500, SQL or a traceback.

A session cookie is signed by SECRET_KEY alone, so a client signed in to an app over a working
database keeps its session on a second app whose database cannot be reached: the same pages,
with the database gone.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy.engine import make_url

from backend import schema
from backend.auth.users import upsert_user
from backend.config import Settings
from backend.main import create_app
from backend.models import Role
from tests.admin.conftest import csrf_token, sign_in
from tests.admin.live import PASSWORD

SECRET = "dbfail-admin-test-secret-key-0123456789"
EMAIL = "admin@example.com"
LEAKS = ("Traceback", "SELECT", "asyncpg", "sqlalchemy", "sqlite3", "OperationalError")


@asynccontextmanager
async def admin_http(database_url: str, **cookies: str) -> AsyncIterator[AsyncClient]:
    settings = Settings(database_url=database_url, environment="test", secret_key=SECRET)
    app = create_app(settings)
    async with LifespanManager(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(
            transport=transport, base_url="http://testserver", cookies=cookies
        ) as http:
            yield http


def assert_unavailable_page(response: Response) -> None:
    assert response.status_code == 503, response.text[:2000]
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "The database is unavailable right now." in page
    assert 'id="error-home"' in page  # a way back
    assert "tabler" in page  # the admin's own stylesheet: its look
    for leak in LEAKS:
        assert leak not in page


def _unreachable(backend: str, database_url: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        folder = tmp_path / "a-folder-not-a-database"
        folder.mkdir(exist_ok=True)
        return f"sqlite+aiosqlite:///{folder}"
    return make_url(database_url).set(port=1).render_as_string(hide_password=False)


async def test_every_admin_page_is_a_503_page_while_the_database_is_down(
    backend: str, empty_database_url: str, tmp_path: Path
) -> None:
    url = empty_database_url
    await schema.upgrade(url)
    settings = Settings(database_url=url, environment="test", secret_key=SECRET)
    await upsert_user(settings, email=EMAIL, password=PASSWORD, role=Role.admin)
    async with admin_http(url) as http:
        assert (await sign_in(http, EMAIL)).status_code == 302
        created = await http.post(
            "/admin/category/create",
            data={
                "csrftoken": csrf_token((await http.get("/admin/")).text),
                "name": "Tools",
                "slug": "tools",
            },
        )
        assert created.status_code == 302, created.text
        token = csrf_token((await http.get("/admin/")).text)
        cookies = dict(http.cookies)

    async with admin_http(_unreachable(backend, url, tmp_path), **cookies) as http:
        for page in (
            "/admin/",
            "/admin/category/list",
            "/admin/category/list?search=tools",
            "/admin/category/details/1",
            "/admin/category/create",
            "/admin/category/edit/1",
            "/admin/category/export/csv",
            "/admin/product/ajax/lookup?name=category&term=t",
            "/admin/history",
        ):
            response = await http.get(page)
            assert_unavailable_page(response)
            assert 'id="error-retry"' in response.text  # a GET may be tried again
        form = {"csrftoken": token, "name": "Tools", "slug": "tools"}
        assert_unavailable_page(await http.post("/admin/category/create", data=form))
        assert_unavailable_page(await http.post("/admin/category/edit/1", data=form))
        deleted = await http.delete("/admin/category/delete?pks=1", headers={"x-csrftoken": token})
        assert_unavailable_page(deleted)

    async with admin_http(_unreachable(backend, url, tmp_path)) as http:  # signed out
        login = await http.get("/admin/login")
        assert login.status_code == 200  # the form needs no database
        signed = await http.post(
            "/admin/login",
            data={"csrftoken": csrf_token(login.text), "username": EMAIL, "password": PASSWORD},
        )
        assert_unavailable_page(signed)
        assert 'id="error-retry"' not in signed.text  # a form post: back, not re-sent

    async with admin_http(url, **cookies) as http:  # the database is back: so is the admin
        assert (await http.get("/admin/category/list")).status_code == 200


async def test_an_admin_page_over_a_locked_table_is_a_503_page(
    backend: str, empty_database_url: str
) -> None:
    if backend != "postgresql":
        pytest.skip("PostgreSQL's statement_timeout")
    url = empty_database_url
    await schema.upgrade(url)
    settings = Settings(database_url=url, environment="test", secret_key=SECRET)
    await upsert_user(settings, email=EMAIL, password=PASSWORD, role=Role.admin)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    holder = await asyncpg.connect(dsn)
    try:
        await holder.execute(
            f"ALTER DATABASE \"{make_url(url).database}\" SET statement_timeout = '150ms'"
        )
        async with admin_http(url) as http:
            assert (await sign_in(http, EMAIL)).status_code == 302
            async with holder.transaction():
                await holder.execute("LOCK TABLE categories IN ACCESS EXCLUSIVE MODE")
                assert_unavailable_page(await http.get("/admin/category/list"))
            assert (await http.get("/admin/category/list")).status_code == 200
    finally:
        await holder.close()
