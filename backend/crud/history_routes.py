"""The history in the API: `GET /api/<resource>/{id}/history` and the admins' `GET /api/history`.

A row's history is readable by whoever may read the resource (also after the row was
deleted: the entries outlive it); the list of every change is for admins. Both are newest
first, paged with `skip`/`limit`, the total in `X-Total-Count`. Values are written as the
resource's own routes write them.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import col, select

from backend.auth.dependencies import Caller, OptionalUserDep, SettingsDep, admit
from backend.config import Settings
from backend.crud.errors import EVERY_OPERATION, UNAUTHORIZED
from backend.crud.schemas import DatetimeText, primary_key_parameter
from backend.db import SessionDep
from backend.models import Role
from backend.models.history import HistoryEntry
from backend.registry import Registry, ResourceOptions
from backend.writes.history import shown_changes

Action = Literal["created", "updated", "deleted", "loaded"]


class HistoryEntryRead(BaseModel):
    """One change: who made it, when, to which row, and each changed field's old and new value."""

    id: int
    at: datetime
    actor: str
    actor_id: int | None
    resource: str
    row_id: str | None
    action: Action
    version: int | None
    changes: dict[str, Any]


def history_router(resources: Registry, settings: Settings) -> APIRouter:
    """The history routes of every resource, and the list of all changes."""
    router = APIRouter(tags=["history"], responses=EVERY_OPERATION)
    limit_query = Query(
        ge=1, le=settings.page_size_max, description=f"Page size (at most {settings.page_size_max})"
    )

    def shown(entry: HistoryEntry) -> dict[str, Any]:
        record = entry.model_dump()
        if entry.resource in resources:
            record["changes"] = shown_changes(resources.get(entry.resource), entry.changes)
        return record

    async def page(
        session: Any, conditions: list[Any], skip: int, limit: int, response: Response
    ) -> list[dict[str, Any]]:
        total = await session.scalar(
            select(func.count()).select_from(HistoryEntry).where(*conditions)
        )
        found = await session.exec(
            select(HistoryEntry)
            .where(*conditions)
            .order_by(col(HistoryEntry.id).desc())
            .offset(skip)
            .limit(limit)
        )
        response.headers["X-Total-Count"] = str(total or 0)
        return [shown(entry) for entry in found]

    @router.get(
        "/history",
        operation_id="history-list",
        name="history-list",
        summary="List every change (admins only)",
        response_model=list[HistoryEntryRead],
        responses={**UNAUTHORIZED},
    )
    async def all_changes(
        response: Response,
        session: SessionDep,
        user: OptionalUserDep,
        app_settings: SettingsDep,
        resource: Annotated[str | None, Query(description="Only this resource's changes")] = None,
        row_id: Annotated[str | None, Query(description="Only this row's changes")] = None,
        actor: Annotated[
            str | None, Query(description="Only changes by this email or tool (`cli`...)")
        ] = None,
        actor_id: Annotated[int | None, Query(description="Only this user's changes")] = None,
        action: Annotated[Action | None, Query(description="Only this kind of change")] = None,
        since: Annotated[DatetimeText | None, Query(description="Changes at or after")] = None,
        until: Annotated[DatetimeText | None, Query(description="Changes before")] = None,
        skip: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, limit_query] = settings.page_size_default,
    ) -> Any:
        caller = Caller(user.id, user.role) if user is not None and user.id is not None else None
        admit(caller, app_settings, Role.admin, read=True)
        conditions: list[Any] = []
        for column, value in (
            (HistoryEntry.resource, resource),
            (HistoryEntry.row_id, row_id),
            (HistoryEntry.actor, actor),
            (HistoryEntry.actor_id, actor_id),
            (HistoryEntry.action, action),
        ):
            if value is not None:
                conditions.append(col(column) == value)
        if since is not None:
            conditions.append(col(HistoryEntry.at) >= since)
        if until is not None:
            conditions.append(col(HistoryEntry.at) < until)
        return await page(session, conditions, skip, limit, response)

    for resource in resources:
        _add_row_history(router, resource, page, limit_query, settings)
    return router


def _add_row_history(
    router: APIRouter, resource: ResourceOptions, page: Any, limit_query: Any, settings: Settings
) -> None:
    pk_type = primary_key_parameter(resource)
    name = resource.name

    async def row_history(
        id: pk_type,  # type: ignore[valid-type]
        response: Response,
        session: SessionDep,
        user: OptionalUserDep,
        app_settings: SettingsDep,
        skip: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, limit_query] = settings.page_size_default,
    ) -> Any:
        caller = Caller(user.id, user.role) if user is not None and user.id is not None else None
        admit(caller, app_settings, resource.read_role, read=True)
        conditions = [col(HistoryEntry.resource) == name, col(HistoryEntry.row_id) == str(id)]
        return await page(session, conditions, skip, limit, response)

    router.add_api_route(
        f"/{name}/{{id}}/history",
        row_history,
        methods=["GET"],
        operation_id=f"{name}-history",
        name=f"{name}-history",
        summary=f"List the changes of one of {resource.label.lower()}, newest first",
        response_model=list[HistoryEntryRead],
        responses={**UNAUTHORIZED},
        tags=[resource.label],
    )
