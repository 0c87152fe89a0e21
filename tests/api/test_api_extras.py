"""What the generic contract does not cover: the OpenAPI document, page defaults, query counts
and delete-all on a table that enables it."""

import dataclasses
import re
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.config import Settings
from backend.crud.api import build_api_router
from backend.registry import registry
from tests.api.conftest import Rows

# Routes for callers without a token: signing in, and recovering an account by email.
ANONYMOUS_ROUTES = {
    "/api/auth/token",
    "/api/auth/password-reset",
    "/api/auth/password-reset/confirm",
}


async def test_openapi_names_documents_and_secures_every_generated_route(
    client: AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from `POST /api/auth/token`.",
    }
    operations = [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids))
    for resource in registry:
        expected = {
            f"{resource.name}-{a}" for a in ("list", "get", "create", "replace", "update", "delete")
        }
        assert expected <= set(ids), resource.name
    for path, _method, op in operations:
        if not path.startswith("/api/") or path in ANONYMOUS_ROUTES:
            continue
        assert re.fullmatch(r"[a-z_]+-[a-z-]+", op["operationId"])
        assert op["security"] == [{"bearer": []}], op["operationId"]
        # Any signed-in user may read themselves or get a realtime ticket: no 403.
        assert {"401", "403"} <= set(op["responses"]) or op["operationId"] in (
            "auth-me",
            "realtime-ticket",
        )
        success = next(code for code in op["responses"] if code.startswith("2"))
        content = op["responses"][success]["content"]
        assert (content.get("application/json") or content["text/event-stream"])["schema"]
    listing = spec["paths"]["/api/products"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {
        "skip",
        "limit",
        "sort",
        "q",
        "range",
        "filter",
        "price",
        "category_id",
        "tag_ids",
    } <= names
    limit = next(p for p in listing["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == Settings().page_size_max
    assert set(listing["responses"]["200"]["headers"]) == {"X-Total-Count", "Content-Range"}
    assert "Location" in spec["paths"]["/api/products"]["post"]["responses"]["201"]["headers"]
    assert "409" in spec["paths"]["/api/products/{id}"]["put"]["responses"]
    user_read = spec["components"]["schemas"]["UserRead"]["properties"]
    assert "hashed_password" not in user_read


async def test_the_default_page_size_applies(
    client: AsyncClient, rows: Rows, admin: dict[str, str], settings: Settings
) -> None:
    for _ in range(settings.page_size_default + 1):
        await rows.create("tags")
    response = await client.get("/api/tags", headers=admin)
    assert len(response.json()) == settings.page_size_default
    assert int(response.headers["x-total-count"]) == settings.page_size_default + 1


async def test_lists_load_relations_without_n_plus_1_queries(
    client: AsyncClient, rows: Rows, admin: dict[str, str], engine: AsyncEngine
) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    async def queries_for_list() -> int:
        statements.clear()
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            response = await client.get("/api/products?limit=100", headers=admin)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count)
        assert response.status_code == 200
        return len(
            [
                s
                for s in statements
                if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))
            ]
        )

    await rows.create("products")
    few = await queries_for_list()
    for _ in range(5):
        await rows.create("products")
    assert await queries_for_list() == few
    assert few <= 4  # the caller, the count, the page, the page's tags


async def test_delete_all_when_a_table_enables_it(
    app: FastAPI, rows: Rows, admin: dict[str, str], settings: Settings
) -> None:
    tags = dataclasses.replace(registry.get("tags"), delete_all=True)
    purgeable = FastAPI()
    purgeable.state.settings = settings
    purgeable.state.database = app.state.database
    purgeable.include_router(build_api_router(settings, [tags]))
    for _ in range(3):
        await rows.create("tags")
    transport = ASGITransport(app=purgeable)
    async with AsyncClient(transport=transport, base_url="http://testserver") as purge:
        spec = purgeable.openapi()
        assert spec["paths"]["/api/tags"]["delete"]["operationId"] == "tags-delete-all"
        response = await purge.delete("/api/tags", headers=admin)
        assert response.status_code == 200
        assert response.json() == {"deleted": 3}
        left = await purge.get("/api/tags", headers=admin)
        assert left.json() == [] and left.headers["x-total-count"] == "0"


async def test_like_treats_only_percent_underscore_and_backslash_specially(
    client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    made = await rows.create("products", name="Star*[x]? 50%_off")
    await rows.create("products", name="Star*[x]? 50X-off")
    for pattern, matches in (
        ("Star*[x]?%", 2),  # GLOB's wildcards are plain characters
        ("%50\\%\\_off", 1),  # escaped: a literal % and _
        ("%50_\\_off", 1),
        ("%50__off", 2),
        ("star%", 0),  # like is case-sensitive
    ):
        response = await client.get("/api/products", params={"name__like": pattern}, headers=admin)
        assert response.status_code == 200
        assert int(response.headers["x-total-count"]) == matches, pattern
    ilike = await client.get(
        "/api/products", params={"name__ilike": "STAR*[X]? 50\\%\\_OFF"}, headers=admin
    )
    assert [row["id"] for row in ilike.json()] == [made["id"]]
