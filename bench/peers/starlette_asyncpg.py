"""(b) The practical ceiling: Starlette + asyncpg, hand-written SQL, orjson, no ORM.

Hand-optimised on purpose: one round trip per request (the list's total is a scalar subquery of
the page query), statements prepared once per connection by asyncpg's cache, rows turned into
JSON straight from asyncpg records. Input is still validated (pydantic, in Rust), so the
ceiling does the same work for a client as the other targets.

Run: uvicorn bench.peers.starlette_asyncpg:app --no-access-log
"""

import contextlib
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.peers.common import ProductCreate, ProductUpdate, database_url

COLUMNS = "id, sku, name, description, price, stock, is_active, category_id, created_at, updated_at"
GET_ONE = f"SELECT {COLUMNS} FROM products WHERE id = $1"
LIST_PAGE = (
    f"SELECT (SELECT count(*) FROM products) AS total, {COLUMNS} "
    "FROM products ORDER BY id LIMIT $1 OFFSET $2"
)
LIST_BY_CATEGORY = (
    f"SELECT (SELECT count(*) FROM products WHERE category_id = $1) AS total, {COLUMNS} "
    "FROM products WHERE category_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
)
COUNT_ALL = "SELECT count(*) FROM products"
COUNT_BY_CATEGORY = "SELECT count(*) FROM products WHERE category_id = $1"
INSERT = (
    "INSERT INTO products (sku, name, description, price, stock, is_active, category_id) "
    f"VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
)
ROW_KEYS = [column.strip() for column in COLUMNS.split(",")]
UPDATABLE = ("sku", "name", "description", "price", "stock", "is_active", "category_id")
MAX_LIMIT = 1000


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    body = orjson.dumps(content, default=_default)
    return Response(body, status_code, headers, media_type="application/json")


def row_dict(record: asyncpg.Record) -> dict[str, Any]:
    return {key: record[key] for key in ROW_KEYS}


def error(status_code: int, detail: Any) -> Response:
    return json_response({"detail": detail}, status_code)


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw)  # ValueError -> 422 below
    if not low <= value <= high:
        raise ValueError(name)
    return value


def pool(request: Request) -> asyncpg.Pool:
    found: asyncpg.Pool = request.app.state.pool
    return found


async def get_product(request: Request) -> Response:
    try:
        product_id = int(request.path_params["id"])
    except ValueError:
        return error(422, "id must be an integer")
    record = await pool(request).fetchrow(GET_ONE, product_id)
    if record is None:
        return error(404, "product not found")
    return json_response(row_dict(record))


async def list_products(request: Request) -> Response:
    try:
        skip = int_param(request, "skip", 0, 0, 2**31 - 1)
        limit = int_param(request, "limit", 25, 1, MAX_LIMIT)
        category = request.query_params.get("category_id")
        category_id = int(category) if category is not None else None
    except ValueError as exc:
        return error(422, f"invalid query parameter: {exc}")
    async with pool(request).acquire() as connection:
        if category_id is None:
            records = await connection.fetch(LIST_PAGE, limit, skip)
            total = records[0]["total"] if records else await connection.fetchval(COUNT_ALL)
        else:
            records = await connection.fetch(LIST_BY_CATEGORY, category_id, limit, skip)
            total = (
                records[0]["total"]
                if records
                else await connection.fetchval(COUNT_BY_CATEGORY, category_id)
            )
    return json_response([row_dict(r) for r in records], headers={"X-Total-Count": str(total)})


async def create_product(request: Request) -> Response:
    try:
        item = ProductCreate.model_validate_json(await request.body())
    except ValidationError as exc:
        return error(422, exc.errors(include_url=False, include_context=False))
    try:
        record = await pool(request).fetchrow(
            INSERT,
            item.sku,
            item.name,
            item.description,
            item.price,
            item.stock,
            item.is_active,
            item.category_id,
        )
    except asyncpg.UniqueViolationError:
        return error(409, f"sku {item.sku!r} already exists")
    except asyncpg.ForeignKeyViolationError:
        return error(422, f"category_id {item.category_id} does not exist")
    return json_response(row_dict(record), 201)


async def update_product(request: Request) -> Response:
    try:
        product_id = int(request.path_params["id"])
        changes = ProductUpdate.model_validate_json(await request.body()).model_dump(
            exclude_unset=True
        )
    except ValueError as exc:  # ValidationError is a ValueError
        detail = exc.errors(include_url=False) if isinstance(exc, ValidationError) else str(exc)
        return error(422, detail)
    names = [name for name in UPDATABLE if name in changes]
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    sql = (
        f"UPDATE products SET {assignments}{', ' if names else ''}updated_at = now() "
        f"WHERE id = $1 RETURNING {COLUMNS}"
    )
    try:
        record = await pool(request).fetchrow(sql, product_id, *(changes[n] for n in names))
    except asyncpg.UniqueViolationError:
        return error(409, "sku already exists")
    except asyncpg.ForeignKeyViolationError:
        return error(422, "category_id does not exist")
    if record is None:
        return error(404, "product not found")
    return json_response(row_dict(record))


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    size = int(os.environ.get("BENCH_POOL_SIZE", "20"))
    app.state.pool = await asyncpg.create_pool(database_url(""), min_size=size, max_size=size)
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(
    routes=[
        Route("/api/products", list_products, methods=["GET"]),
        Route("/api/products", create_product, methods=["POST"]),
        Route("/api/products/{id}", get_product, methods=["GET"]),
        Route("/api/products/{id}", update_product, methods=["PATCH"]),
    ],
    lifespan=lifespan,
)
