"""Generated routes served by their own handler, documented by FastAPI as usual.

FastAPI's per-request machinery (dependency solving, exit stacks, response-model handling) was
the largest single cost of a small generated request. A generated route therefore declares its
parameters in an ordinary endpoint signature - that is what the OpenAPI document, `url_path_for`
and a plain `APIRoute` use - and `OperationRoute` serves requests with the endpoint's `handler`,
which reads the same declared parameters with FastAPI's own validation functions
(`request_params_to_args`, `request_body_to_args`: the same 422s, field for field) and returns a
finished response.

The handler is also what the endpoint itself calls, so the route still works under a plain
`APIRoute` (FastAPI then reports a 422 before the caller's 401/403). Under `OperationRoute` the
handler receives the parameters *and* the validation errors: a generated route checks the
caller first, so that an anonymous or under-privileged request gets its 401/403 rather than a
422 describing the body it may not send.
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
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined
from starlette._utils import get_route_path
from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
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
        body_type = self.body_field.field_info.annotation if self.body_field else None
        # A body that is one model, not embedded under a key: read by `_read_json_model`.
        self.body_model: type[BaseModel] | None = (
            body_type
            if isinstance(body_type, type)
            and issubclass(body_type, BaseModel)
            and not self.embed_body
            else None
        )
        # Integer parameters with both bounds, known by their own name: (low, high).
        self.bounded_ints = {
            param.name: bounds
            for param in (*self.path_fields, *self.query_fields)
            if (bounds := _int_bounds(param)) is not None
        }
        # Optional query parameters known by their own name: their defaults, by name.
        self.defaults = {
            param.name: param.field_info.default
            for param in self.query_fields
            if _plain_name(param)
            and not param.field_info.is_required()
            and not param.field_info.validate_default
            and isinstance(param.field_info.default, int | str | bool | None)
        }

    async def __call__(self, request: Request) -> Arguments:
        arguments = Arguments({})
        if self.path_fields:
            self._read(self.path_fields, request.path_params, arguments)
        if self.query_fields:
            query = request.query_params
            # A parameter the request leaves out takes its default, as FastAPI would give it.
            given = [f for f in self.query_fields if f.name not in self.defaults or f.name in query]
            for name, default in self.defaults.items():
                if name not in query:
                    arguments.values[name] = default
            self._read(given, query, arguments)
        if self.body_field is not None and not await self._read_json_model(request, arguments):
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

    async def _read_json_model(self, request: Request, arguments: Arguments) -> bool:
        """A JSON body of a model, validated as JSON and strictly: True when read.

        FastAPI validates the parsed body as Python objects, in pydantic's lax mode, where
        `false` is an integer 0, `0` a datetime (1970) and `"5"` an integer - values the
        OpenAPI document forbids. Validated as JSON in strict mode, each type takes exactly
        its JSON form (text for datetimes, decimals and UUIDs), as the document says. Anything
        else (no body, not JSON, not JSON text) is left to the FastAPI path, for its answers.
        """
        if self.body_model is None or self.body_field is None or not _is_json(request):
            return False
        body = (await request.body()).removeprefix(b"\xef\xbb\xbf")  # a BOM, as json.loads
        if body.lstrip()[:1] != b"{":
            return False  # not an object: FastAPI's answer (model_attributes_type, missing)
        try:
            payload = self.body_model.model_validate_json(body, strict=True)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            invalid = next((e for e in errors if e["type"] == "json_invalid"), None)
            if invalid is None:
                arguments.errors.extend({**e, "loc": ("body", *e["loc"])} for e in errors)
                return True
            try:
                json.loads(body)
            except Exception:
                return False  # FastAPI's path reports where (or answers 400), as before
            # Text Python's json reads and pydantic's parser refuses: not JSON (RFC 8259).
            arguments.errors.append(
                {
                    "type": "json_invalid",
                    "loc": ("body",),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": str(invalid["msg"])},
                }
            )
            return True
        arguments.values[self.body_field.name] = payload
        return True

    def _read(self, fields: list[Any], received: Any, arguments: Arguments) -> None:
        """`fields` from `received`, validated by FastAPI's own functions.

        Except the common case of a bounded integer written as plain digits (an id, `limit`):
        FastAPI would read it as the same number, so it is read directly. Anything else about
        it (a sign, leading zeros, out of bounds, not a number) goes to FastAPI, which reads or
        reports it.
        """
        rest = []
        for param in fields:
            bounds = self.bounded_ints.get(param.name)
            raw = received.get(param.name) if bounds is not None else None
            if (
                bounds is not None
                and isinstance(raw, str)
                and raw.isascii()
                and raw.isdigit()
                and (raw[0] != "0" or raw == "0")
                and bounds[0] <= int(raw) <= bounds[1]
            ):
                arguments.values[param.name] = int(raw)
            else:
                rest.append(param)
        if rest:
            values, errors = request_params_to_args(rest, received)
            arguments.values.update(values)
            arguments.errors.extend(errors)


def _plain_name(field: Any) -> bool:
    """Whether the parameter is sent under its own name (no alias)."""
    return bool(field.alias == field.name and field.field_info.validation_alias is None)


def _int_bounds(field: Any) -> tuple[int, int] | None:
    """(ge, le) of an `int` parameter with both bounds, sent under its own name."""
    if field.field_info.annotation is not int or not _plain_name(field):
        return None
    low = next((m.ge for m in field.field_info.metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in field.field_info.metadata if isinstance(m, Le)), None)
    if not isinstance(low, int) or not isinstance(high, int):
        return None
    return low, high


def _is_json(request: Request) -> bool:
    """Whether the request says its body is JSON (`application/json`, `*/*+json`)."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return False
    main, _, sub = content_type.partition(";")[0].strip().lower().partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


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
        # The methods each generated path answers, for `Allow` (OPTIONS and 405s).
        self._collection_methods: dict[str, set[str]] = {}
        self._item_methods: dict[str, set[str]] = {}

    def add(self, prefix: str, route: OperationRoute) -> None:
        """Serve `route` (mounted under `prefix`) from here, if its path is one we know."""
        path = prefix + route.path
        served = _Served(route, route.get_route_handler())
        if path.endswith("/{id}") and route.param_convertors.keys() == {"id"}:
            table, key, methods = self._items, path.removesuffix("/{id}"), self._item_methods
        elif not route.param_convertors:
            table, key, methods = self._collections, path, self._collection_methods
        else:
            return
        for method in route.methods or ():
            table[(method, key)] = served
            methods.setdefault(key, {"OPTIONS"}).add(method)

    def _allowed(self, path: str) -> set[str] | None:
        """The methods a generated path answers (None: not a generated path)."""
        methods = self._collection_methods.get(path)
        if methods is not None:
            return methods
        head, _, tail = path.rpartition("/")
        return self._item_methods.get(head) if tail else None

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
        if self._allowed(path) is not None:
            return Match.FULL, {}  # OPTIONS, or a method the path does not answer: 405
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], get_route_path(scope)
        served = self._collections.get((method, path)) or self._items.get(
            (method, path.rpartition("/")[0])
        )
        if served is None:
            response = _allow_response(method, self._allowed(path) or set())
        else:
            response = await served.handler(Request(scope, receive, send))
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # the routes themselves answer this

    def __repr__(self) -> str:
        return f"GeneratedRoutes({len(self._collections)} + {len(self._items)} routes)"


def _allow_response(method: str, allowed: set[str]) -> Response:
    """OPTIONS: 204 naming the methods in `Allow`; any other method the path does not answer:
    405 with the same `Allow` (RFC 9110, 15.5.6), every method of the path and not only one."""
    headers = {"Allow": ", ".join(sorted(allowed))}
    if method == "OPTIONS":
        return Response(status_code=204, headers=headers)
    return JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers=headers)


@dataclass(frozen=True)
class _Served:
    route: OperationRoute
    handler: Callable[[Request], Awaitable[Response]]
