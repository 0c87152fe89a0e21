"""Liveness and readiness probes."""

from typing import Any

from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from backend.db import get_database

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="The database is reachable and migrated to head",
    responses={503: {"description": "Not ready; `reason` says why"}},
)
async def readyz(request: Request) -> JSONResponse:
    heads: set[str] = request.app.state.migration_heads
    database = get_database(request)

    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    try:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            revisions = await connection.run_sync(current)
    except (SQLAlchemyError, OSError) as exc:
        reason = f"database unreachable: {type(exc).__name__}"
        return _unavailable(reason)
    if revisions != heads:
        found = ", ".join(sorted(revisions)) or "none"
        return _unavailable(
            f"migrations not at head (database: {found}; head: {', '.join(sorted(heads))}); "
            "run `tablestack migrate`"
        )
    return JSONResponse({"status": "ready", "revision": ",".join(sorted(revisions))})


def _unavailable(reason: str) -> JSONResponse:
    body: dict[str, Any] = {"status": "unavailable", "reason": reason}
    return JSONResponse(body, status_code=503)
