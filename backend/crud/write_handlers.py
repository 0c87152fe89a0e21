"""The API's write handlers: create, replace, update, delete and delete-all of one resource.

The HTTP side of a write: check the caller (`Access.connect`), read the route's arguments and
the `If-Match` condition, hand the values to the resource's `Writer` (`backend.writes`: the
one write path the admin and seeding use too), and answer - 201 with `Location`, the row as
written with its `ETag`, 404, 409/422 naming the field, 412 with the current `ETag`.

A signed-in caller's role may still be pending (see `Access.connect`): the Writer checks it
inside its own statement when the write is one statement.
"""

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response, status
from pydantic import BaseModel

from backend.config import Settings
from backend.crud.access import Access, caller_id
from backend.crud.conditional import etag, expected_version, precondition_failed
from backend.crud.errors import from_write_error, not_found, still_referenced
from backend.crud.operation import Arguments
from backend.crud.rows import JSONBytesResponse, RowShape
from backend.crud.schemas import write_only_fields
from backend.registry import ResourceOptions
from backend.writes.actor import Actor
from backend.writes.errors import RowNotFound, StillReferenced, VersionMismatch, WriteError
from backend.writes.service import Written, writer_for


class DeleteAllResult(BaseModel):
    """How many rows `DELETE /api/<resource>` removed."""

    deleted: int


class Writes:
    """The write handlers of one resource: arguments in, responses out."""

    def __init__(
        self, resource: ResourceOptions, settings: Settings, rows: RowShape, access: Access
    ) -> None:
        self.resource = resource
        self.settings = settings
        self.rows = rows
        self.access = access
        self.writer = writer_for(resource, "sqlite" if settings.is_sqlite else "postgresql")
        self.read_only = {resource.primary_key, *resource.read_only_fields}
        self.write_only = write_only_fields(resource)
        self._pk = resource.primary_key
        # Ids other than integers may hold characters a URL must escape (`Location`).
        self._quote_id = resource.primary_key_type is not int
        self._item_path: str | None = None

    async def create(self, request: Request, arguments: Arguments) -> Response:
        """`POST /`: 201 with the row as written, its `Location` and `ETag`."""
        async with self.access.connect(request, arguments, read=False, defer_caller=True) as (
            connection,
            pending,
        ):
            data = arguments.values["payload"].model_dump()
            try:
                written = await self.writer.create(
                    connection,
                    data,
                    _actor(request),
                    pending=pending,
                    finish=functools.partial(self._created, request),
                )
            except WriteError as error:
                raise from_write_error(error) from None
        response: Response = written.finished
        return response

    def _created(self, request: Request, written: Written) -> Response:
        headers = {
            "Location": self._location(request, written.row_id),
            "ETag": etag(written.version),
        }
        return self.rows.response(
            written.record, status_code=status.HTTP_201_CREATED, headers=headers
        )

    async def replace(self, request: Request, arguments: Arguments) -> Response:
        """`PUT /{id}`: every writable field; a write-only field left out keeps its value."""
        return await self._change(request, arguments, replace=True)

    async def update(self, request: Request, arguments: Arguments) -> Response:
        """`PATCH /{id}`: the fields the body sets."""
        return await self._change(request, arguments, replace=False)

    def _values(self, payload: BaseModel, *, replace: bool) -> dict[str, Any]:
        if not replace:
            return payload.model_dump(exclude_unset=True)
        data = payload.model_dump(exclude=self.read_only)
        for name in self.write_only:  # left out: keep what is stored
            if data.get(name) is None:
                data.pop(name, None)
        return data

    async def _change(self, request: Request, arguments: Arguments, *, replace: bool) -> Response:
        async with self.access.connect(request, arguments, read=False, defer_caller=True) as (
            connection,
            pending,
        ):
            item_id = arguments.values["id"]
            expected = expected_version(request, required=self.settings.require_if_match)
            data = self._values(arguments.values["payload"], replace=replace)
            with self._item_errors(item_id, where="body"):
                written = await self.writer.update(
                    connection,
                    item_id,
                    data,
                    _actor(request),
                    expected_version=expected,
                    pending=pending,
                    finish=self._answer,
                )
        response: Response = written.finished
        return response

    async def delete(self, request: Request, arguments: Arguments) -> Response:
        """`DELETE /{id}`: the row as it was."""
        async with self.access.connect(request, arguments, read=False) as (connection, _):
            item_id = arguments.values["id"]
            expected = expected_version(request, required=self.settings.require_if_match)
            with self._item_errors(item_id, where="path"):
                written = await self.writer.delete(
                    connection,
                    item_id,
                    _actor(request),
                    expected_version=expected,
                    finish=self._answer,
                )
        response: Response = written.finished
        return response

    @contextmanager
    def _item_errors(self, item_id: Any, *, where: str) -> Iterator[None]:
        """The write path's refusals of a write to one row, as the API answers them."""
        try:
            yield
        except StillReferenced as error:
            raise still_referenced(error) from None
        except WriteError as error:
            raise from_write_error(error, where=where) from None
        except RowNotFound:
            raise not_found(self.resource.name, item_id) from None
        except VersionMismatch as mismatch:
            raise precondition_failed(mismatch.current) from None

    async def delete_all(self, request: Request, arguments: Arguments) -> Response:
        """`DELETE /`: how many rows were deleted."""
        async with self.access.connect(request, arguments, read=False) as (connection, _):
            try:
                deleted = await self.writer.delete_all(connection, _actor(request))
            except WriteError as error:
                raise from_write_error(error, where="path") from None
        return JSONBytesResponse(DeleteAllResult(deleted=deleted).model_dump_json().encode())

    def _answer(self, written: Written) -> Response:
        return self.rows.response(written.record, headers={"ETag": etag(written.version)})

    def _location(self, request: Request, item_id: Any) -> str:
        """The created row's URL (the route's path is looked up once, not per request)."""
        if self._item_path is None:
            path = request.app.url_path_for(f"{self.resource.name}-get", id=0)
            self._item_path = str(path).removesuffix("0")
        shown = quote(str(item_id), safe="") if self._quote_id else item_id
        return f"{str(request.base_url).rstrip('/')}{self._item_path}{shown}"


def _actor(request: Request) -> Actor:
    """The signed-in caller as the history records them: by id (the email is read from the
    users table in the write's own statement)."""
    return Actor(None, caller_id(request), "api")
