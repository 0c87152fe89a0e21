"""Liveness and readiness probes."""

from dataclasses import dataclass
from typing import Any

from alembic.runtime.migration import MigrationContext
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

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
    problem = await not_ready(get_database(request).engine, heads)
    if problem is not None:
        body: dict[str, Any] = {"status": "unavailable", "reason": problem.reason}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "revision": ",".join(sorted(heads))})


@dataclass(frozen=True)
class NotReady:
    """Why the database cannot serve yet: `reason` for a probe, `error` for an operator."""

    reason: str
    error: BaseException | None = None


async def not_ready(engine: AsyncEngine, heads: set[str]) -> NotReady | None:
    """None when the database answers and is migrated to `heads`; else why not (what
    `/readyz` reports, and `tablestack serve` warns about at start)."""

    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            revisions = await connection.run_sync(current)
    except (SQLAlchemyError, OSError) as exc:
        return NotReady(f"database unreachable: {type(exc).__name__}", exc)
    if revisions != heads:
        found = ", ".join(sorted(revisions)) or "none"
        return NotReady(
            f"migrations not at head (database: {found}; head: {', '.join(sorted(heads))}); "
            "run `tablestack migrate`"
        )
    return None
