"""The async CRUDGenerator: one router per registered table, over the shared engine.

fastapi-crudrouter gives the route layout and the override mechanics; this subclass supplies
async SQLModel routes and never lets the library's pydantic-v1 helpers run (schemas and the
primary key type are always given). Route callables are annotated with `self._pk_type` and
the derived schemas at runtime, so this module must not use `from __future__ import annotations`.

This module declares the routes (names, summaries, status codes, documented responses and
parameters); the requests go to the handlers of `backend.crud.reads` (get one, list) and
`backend.crud.write_handlers` (create, replace, update, delete, delete all), each of which
checks the caller through `backend.crud.access` first.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials
from fastapi_crudrouter.core import CRUDGenerator
from pydantic import BaseModel

from backend.auth.dependencies import bearer_scheme
from backend.config import Settings
from backend.crud.access import Access
from backend.crud.errors import (
    BAD_BODY,
    CONFLICT,
    EVERY_OPERATION,
    NOT_FOUND,
    PRECONDITION,
    UNAUTHORIZED,
    responses,
)
from backend.crud.operation import Arguments, Handler, OperationRoute, served_by
from backend.crud.query import openapi_filter_parameters
from backend.crud.reads import Reads
from backend.crud.rows import row_shape
from backend.crud.schemas import (
    NO_NUL_PATTERN,
    derive_replace_schema,
    derive_schemas,
    primary_key_parameter,
)
from backend.crud.write_handlers import DeleteAllResult, Writes
from backend.models import Role
from backend.registry import ResourceOptions

# Declares the bearer scheme on every route (OpenAPI `security`); the handlers read the token.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


@dataclass(frozen=True)
class RouteSpec:
    """How one generated route is named and documented."""

    action: str
    summary: str
    status_code: int = status.HTTP_200_OK
    responses: dict[int | str, dict[str, Any]] = field(default_factory=dict)


_TOTAL_HEADERS = {
    "X-Total-Count": {
        "description": "How many rows match the filters, over all pages",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Content-Range": {
        "description": "`<resource> <first>-<last>/<total>` (`<resource> */<total>` when the "
        "page is empty), as react-admin's simple REST data provider reads it",
        "schema": {"type": "string"},
    },
}
_ETAG_HEADER = {
    "ETag": {
        "description": 'The row\'s version, `"<n>"`: send it back in `If-Match` to write only '
        "while nobody else has changed the row",
        "schema": {"type": "string"},
    }
}
_LOCATION_HEADER = {
    "Location": {"description": "The URL of the created row", "schema": {"type": "string"}},
    **_ETAG_HEADER,
}
_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "`If-None-Match` names the row's current version: nothing changed"}
}
# One entity tag (RFC 9110, 8.8.3) without a comma, or `*`: a list of tags is a 400. A weak
# or unknown tag is well-formed and never matches (412).
IF_MATCH_PATTERN = r'^(?:\*|(?:W/)?"[\x21\x23-\x2b\x2d-\x7e]*")$'
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "description": 'The `ETag` of the row as read (`"3"`): the write applies only while the row '
    "is still at that version, else 412 (required, else 428, with REQUIRE_IF_MATCH)",
    "schema": {"type": "string", "pattern": IF_MATCH_PATTERN},
    "example": '"1"',
}
_IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The `ETag` of the row as last read: 304 with no body while it is current",
    "schema": {"type": "string"},
}
_CHANGED: dict[int | str, dict[str, Any]] = {200: {"headers": _ETAG_HEADER}}

# (crudrouter's path, method) -> our action; crudrouter has no PATCH route, we add it.
# 422 (FastAPI's shape) is documented by FastAPI on every route with parameters or a body;
# 429 and 503 on every route by the router (`EVERY_OPERATION`).
_ACTIONS = {
    ("", "GET"): RouteSpec(
        "list", "List {label}", responses={200: {"headers": _TOTAL_HEADERS}, **UNAUTHORIZED}
    ),
    ("", "POST"): RouteSpec(
        "create",
        "Create one of {label}",
        status.HTTP_201_CREATED,
        responses({201: {"headers": _LOCATION_HEADER}}, BAD_BODY, UNAUTHORIZED, CONFLICT),
    ),
    ("", "DELETE"): RouteSpec(
        "delete-all", "Delete every row of {label}", responses=responses(UNAUTHORIZED, CONFLICT)
    ),
    ("/{item_id}", "GET"): RouteSpec(
        "get",
        "Get one of {label}",
        responses=responses(_CHANGED, _NOT_MODIFIED, UNAUTHORIZED, NOT_FOUND),
    ),
    ("/{item_id}", "PUT"): RouteSpec(
        "replace",
        "Replace one of {label}",
        responses=responses(_CHANGED, BAD_BODY, UNAUTHORIZED, NOT_FOUND, CONFLICT, PRECONDITION),
    ),
    ("/{item_id}", "PATCH"): RouteSpec(
        "update",
        "Change some fields of one of {label}",
        responses=responses(_CHANGED, BAD_BODY, UNAUTHORIZED, NOT_FOUND, CONFLICT, PRECONDITION),
    ),
    ("/{item_id}", "DELETE"): RouteSpec(
        "delete",
        "Delete one of {label}",
        responses=responses(_CHANGED, UNAUTHORIZED, NOT_FOUND, CONFLICT, PRECONDITION),
    ),
}


def row_links(resource: ResourceOptions) -> dict[str, dict[str, Any]]:
    """OpenAPI links from an answer carrying one row to the operations on that row: its id
    from the body, and its `ETag` as the writes' `If-Match` (so a client, or a stateful
    fuzzer, can chain create -> get / update / replace / delete). Not to the row's history,
    which outlives the row (a deleted row's history is still 200, by design)."""
    name, key = resource.name, resource.primary_key
    row_id = f"$response.body#/{key}"
    conditional = {"path.id": row_id, "header.If-Match": "$response.header.ETag"}
    links: dict[str, dict[str, Any]] = {
        "get": {"operationId": f"{name}-get", "parameters": {"path.id": row_id}},
    }
    for action in ("update", "replace", "delete"):
        links[action] = {"operationId": f"{name}-{action}", "parameters": conditional}
    for action, link in links.items():
        link["description"] = f"The `{action}` operation on this row"
    return links


_LIST_DESCRIPTION = """\
Filter with `field=value` or `field__op=value` (operators: `ne`, `gt`, `gte`, `lt`, `lte`,
`in` (comma-separated), `like` / `ilike` (SQL patterns: `%` any run, `_` one character; text
fields only), `isnull` (`true`/`false`)); `q=` searches {search}. Sort with
`sort=-price,name` (the primary key breaks ties). Page with `skip` / `limit`.

react-admin's simple REST dialect works on the same route: `sort=["price","DESC"]`,
`range=[0,24]`, `filter={{"q":"lamp","category_id":3,"id":[1,2,3]}}`.

The total is in `X-Total-Count` and `Content-Range`: an exact count, unless the request says
`Prefer: count=estimated` (as PostgREST): an unfiltered list of a large table on PostgreSQL
then gives the planner's row estimate (exact once the page reaches the end) and answers
`Preference-Applied: count=estimated`.
"""


class SQLModelCRUDRouter(CRUDGenerator[BaseModel]):  # type: ignore[misc]  # untyped library
    """Async CRUD routes for one registered table: their declarations, served by the
    resource's `Reads` and `Writes` handlers."""

    def __init__(self, resource: ResourceOptions, settings: Settings) -> None:
        self.resource = resource
        self.settings = settings
        self.schemas = derive_schemas(resource)
        self.replace_schema = derive_replace_schema(resource)
        # Set before super().__init__, so crudrouter never calls its pydantic-v1 get_pk_type.
        self._pk = resource.primary_key
        self._pk_type: Any = primary_key_parameter(resource)
        rows = row_shape(resource, "sqlite" if settings.is_sqlite else "postgresql")
        access = Access(resource, settings)
        self.reads = Reads(resource, settings, rows, access)
        self.writes = Writes(resource, settings, rows, access)
        super().__init__(
            schema=self.schemas.read,
            create_schema=self.schemas.create,
            update_schema=self.schemas.update,
            prefix=resource.name,
            tags=[resource.label],
            responses=EVERY_OPERATION,
            get_all_route=True,
            get_one_route=True,
            create_route=True,
            update_route=True,
            delete_one_route=True,
            delete_all_route=resource.delete_all,
            route_class=OperationRoute,
        )
        self._add_api_route("/{item_id}", self._patch(), methods=["PATCH"], dependencies=True)

    # Route registration ------------------------------------------------------------------

    def _add_api_route(
        self,
        path: str,
        endpoint: Callable[..., Any],
        dependencies: Any,
        error_responses: Any = None,
        **kwargs: Any,
    ) -> None:
        """Name and document each route (`products-list`, ...) instead of crudrouter's `route`."""
        method = kwargs["methods"][0]
        spec = _ACTIONS[(path, method)]
        name = f"{self.resource.name}-{spec.action}"
        label = self.resource.label.lower()
        response_model: Any = {
            "list": list[self.schemas.read],  # type: ignore[name-defined]
            "delete-all": DeleteAllResult,
        }.get(spec.action, self.schemas.read)
        openapi_extra: dict[str, Any] = {}
        extra: dict[str, Any] = {"openapi_extra": openapi_extra}
        route_responses = spec.responses
        if spec.action in ("create", "get"):
            success = spec.status_code
            answer = {**route_responses.get(success, {}), "links": row_links(self.resource)}
            route_responses = {**route_responses, success: answer}
        if spec.action == "list":
            searchable = ", ".join(f"`{f}`" for f in self.resource.search_fields) or "nothing"
            extra["description"] = _LIST_DESCRIPTION.format(search=searchable)
            openapi_extra["parameters"] = openapi_filter_parameters(self.resource)
        elif spec.action == "get":
            openapi_extra["parameters"] = [_IF_NONE_MATCH]
        elif spec.action in ("replace", "update", "delete"):
            openapi_extra["parameters"] = [_IF_MATCH]
        if (
            spec.action in ("list", "get")
            and self.settings.anonymous_read
            and self.resource.read_role is Role.viewer
        ):
            openapi_extra["security"] = [{}]  # a token is optional: appended to `bearer`
        APIRouter.add_api_route(
            self,
            path.replace("{item_id}", "{id}"),
            endpoint,
            methods=[method],
            dependencies=[] if isinstance(dependencies, bool) else dependencies,
            name=name,
            operation_id=name,
            summary=spec.summary.format(label=label),
            status_code=spec.status_code,
            response_model=response_model,
            responses=route_responses,
            **extra,
        )

    # Routes ------------------------------------------------------------------------------
    # Each endpoint below declares the route's parameters (for FastAPI's OpenAPI document and
    # validation) and hands them to its handler; `OperationRoute` calls the handler directly.

    def _get_all(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        settings = self.settings
        handler = self.reads.read_list
        searchable = bool(self.resource.search_fields)
        search_description = "Text to search for in " + ", ".join(
            f"`{name}`" for name in self.resource.search_fields
        )

        @served_by(handler)
        async def route(
            request: Request,
            credentials: Credentials,
            skip: Annotated[
                int, Query(ge=0, le=2**62, description="Rows to skip before the page")
            ] = 0,
            limit: Annotated[
                int,
                Query(
                    ge=1,
                    le=settings.page_size_max,
                    description=f"Page size (at most {settings.page_size_max})",
                ),
            ] = settings.page_size_default,
            sort: Annotated[
                str | None,
                Query(description='`-price,name`, or react-admin\'s `["price","DESC"]`'),
            ] = None,
            q: Annotated[
                str | None,
                # Documented only where there is something to search (else `q` is a 422).
                Query(
                    description=search_description,
                    include_in_schema=searchable,
                    json_schema_extra={"pattern": NO_NUL_PATTERN},
                ),
            ] = None,
            range: Annotated[
                str | None, Query(description="react-admin: `[first, last]`, inclusive")
            ] = None,
            filter: Annotated[
                str | None,
                Query(description='react-admin: a JSON object, e.g. `{"q":"lamp","id":[1,2]}`'),
            ] = None,
        ) -> Any:
            values = {"skip": skip, "limit": limit, "sort": sort, "q": q}
            return await handler(request, Arguments({**values, "range": range, "filter": filter}))

        return route

    def _get_one(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return self._item_route(self.reads.read_one)

    def _create(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        create_schema, handler = self.create_schema, self.writes.create

        @served_by(handler)
        async def route(
            request: Request,
            payload: create_schema,  # type: ignore[valid-type]
            credentials: Credentials,
        ) -> Any:
            return await handler(request, Arguments({"payload": payload}))

        return route

    def _update(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return self._item_body_route(self.replace_schema, self.writes.replace)

    def _patch(self) -> Callable[..., Any]:
        return self._item_body_route(self.update_schema, self.writes.update)

    def _delete_one(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        return self._item_route(self.writes.delete)

    def _item_route(self, handler: Handler) -> Callable[..., Any]:
        """`/{id}` with no body (get, delete)."""
        pk_type = self._pk_type

        @served_by(handler)
        async def route(request: Request, id: pk_type, credentials: Credentials) -> Any:  # type: ignore[valid-type]
            return await handler(request, Arguments({"id": id}))

        return route

    def _item_body_route(self, schema: type[BaseModel], handler: Handler) -> Callable[..., Any]:
        """`/{id}` with a JSON body of `schema` (replace, update)."""
        pk_type = self._pk_type

        @served_by(handler)
        async def route(
            request: Request,
            id: pk_type,  # type: ignore[valid-type]
            payload: schema,  # type: ignore[valid-type]
            credentials: Credentials,
        ) -> Any:
            return await handler(request, Arguments({"id": id, "payload": payload}))

        return route

    def _delete_all(self, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        handler = self.writes.delete_all

        @served_by(handler)
        async def route(request: Request, credentials: Credentials) -> DeleteAllResult:
            return await handler(request, Arguments({}))  # type: ignore[return-value]

        return route


def resource_routers(resources: Iterable[ResourceOptions], settings: Settings) -> list[APIRouter]:
    """One generated router per registered table."""
    return [SQLModelCRUDRouter(resource, settings) for resource in resources]
