"""Generated routes served by their own handler, documented by FastAPI as usual.

FastAPI's per-request machinery (dependency solving, exit stacks, response-model handling) was
the largest single cost of a small generated request. A generated route therefore declares its
parameters in an ordinary endpoint signature - that is what the OpenAPI document, `url_path_for`
and a plain `APIRoute` use - and `OperationRoute` serves requests with the endpoint's `handler`,
which reads the same declared parameters with FastAPI's own validation functions
(`request_params_to_args`, `request_body_to_args`: the same 422s, field for field) and returns a
finished response.

The handler is also what the endpoint itself calls, so the route behaves the same under a plain
`APIRoute`. It receives the parameters *and* the validation errors: a generated route checks
the caller first, so that an anonymous or under-privileged request gets its 401/403 rather than
a 422 describing the body it may not send.
"""

import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from annotated_types import Ge, Le
from fastapi import HTTPException
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined
from starlette._utils import get_route_path
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send


@dataclass
class Arguments:
    """A request's declared parameters, validated: the values and any errors (FastAPI's shape)."""

    values: dict[str, Any]
    errors: list[Any] = field(default_factory=list)

    def check(self) -> None:
        """Raise the 422 for the errors found, if any."""
        if self.errors:
            raise RequestValidationError(self.errors)


class Handler(Protocol):
    def __call__(self, request: Request, arguments: Arguments) -> Awaitable[Response]: ...


def served_by(handler: Handler) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark an endpoint as served by `handler` under `OperationRoute`."""

    def attach(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        endpoint.handler = handler  # type: ignore[attr-defined]
        return endpoint

    return attach


class OperationRoute(APIRoute):
    """An `APIRoute` whose requests go straight to the endpoint's `handler`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler: Handler | None = getattr(self.endpoint, "handler", None)
        if handler is None:
            return super().get_route_handler()
        read = ArgumentReader(self)

        async def serve(request: Request) -> Response:
            return await handler(request, await read(request))

        return serve


class ArgumentReader:
    """Reads a route's declared path, query and JSON body parameters as FastAPI does."""

    def __init__(self, route: APIRoute) -> None:
        self.path_fields = route.dependant.path_params
        self.query_fields = route.dependant.query_params
        self.body_field = route.body_field
        self.embed_body = route._embed_body_fields
        self.int_path = _bounded_int(self.path_fields)
        # Optional query parameters known by their own name: their defaults, by name.
        self.defaults = {
            field.name: field.field_info.default
            for field in self.query_fields
            if field.alias == field.name
            and field.field_info.validation_alias is None
            and not field.field_info.is_required()
            and not field.field_info.validate_default
            and isinstance(field.field_info.default, int | str | bool | None)
        }

    async def __call__(self, request: Request) -> Arguments:
        arguments = Arguments({})
        if not (self.int_path is not None and self._read_int_path(request, arguments)):
            self._read(self.path_fields, request.path_params, arguments)
        if self.query_fields:
            query = request.query_params
            # A parameter the request leaves out takes its default, as FastAPI would give it.
            given = [f for f in self.query_fields if f.name not in self.defaults or f.name in query]
            for name, default in self.defaults.items():
                if name not in query:
                    arguments.values[name] = default
            self._read(given, query, arguments)
        if self.body_field is not None:
            try:
                body = await _json_body(request)
            except json.JSONDecodeError as exc:  # FastAPI reports only this, as here
                arguments.errors = [
                    {
                        "type": "json_invalid",
                        "loc": ("body", exc.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": exc.msg},
                    }
                ]
                return arguments
            except Exception:  # not text in a JSON encoding, nested too deep: as FastAPI
                raise HTTPException(400, "There was an error parsing the body") from None
            values, errors = await request_body_to_args([self.body_field], body, self.embed_body)
            arguments.values.update(values)
            arguments.errors.extend(errors)
        return arguments

    @staticmethod
    def _read(fields: list[Any], received: Any, arguments: Arguments) -> None:
        """FastAPI's own reading and validation of `fields` from `received`."""
        if fields:
            values, errors = request_params_to_args(fields, received)
            arguments.values.update(values)
            arguments.errors.extend(errors)

    def _read_int_path(self, request: Request, arguments: Arguments) -> bool:
        """The common case of a route's one integer path parameter (`/{id}`), read directly:
        plain ASCII digits within its bounds, which FastAPI would accept as the same number.
        False for anything else, which FastAPI's validation then reads (and reports)."""
        assert self.int_path is not None
        name, low, high = self.int_path
        raw = request.path_params.get(name)
        if not (isinstance(raw, str) and raw.isascii() and raw.isdigit()):
            return False
        value = int(raw)
        if not low <= value <= high:
            return False
        arguments.values[name] = value
        return True


def _bounded_int(fields: list[Any]) -> tuple[str, int, int] | None:
    """(name, ge, le) when the only path parameter is an `int` with both bounds."""
    if len(fields) != 1 or fields[0].field_info.annotation is not int:
        return None
    field = fields[0]
    low = next((m.ge for m in field.field_info.metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in field.field_info.metadata if isinstance(m, Le)), None)
    if not isinstance(low, int) or not isinstance(high, int) or field.alias != field.name:
        return None
    return field.name, low, high


async def _json_body(request: Request) -> Any:
    """The body as FastAPI reads it: JSON when declared so, the raw bytes otherwise."""
    body = await request.body()
    if not body:
        return PydanticUndefined
    content_type = request.headers.get("content-type")
    if not content_type:
        return body
    main, _, sub = content_type.partition(";")[0].strip().lower().partition("/")
    if main != "application" or not (sub == "json" or sub.endswith("+json")):
        return body
    return json.loads(body)


class GeneratedRoutes(BaseRoute):
    """Finds a generated route by a dictionary lookup, ahead of FastAPI's route matching.

    FastAPI matches a request by trying each included router's routes in turn (a regular
    expression each, plus its bookkeeping per included router), which cost a generated route
    a fifth of its time. The generated paths are regular - `<prefix>/<resource>` and
    `<prefix>/<resource>/{id}` - so this route, placed first, finds them in a dict and serves
    them with the same handlers the `OperationRoute`s use. Whatever it does not know (another
    method, a trailing slash, any other path) goes on to FastAPI's routing unchanged, and the
    routes stay in FastAPI's routers for the OpenAPI document and `url_path_for`.
    """

    def __init__(self) -> None:
        self._collections: dict[tuple[str, str], _Served] = {}
        self._items: dict[tuple[str, str], _Served] = {}

    def add(self, prefix: str, route: OperationRoute) -> None:
        """Serve `route` (mounted under `prefix`) from here, if its path is one we know."""
        path = prefix + route.path
        served = _Served(route, route.get_route_handler())
        if path.endswith("/{id}") and route.param_convertors.keys() == {"id"}:
            table, key = self._items, path.removesuffix("/{id}")
        elif not route.param_convertors:
            table, key = self._collections, path
        else:
            return
        for method in route.methods or ():
            table[(method, key)] = served

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        method, path = scope["method"], get_route_path(scope)
        served = self._collections.get((method, path))
        if served is not None:
            return Match.FULL, {"route": served.route, "endpoint": served.route.endpoint}
        head, _, tail = path.rpartition("/")
        served = self._items.get((method, head)) if tail else None
        if served is not None:
            path_params = {**scope.get("path_params", {}), "id": tail}
            child = {"route": served.route, "endpoint": served.route.endpoint}
            return Match.FULL, {**child, "path_params": path_params}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], get_route_path(scope)
        served = (
            self._collections.get((method, path)) or self._items[(method, path.rpartition("/")[0])]
        )
        response = await served.handler(Request(scope, receive, send))
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # the routes themselves answer this

    def __repr__(self) -> str:
        return f"GeneratedRoutes({len(self._collections)} + {len(self._items)} routes)"


@dataclass(frozen=True)
class _Served:
    route: OperationRoute
    handler: Callable[[Request], Awaitable[Response]]
