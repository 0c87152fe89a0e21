"""The `/api` tree: sign-in routes and one generated router per registered table.

`install_api(app, settings)` mounts it with what a browser frontend needs around it: CORS
(exposing the paging headers), and error handlers so that no database error becomes a 500.
"""

import logging
from collections.abc import Iterable

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from backend.auth.routes import router as auth_router
from backend.config import Settings
from backend.crud.errors import is_data_exception
from backend.crud.generator import resource_routers
from backend.crud.history_routes import history_router
from backend.crud.operation import GeneratedRoutes, OperationRoute
from backend.crud.validation_errors import validation_error_response
from backend.db_failures import RETRY_AFTER_S, classify, describe
from backend.integrity import describe_integrity_error
from backend.ratelimit import install_rate_limits
from backend.registry import ResourceOptions, registry

logger = logging.getLogger(__name__)

API_PREFIX = "/api"
EXPOSED_HEADERS = ["X-Total-Count", "Content-Range", "Location", "Preference-Applied"]
EXPOSED_HEADERS += ["Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]


def build_api_router(
    settings: Settings, resources: Iterable[ResourceOptions] = registry
) -> APIRouter:
    """`/api/auth/...` and `/api/<resource>` for every resource."""
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(auth_router)
    api.include_router(history_router(registry, settings))
    for router in resource_routers(resources, settings):
        api.include_router(router)
    return api


def install_api(app: FastAPI, settings: Settings) -> None:
    """Mount the API on `app`, with CORS and the database error handlers."""
    # Each router straight on the app (the same paths as `build_api_router`): FastAPI matches
    # a request by walking included routers level by level, and every level costs.
    app.include_router(auth_router, prefix=API_PREFIX)
    app.include_router(history_router(registry, settings), prefix=API_PREFIX)
    generated = GeneratedRoutes()
    for router in resource_routers(registry, settings):
        app.include_router(router, prefix=API_PREFIX)
        for route in router.routes:
            if isinstance(route, OperationRoute):
                generated.add(API_PREFIX, route)
    app.router.routes.insert(0, generated)  # found first, by a dict lookup
    install_rate_limits(app, settings)  # inside CORS: a browser can read a 429
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Accept", "Range", "Prefer"],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )
    app.add_exception_handler(RequestValidationError, validation_error_response)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DBAPIError, _data_error)
    # Every pooled connection stayed busy for DB_POOL_TIMEOUT_S.
    app.add_exception_handler(PoolTimeoutError, _database_unavailable)
    # A socket error the driver did not wrap (backend.db wraps those of connecting).
    app.add_exception_handler(ConnectionError, _database_unavailable)


async def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    """Last line of defence: the routes map these themselves, naming the field."""
    assert isinstance(exc, IntegrityError)
    violation = describe_integrity_error(exc)
    loc = ["body", *violation.fields]
    return JSONResponse(
        {"detail": [{"loc": loc, "msg": violation.message(), "type": violation.kind}]},
        status_code=status.HTTP_409_CONFLICT,
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The database could not be reached, refused a connection, dropped it, timed out or ran
    out of connections: retry shortly.

    The pool has already discarded the broken connection (and any other made before it), so
    the retry gets a fresh one.
    """
    logger.warning(
        "%s %s: database unavailable: %s", request.method, request.url.path, describe(exc)
    )
    return JSONResponse(
        {"detail": "The database is unavailable; retry shortly."},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _transaction_conflict(request: Request, exc: Exception) -> JSONResponse:
    """The transaction lost to a concurrent one (serialization failure, deadlock victim) and
    was rolled back: nothing was written, the same request may be sent again now."""
    logger.info("%s %s: %s", request.method, request.url.path, describe(exc))
    return JSONResponse(
        {"detail": "The change conflicted with a concurrent one and was not made; retry it."},
        status_code=status.HTTP_409_CONFLICT,
        headers={"Retry-After": "0"},
    )


async def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    """Last line of defence for a value the database refused (no SQL in the answer)."""
    assert isinstance(exc, DBAPIError)
    failure = classify(exc)
    if failure == "unavailable":
        return await _database_unavailable(_request, exc)
    if failure == "conflict":
        return await _transaction_conflict(_request, exc)
    if not is_data_exception(exc):
        # a fault of ours, not the client's: the log has it, the answer shows no SQL
        logger.error("%s %s: database error", _request.method, _request.url.path, exc_info=exc)
        return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
    return JSONResponse(
        {
            "detail": [
                {
                    "loc": ["body"],
                    "msg": "a value cannot be stored or compared by the database",
                    "type": "value_error",
                }
            ]
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )
