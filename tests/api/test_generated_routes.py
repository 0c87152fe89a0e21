"""The generated routes as served by `GeneratedRoutes` / `OperationRoute`, end to end over HTTP.

The generated routes skip FastAPI's per-request machinery (backend/crud/operation.py) and, on
PostgreSQL, SQLAlchemy's execution (backend/crud/connection.py). These tests pin what that
must not change: the order of 401 / 403 / 404 / 422, FastAPI's error shapes, FastAPI's routing
for whatever the dict lookup does not serve, compiled statements run with each request's own
values, and a failed write leaving the connection usable.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.auth.passwords import hash_password
from backend.auth.tokens import create_access_token
from backend.config import Settings
from backend.crud.generator import SQLModelCRUDRouter
from backend.crud.operation import GeneratedRoutes
from backend.crud.query import DECIMAL_FILTER_PATTERN, TIME_FILTER_PATTERN
from backend.crud.schemas import NO_NUL_PATTERN
from backend.db import create_engine
from backend.main import create_app
from backend.models import Category, Product, ProductTag, Role, Tag, User
from backend.registry import registry
from backend.writes.history import HISTORY
from tests.api.conftest import Account, Rows

MISSING_ID = 2**31 - 1
OPERATIONS = ("list", "get", "create", "replace", "update", "delete")


def ids(response: Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()]


def total(response: Response) -> int:
    return int(response.headers["X-Total-Count"])


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


# 1. A caller whose role is too low gets 403 before any 404 or 422 ---------------------------


async def test_a_viewer_gets_403_on_users_before_404(
    client: AsyncClient, accounts: dict[Role, Account]
) -> None:
    viewer = accounts[Role.viewer]
    for url in (f"/api/users/{MISSING_ID}", f"/api/users/{viewer.id}"):
        response = await client.get(url, headers=viewer.headers)
        assert response.status_code == 403, (url, response.text)


async def test_a_viewer_gets_403_on_users_for_an_empty_page(
    client: AsyncClient, accounts: dict[Role, Account]
) -> None:
    viewer = accounts[Role.viewer]
    for query in ("email=nobody-at-all@example.com", f"id={MISSING_ID}", "skip=100000"):
        response = await client.get(f"/api/users?{query}", headers=viewer.headers)
        assert response.status_code == 403, (query, response.text)
    # The same list with a page of rows: 403 too (the role read along with the rows).
    listed = await client.get(f"/api/users?email={viewer.email}", headers=viewer.headers)
    assert listed.status_code == 403, listed.text


@pytest.mark.parametrize(
    "query",
    [
        "bogus__gt=1",
        "id=not-a-number",
        "id__nope=1",
        "created_at__gt=yesterday",
        "limit=0",
        "limit=100000000",
        "skip=-1",
        "sort=no_such_field",
        "range=[oops",
        "filter=[1]",
        "limit=0&bogus=1",
    ],
)
async def test_a_viewer_gets_403_on_users_before_422(
    query: str, client: AsyncClient, accounts: dict[Role, Account]
) -> None:
    viewer = accounts[Role.viewer]
    response = await client.get(f"/api/users?{query}", headers=viewer.headers)
    assert response.status_code == 403, response.text
    # The same request from an admin is the 422 (so the 403 above was not a lucky miss).
    admin = await client.get(f"/api/users?{query}", headers=accounts[Role.admin].headers)
    assert admin.status_code == 422, admin.text


async def test_a_viewer_gets_403_on_users_for_a_bad_path_id(
    client: AsyncClient, accounts: dict[Role, Account]
) -> None:
    viewer = accounts[Role.viewer]
    for item in ("abc", str(2**40)):
        response = await client.get(f"/api/users/{item}", headers=viewer.headers)
        assert response.status_code == 403, (item, response.text)


# 2. A deactivated or deleted caller gets 401, whatever the rows ------------------------------


@pytest.mark.parametrize("gone", ["deactivated", "deleted"])
async def test_a_deactivated_or_deleted_caller_gets_401_on_every_read(
    gone: str,
    client: AsyncClient,
    accounts: dict[Role, Account],
    rows: Rows,
    connection: AsyncConnection,
) -> None:
    product = await rows.create("products")
    caller = accounts[Role.editor]
    reads = [
        f"/api/products/{product['id']}",  # one row that exists
        f"/api/products/{MISSING_ID}",  # one that does not
        f"/api/products?id={product['id']}",  # a page with rows
        f"/api/products?id={MISSING_ID}",  # an empty page
        f"/api/products?skip={2**40}",  # past the end (counted separately)
        "/api/products",  # unfiltered
    ]
    for url in reads:  # first as the active caller: what each read gives then
        response = await client.get(url, headers=caller.headers)
        assert response.status_code in (200, 404), (url, response.text)
    users = User.__table__  # type: ignore[attr-defined]
    if gone == "deactivated":
        await connection.execute(
            update(users).where(users.c.id == caller.id).values(is_active=False)
        )
    else:
        await connection.execute(delete(users).where(users.c.id == caller.id))
    for url in [*reads, "/api/products?limit=0", "/api/products?bogus=1", "/api/products/abc"]:
        response = await client.get(url, headers=caller.headers)
        assert response.status_code == 401, (url, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
    estimated = await client.get(
        "/api/products", headers={**caller.headers, "Prefer": "count=estimated"}
    )
    assert estimated.status_code == 401, estimated.text
    written = await client.patch(
        f"/api/products/{product['id']}", json={"name": "x"}, headers=caller.headers
    )
    assert written.status_code == 401, written.text


# 3. 401 before 422, and FastAPI's 422 shapes ------------------------------------------------


async def test_no_password_is_hashed_for_a_caller_who_may_not_write(
    client: AsyncClient, accounts: dict[Role, Account], monkeypatch: pytest.MonkeyPatch
) -> None:
    """argon2 is slow on purpose: the role is checked before any hashing, not after."""
    hashed: list[str] = []

    def counting(password: str) -> str:
        hashed.append(password)
        return hash_password(password)

    monkeypatch.setattr("backend.auth.passwords.hash_password", counting)
    admin_id = accounts[Role.admin].id
    body = {"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "password": "a-long-password"}
    for role in (Role.viewer, Role.editor):
        headers = accounts[role].headers
        created = await client.post("/api/users", json=body, headers=headers)
        assert created.status_code == 403, created.text
        changed = await client.patch(
            f"/api/users/{admin_id}", json={"password": "another-password"}, headers=headers
        )
        assert changed.status_code == 403, changed.text
    assert hashed == []
    created = await client.post("/api/users", json=body, headers=accounts[Role.admin].headers)
    assert created.status_code == 201, created.text
    assert hashed == ["a-long-password"]


async def test_anonymous_invalid_body_is_401_not_422(client: AsyncClient) -> None:
    for body in ({}, {"price": "-1"}):
        response = await client.post("/api/products", json=body)
        assert response.status_code == 401, response.text
    garbled = await client.post(
        "/api/products", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert garbled.status_code == 401, garbled.text
    patched = await client.patch(f"/api/products/{MISSING_ID}", json={"price": "-1"})
    assert patched.status_code == 401, patched.text
    bad_id = await client.get("/api/products/abc")
    assert bad_id.status_code == 401, bad_id.text


async def test_an_editor_invalid_body_is_a_fastapi_shaped_422(
    client: AsyncClient, editor: dict[str, str], rows: Rows
) -> None:
    body = await rows.payload("products")
    response = await client.post("/api/products", json={**body, "price": "-1"}, headers=editor)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["loc"][0] == "body"
    assert ["body", "price"] in [error["loc"] for error in detail]
    assert {"type", "loc", "msg"} <= detail[0].keys()
    empty = await client.post("/api/products", json={}, headers=editor)
    assert empty.status_code == 422
    assert all(error["loc"][0] == "body" for error in empty.json()["detail"])


async def test_invalid_json_is_a_json_invalid_422(
    client: AsyncClient, editor: dict[str, str]
) -> None:
    response = await client.post(
        "/api/products", content=b'{"sku": ', headers={**editor, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert error["loc"][0] == "body"


async def test_a_non_integer_path_id_is_a_422_at_path_id(
    client: AsyncClient, viewer: dict[str, str]
) -> None:
    response = await client.get("/api/products/abc", headers=viewer)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["path", "id"]


@pytest.fixture
def plain_fastapi(settings: Settings) -> FastAPI:
    """The products endpoints under FastAPI's own `APIRoute`: FastAPI validates every request
    (and answers its 422 before the endpoint, so no database is needed for invalid ones)."""
    reference = FastAPI()
    for route in SQLModelCRUDRouter(registry.get("products"), settings).routes:
        reference.add_api_route(
            "/api" + route.path, route.endpoint, methods=list(route.methods), name=route.name
        )
    return reference


JSON = {"Content-Type": "application/json"}
INVALID_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/products", {"json": {}}),
    ("POST", "/api/products", {"json": {"sku": 1, "stock": []}}),
    ("POST", "/api/products", {"json": {"sku": "a", "no_such_field": 1}}),
    ("POST", "/api/products", {"json": []}),
    ("POST", "/api/products", {"json": None}),
    ("POST", "/api/products", {"content": b'{"sku": ', "headers": JSON}),
    ("POST", "/api/products", {"content": b"", "headers": JSON}),
    ("POST", "/api/products", {"content": b"\xff\xfe{", "headers": JSON}),  # not UTF-8: 400
    ("POST", "/api/products", {"content": b"[" * 100_000, "headers": JSON}),  # too deep: 400
    ("POST", "/api/products", {"content": b'\xef\xbb\xbf{"sku": 1}', "headers": JSON}),  # BOM
    (
        "POST",
        "/api/products",
        {"content": b'{"sku": 1}', "headers": {"Content-Type": "application/json; charset=utf-8"}},
    ),
    ("POST", "/api/products", {"content": b'{"sku": "a"}'}),  # no content type
    (
        "POST",
        "/api/products",
        {"content": b'{"sku": "a"}', "headers": {"Content-Type": "text/plain"}},
    ),
    (
        "POST",
        "/api/products",
        {"content": b'{"sku": "a"}', "headers": {"Content-Type": "application/vnd.api+json"}},
    ),
    ("GET", "/api/products/abc", {}),
    ("GET", f"/api/products/{2**40}", {}),
    ("GET", f"/api/products/{-(2**40)}", {}),
    ("GET", "/api/products?limit=0&skip=-1", {}),
    ("GET", "/api/products?limit=abc", {}),
    ("GET", "/api/products?limit=1&limit=0", {}),
    ("PATCH", "/api/products/abc", {"json": {"price": "-1"}}),
    ("PATCH", "/api/products/abc", {"content": b"[", "headers": JSON}),
    ("PUT", "/api/products/1", {"json": {}}),
    ("DELETE", "/api/products/abc", {}),
]


@pytest.mark.parametrize(("method", "url", "send"), INVALID_REQUESTS)
async def test_4xx_bodies_are_fastapis_field_for_field(
    method: str,
    url: str,
    send: dict[str, Any],
    client: AsyncClient,
    editor: dict[str, str],
    plain_fastapi: FastAPI,
) -> None:
    headers = {**editor, **send.get("headers", {})}
    served = await client.request(method, url, **{**send, "headers": headers})
    transport = ASGITransport(app=plain_fastapi)
    async with AsyncClient(transport=transport, base_url="http://testserver") as reference:
        expected = await reference.request(method, url, **send)
    assert expected.status_code in (400, 422), expected.text  # the case is an invalid request
    assert served.status_code == expected.status_code, served.text
    assert served.json() == expected.json()


# 4. What the dict lookup does not serve goes to FastAPI's routing ----------------------------


@pytest.fixture
def without_generated_routes(
    settings: Settings, engine: AsyncEngine, connection: AsyncConnection
) -> FastAPI:
    """The app with FastAPI's routing alone: `GeneratedRoutes` taken out."""
    application = create_app(settings)
    routes = application.router.routes
    routes[:] = [route for route in routes if not isinstance(route, GeneratedRoutes)]
    database = application.state.database
    database.start(engine)
    for factory in (database.api_sessions, database.admin_sessions):
        factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    return application


async def test_routing_answers_as_fastapis_own(
    client: AsyncClient,
    viewer: dict[str, str],
    editor: dict[str, str],
    rows: Rows,
    without_generated_routes: FastAPI,
) -> None:
    product = await rows.create("products")
    item = f"/api/products/{product['id']}"
    requests = [
        ("GET", "/api/products/", viewer),
        ("GET", f"{item}/", viewer),
        ("POST", "/api/products/", editor),
        ("GET", f"{item}/extra", viewer),
        ("GET", "/api/products//", viewer),
        ("GET", "/api/products/%20", viewer),
        ("GET", "/api/no-such-resource", viewer),
        ("GET", "/api/no-such-resource/1", viewer),
        # A method the path does not answer, and OPTIONS, differ by design: our `Allow` names
        # every method of the path (test_options_names_every_method_and_a_405_too).
        ("GET", "/api/products", viewer),
        ("GET", item, viewer),
        ("GET", "/api/products/abc", viewer),
        ("GET", "/api/PRODUCTS", viewer),
        ("GET", "/api/auth/me", viewer),
        ("GET", "/healthz", {}),
    ]
    transport = ASGITransport(app=without_generated_routes)
    async with AsyncClient(transport=transport, base_url="http://testserver") as reference:
        for method, url, headers in requests:
            served = await client.request(method, url, headers=headers)
            expected = await reference.request(method, url, headers=headers)
            assert served.status_code == expected.status_code, (method, url, served.text)
            for header in ("allow", "location", "content-type", "x-total-count"):
                assert served.headers.get(header) == expected.headers.get(header), (
                    method,
                    url,
                    header,
                )
            assert served.content == expected.content, (method, url)


async def test_another_method_on_the_collection_is_405_with_allow(
    client: AsyncClient, editor: dict[str, str]
) -> None:
    response = await client.patch("/api/products", json={}, headers=editor)
    assert response.status_code == 405, response.text
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    # Every method of the path (FastAPI's own Allow names only the first route's: GET).
    assert allowed == {"GET", "POST", "OPTIONS"}, allowed


async def test_a_trailing_slash_redirects_as_fastapi_does(
    client: AsyncClient, viewer: dict[str, str], rows: Rows
) -> None:
    product = await rows.create("products")
    item = f"/api/products/{product['id']}"
    for url, target in (
        (f"/api/products/?id={product['id']}", f"/api/products?id={product['id']}"),
        (f"{item}/", item),
    ):
        response = await client.get(url, headers=viewer)
        assert response.status_code == 307, response.text
        assert response.headers["location"] == f"http://testserver{target}"
        followed = await client.get(url, headers=viewer, follow_redirects=True)
        assert followed.status_code == 200, followed.text
        assert str(followed.url) == f"http://testserver{target}"
        assert followed.json() == (await client.get(target, headers=viewer)).json()
    listed = await client.get(
        f"/api/products/?id={product['id']}", headers=viewer, follow_redirects=True
    )
    assert ids(listed) == [product["id"]]


async def test_options_names_every_method_and_a_405_too(
    client: AsyncClient, viewer: dict[str, str], rows: Rows
) -> None:
    """OPTIONS is 204 with `Allow`; any other unlisted method (HEAD: FastAPI adds none to a
    GET route) is 405 with the same `Allow`: every method of the path, not only the first
    route's (what FastAPI's own routing answers)."""
    product = await rows.create("products")
    item = "GET, DELETE, OPTIONS, PATCH, PUT"
    for url, allowed in (
        ("/api/products", "GET, OPTIONS, POST"),
        (f"/api/products/{product['id']}", item),
        ("/api/products/abc", item),
    ):
        options = await client.options(url, headers=viewer)
        assert options.status_code == 204, (url, options.text)
        assert sorted(options.headers["allow"].split(", ")) == sorted(allowed.split(", "))
        for method in ("HEAD", "TRACE", "CONNECT") + (("PUT",) if "POST" in allowed else ()):
            response = await client.request(method, url, headers=viewer)
            assert response.status_code == 405, (method, url, response.status_code)
            assert response.headers["allow"] == options.headers["allow"], (method, url)


async def test_a_json_body_takes_each_type_only_in_its_json_form(
    client: AsyncClient, editor: dict[str, str], rows: Rows
) -> None:
    """Bodies are validated as JSON, strictly: what the OpenAPI document forbids is a 422
    (FastAPI's lax Python validation takes `false` as 0, `"5"` as 5, `0` as a datetime)."""
    product = await rows.create("products")
    url = f"/api/products/{product['id']}"
    for field, value in (
        ("stock", False),
        ("stock", "5"),
        ("stock", 5.5),
        ("is_active", 1),
        ("name", 5),
        ("price", 12.5),  # a decimal is text: "12.50"
        ("price", 12),
        ("price", "1e3"),
        ("price", "-1"),
        ("price", " 12.50"),
        ("price", "123456789.00"),
        ("price", "1.234"),
    ):
        response = await client.patch(url, json={field: value}, headers=editor)
        assert response.status_code == 422, (field, value, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", field], (field, value)
    replaced = await client.put(url, json={**product, "created_at": 0}, headers=editor)
    assert replaced.status_code == 422 and replaced.json()["detail"][0]["loc"] == [
        "body",
        "created_at",
    ]
    whole = await client.patch(url, json={"stock": 5.0}, headers=editor)  # JSON Schema: 5
    assert whole.status_code == 200 and whole.json()["stock"] == 5, whole.text
    for value in ("12.50", "0", "99999999.99", "007.5"):
        patched = await client.patch(url, json={"price": value}, headers=editor)
        assert patched.status_code == 200, (value, patched.text)
        assert Decimal(patched.json()["price"]) == Decimal(value)


async def test_a_filter_takes_each_type_only_as_the_document_says(
    client: AsyncClient, viewer: dict[str, str], rows: Rows
) -> None:
    """A list's field filters are what the OpenAPI document says: text without NUL, a
    datetime as ISO 8601 text (pydantic read `created_at=0` as 1970), a decimal as the body's
    decimal text (no exponent, no spaces)."""
    product = await rows.create("products")
    for parameter, value in (
        ("name", "a\x00b"),
        ("created_at", "0"),
        ("created_at__gt", "1.5"),
        ("created_at__lt", "86400"),
        ("price", "1e3"),
        ("price__gt", " 12.50"),
        ("price__lt", "+1"),
        ("price", "NaN"),
        ("price__in", "1,2e1"),
    ):
        response = await client.get("/api/products", params={parameter: value}, headers=viewer)
        assert response.status_code == 422, (parameter, value, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", parameter], (parameter, value)
    for value in ("0", "-1", "12.5", "99999999.99", "1.234"):
        response = await client.get("/api/products", params={"price__gt": value}, headers=viewer)
        assert response.status_code == 200, (value, response.text)
    response = await client.get(
        "/api/products",
        params={"id": product["id"], "created_at__lte": product["created_at"]},
        headers=viewer,
    )
    assert ids(response) == [product["id"]]
    document = (await client.get("/openapi.json")).json()
    listed = {
        parameter["name"]: parameter["schema"]
        for parameter in document["paths"]["/api/products"]["get"]["parameters"]
    }
    assert listed["name"]["pattern"] == NO_NUL_PATTERN
    assert listed["created_at"] == {"type": "string", "format": "date-time"}
    assert listed["price"]["type"] == "string"
    assert listed["price"]["pattern"] == DECIMAL_FILTER_PATTERN


async def test_a_time_filter_is_a_time_of_day_without_a_timezone(
    client: AsyncClient, viewer: dict[str, str]
) -> None:
    """JSON Schema's `time` is RFC 3339's full-time, offset required, which the server refuses:
    the document says `partial-time` with the text it takes."""
    for value, status in (("09:30:00", 200), ("23:59:59.5", 200), ("09:30:00Z", 422)):
        response = await client.get("/api/fx_specimens", params={"opens_at": value}, headers=viewer)
        assert response.status_code == status, (value, response.text)
    for value in ("09:30", "9:30:00", "09:30:00+01:00", "0"):
        response = await client.get(
            "/api/fx_specimens", params={"opens_at__gt": value}, headers=viewer
        )
        assert response.status_code == 422, (value, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", "opens_at__gt"], value
    document = (await client.get("/openapi.json")).json()
    listed = {
        parameter["name"]: parameter["schema"]
        for parameter in document["paths"]["/api/fx_specimens"]["get"]["parameters"]
    }
    assert listed["opens_at"] == {
        "type": "string",
        "format": "partial-time",
        "pattern": TIME_FILTER_PATTERN,
    }


async def test_a_longer_path_is_404(client: AsyncClient, viewer: dict[str, str]) -> None:
    for url in ("/api/products/1/extra", "/api/no-such-resource", "/api/no-such-resource/1"):
        response = await client.get(url, headers=viewer)
        assert response.status_code == 404, (url, response.text)
        assert response.json() == {"detail": "Not Found"}


async def test_url_path_for_and_the_openapi_document(app: FastAPI, client: AsyncClient) -> None:
    assert app.url_path_for("products-get", id=5) == "/api/products/5"
    assert app.url_path_for("products-list") == "/api/products"
    document = (await client.get("/openapi.json")).json()
    assert "bearer" in document["components"]["securitySchemes"]
    operations = {
        operation["operationId"]: operation
        for path in document["paths"].values()
        for operation in path.values()
    }
    for action in OPERATIONS:
        operation = operations[f"products-{action}"]
        assert {"bearer": []} in operation["security"], action
    assert document["paths"]["/api/products/{id}"]["get"]["operationId"] == "products-get"
    assert document["paths"]["/api/products"]["post"]["operationId"] == "products-create"


# 5. A statement compiled once runs with each request's own values ---------------------------


async def test_same_shape_filters_use_their_own_values(
    client: AsyncClient, viewer: dict[str, str], rows: Rows
) -> None:
    first = await rows.create("products")
    second = await rows.create("products")
    assert first["category_id"] != second["category_id"]
    for _ in range(2):  # and again, from the cache
        for product in (first, second, first):
            response = await client.get(
                f"/api/products?category_id={product['category_id']}", headers=viewer
            )
            assert ids(response) == [product["id"]]
            assert total(response) == 1
            assert response.headers["content-range"] == "products 0-0/1"


async def test_in_lists_of_different_lengths_use_their_own_values(
    client: AsyncClient, viewer: dict[str, str], rows: Rows
) -> None:
    made = [(await rows.create("products"))["id"] for _ in range(4)]
    for chosen in (made[:2], made[3:], made[1:], made[2:], made[:2], [MISSING_ID], made):
        query = ",".join(map(str, chosen))
        response = await client.get(f"/api/products?id__in={query}&sort=id", headers=viewer)
        expected = sorted(i for i in chosen if i in made)
        assert ids(response) == expected, chosen
        assert total(response) == len(expected)


async def test_pages_of_the_same_shape_use_their_own_limit_and_skip(
    client: AsyncClient, viewer: dict[str, str], rows: Rows
) -> None:
    made = [(await rows.create("products"))["id"] for _ in range(3)]
    query = "id__in=" + ",".join(map(str, made)) + "&sort=id"
    for skip, limit in ((0, 1), (1, 2), (0, 3), (2, 1), (0, 1)):
        response = await client.get(
            f"/api/products?{query}&skip={skip}&limit={limit}", headers=viewer
        )
        assert ids(response) == made[skip : skip + limit], (skip, limit)
        assert total(response) == 3


async def test_single_field_patches_refresh_updated_at_and_keep_the_rest(
    client: AsyncClient, editor: dict[str, str], rows: Rows
) -> None:
    product = await rows.create("products")
    other = await rows.create("products")
    url = f"/api/products/{product['id']}"

    await asyncio.sleep(0.01)  # updated_at has microseconds: make the next one differ surely
    priced = await client.patch(url, json={"price": "12.34"}, headers=editor)
    assert priced.status_code == 200, priced.text
    after_price = priced.json()
    assert Decimal(after_price["price"]) == Decimal("12.34")
    assert when(after_price["updated_at"]) > when(product["updated_at"])
    kept = {"price", "updated_at"}
    assert {k: v for k, v in after_price.items() if k not in kept} == {
        k: v for k, v in product.items() if k not in kept
    }

    await asyncio.sleep(0.01)
    named = await client.patch(url, json={"name": "Renamed lamp"}, headers=editor)
    assert named.status_code == 200, named.text
    after_name = named.json()
    assert after_name["name"] == "Renamed lamp"
    assert Decimal(after_name["price"]) == Decimal("12.34")
    assert when(after_name["updated_at"]) > when(after_price["updated_at"])
    kept = {"name", "updated_at"}
    assert {k: v for k, v in after_name.items() if k not in kept} == {
        k: v for k, v in after_price.items() if k not in kept
    }

    # The same statement shape again, for another row, with other values.
    await asyncio.sleep(0.01)
    again = await client.patch(
        f"/api/products/{other['id']}", json={"price": "56.78"}, headers=editor
    )
    assert again.status_code == 200, again.text
    assert Decimal(again.json()["price"]) == Decimal("56.78")
    assert again.json()["name"] == other["name"]
    assert when(again.json()["updated_at"]) > when(after_name["updated_at"])
    fetched = await client.get(url, headers=editor)
    assert fetched.json() == after_name


# 6. A failed write leaves the connection usable ---------------------------------------------


async def test_a_conflict_does_not_poison_later_requests(
    client: AsyncClient, editor: dict[str, str], rows: Rows
) -> None:
    product = await rows.create("products")
    tag = await rows.create("tags")
    failing = [
        # A product and its links are written in one transaction; a tag in one statement.
        ("products", await rows.payload("products", sku=product["sku"])),
        ("tags", await rows.payload("tags", name=tag["name"])),
        # A foreign key to no row: the routes query again after the failure, to name it.
        ("products", await rows.payload("products", category_id=MISSING_ID)),
    ]
    for name, body in failing:
        refused = await client.post(f"/api/{name}", json=body, headers=editor)
        assert refused.status_code == 409, refused.text
        valid = await rows.payload(name)
        created = await client.post(f"/api/{name}", json=valid, headers=editor)
        assert created.status_code == 201, created.text
        key = "sku" if name == "products" else "name"
        listed = await client.get(f"/api/{name}?{key}={valid[key]}", headers=editor)
        assert ids(listed) == [created.json()["id"]]
        assert total(listed) == 1
        fetched = await client.get(f"/api/{name}/{created.json()['id']}", headers=editor)
        assert fetched.json() == created.json()
    url = f"/api/tags/{tag['id']}"
    renamed = {"name": f"{tag['name']}-2"}
    for change in (client.patch, client.put):
        other = await rows.create("tags")
        clash = await change(url, json={"name": other["name"]}, headers=editor)
        assert clash.status_code == 409, clash.text
        after = await change(url, json=renamed, headers=editor)
        assert after.status_code == 200, after.text
        assert after.json()["name"] == renamed["name"]
        renamed = {"name": f"{tag['name']}-3"}


@pytest.fixture
async def one_connection_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose pool holds one connection: every request reuses the same one."""
    engine = create_engine(Settings(database_url=database_url, environment="test", db_pool_size=1))
    yield engine
    await engine.dispose()


async def test_a_conflict_does_not_poison_the_pooled_connection(
    database_url: str, one_connection_engine: AsyncEngine, password_hash: str
) -> None:
    """As in production: no test transaction, the app's one pooled connection, committed rows
    (removed again at the end)."""
    settings = Settings(database_url=database_url, environment="test", db_pool_size=1)
    suffix = uuid.uuid4().hex[:12]
    users, categories = User.__table__, Category.__table__  # type: ignore[attr-defined]
    products, tags = Product.__table__, Tag.__table__  # type: ignore[attr-defined]
    links = ProductTag.__table__  # type: ignore[attr-defined]
    async with one_connection_engine.begin() as connection:
        user_id = (
            await connection.execute(
                insert(users)
                .values(
                    email=f"pooled-{suffix}@example.com",
                    hashed_password=password_hash,
                    role="editor",
                    is_active=True,
                )
                .returning(users.c.id)
            )
        ).scalar_one()
        category_id = (
            await connection.execute(
                insert(categories)
                .values(name="Pooled", slug=f"pooled-{suffix}")
                .returning(categories.c.id)
            )
        ).scalar_one()
    headers = {"Authorization": f"Bearer {create_access_token(user_id, settings)}"}
    app = create_app(settings, engine=one_connection_engine)
    transport = ASGITransport(app=app)

    def product(sku: str, **extra: Any) -> dict[str, Any]:
        return {"sku": sku, "name": "Pooled", "price": "1.00", "category_id": category_id, **extra}

    try:
        async with LifespanManager(app), AsyncClient(transport=transport, base_url="http://t") as c:
            tag = await c.post("/api/tags", json={"name": f"pooled-{suffix}"}, headers=headers)
            assert tag.status_code == 201, tag.text
            first = await c.post("/api/products", json=product(f"A-{suffix}"), headers=headers)
            assert first.status_code == 201, first.text
            tag_id = tag.json()["id"]
            for name, body in (
                ("tags", {"name": f"pooled-{suffix}"}),  # one statement, autocommitted
                ("products", product(f"A-{suffix}", tag_ids=[tag_id])),  # in a transaction
            ):
                refused = await c.post(f"/api/{name}", json=body, headers=headers)
                assert refused.status_code == 409, refused.text
                later = await c.get(f"/api/products?category_id={category_id}", headers=headers)
                assert ids(later) == [first.json()["id"]]
            second = await c.post(
                "/api/products",
                json=product(f"B-{suffix}", tag_ids=[tag_id]),
                headers=headers,
            )
            assert second.status_code == 201, second.text
            listed = await c.get(
                f"/api/products?category_id={category_id}&sort=id", headers=headers
            )
            assert ids(listed) == [first.json()["id"], second.json()["id"]]
            assert listed.json()[1]["tag_ids"] == [tag_id]
            tags_named = await c.get(f"/api/tags?name=pooled-{suffix}", headers=headers)
            assert ids(tags_named) == [tag_id]
    finally:
        async with one_connection_engine.begin() as connection:
            owned = products.c.category_id == category_id
            product_ids = [r[0] for r in await connection.execute(products.select().where(owned))]
            await connection.execute(delete(links).where(links.c.product_id.in_(product_ids)))
            await connection.execute(delete(products).where(owned))
            await connection.execute(delete(tags).where(tags.c.name == f"pooled-{suffix}"))
            await connection.execute(delete(categories).where(categories.c.id == category_id))
            await connection.execute(delete(users).where(users.c.id == user_id))
            # and the history of what it wrote, which would otherwise show in the history of
            # a later test's row given the same id
            await connection.execute(delete(HISTORY).where(HISTORY.c.actor_id == user_id))
