"""Errors the generated API returns, and their documented shapes.

- 422 keeps FastAPI's shape (`{"detail": [{"loc", "msg", "type"}]}`) also for the checks
  FastAPI cannot do itself (dynamic filters, references, nulls);
- 409 uses the same list shape, so a form can put every error next to its field, plus the
  violated `constraint` when the database named it;
- 401 / 403 / 404 are `{"detail": "<sentence>"}`.
No message ever carries SQL or a driver's text.
"""

from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError

from backend.writes.errors import StillReferenced, WriteError

Loc = Sequence[str | int]
Responses = dict[int | str, dict[str, Any]]


class Message(BaseModel):
    """An error with a human-readable `detail`."""

    detail: str


class ConflictDetail(BaseModel):
    """One violated rule: where (`loc`, as in 422s), what (`msg`), and which constraint."""

    loc: list[str | int]
    msg: str
    type: str
    constraint: str | None = None


class Conflict(BaseModel):
    """The change conflicts with data already stored (unique, foreign key or check rule)."""

    detail: list[ConflictDetail]


def invalid(
    loc: Loc, msg: str, *, type: str = "value_error", input: Any = None
) -> RequestValidationError:
    """A FastAPI-shaped 422 for one field or parameter."""
    error: dict[str, Any] = {"type": type, "loc": tuple(loc), "msg": msg}
    if input is not None:
        error["input"] = input
    return RequestValidationError([error])


def is_data_exception(exc: DBAPIError) -> bool:
    """True when the database refused a value (SQLSTATE class 22: out of range, malformed).

    asyncpg reports some of these (numeric overflow) as a plain DBAPIError, not DataError.
    """
    if isinstance(exc, DataError):
        return True
    original = exc.orig
    cause = getattr(original, "__cause__", None)
    sqlstate = getattr(cause, "sqlstate", None) or getattr(original, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("22")


def not_found(resource: str, item_id: object) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"No {resource} with id {item_id}")


# The API's documented answers besides success, one definition each; routes combine them
# (`{**UNAUTHORIZED, **NOT_FOUND}`), and every API router declares `EVERY_OPERATION`.
_RETRY_AFTER = {
    "description": "Seconds to wait before trying again",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
}
_RATE_LIMIT_HEADERS = {
    "Retry-After": _RETRY_AFTER,
    "RateLimit-Limit": {
        "description": "Requests allowed in the window (IETF RateLimit header fields draft)",
        "schema": {"type": "string"},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in the current window",
        "schema": {"type": "string"},
    },
    "RateLimit-Reset": {
        "description": "Seconds until the window resets",
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": "The limit that applies, as `<requests>;w=<seconds>`",
        "schema": {"type": "string"},
    },
}
EVERY_OPERATION: Responses = {
    429: {
        "model": Message,
        "description": "Too many requests from this client or user: wait `Retry-After` seconds",
        "headers": _RATE_LIMIT_HEADERS,
    },
    503: {
        "model": Message,
        "description": "The database is unavailable (unreachable, restarting, out of "
        "connections): retry after `Retry-After` seconds",
        "headers": {"Retry-After": _RETRY_AFTER},
    },
}
BAD_BODY: Responses = {
    400: {"model": Message, "description": "The body cannot be parsed (not JSON text)"},
    413: {"model": Message, "description": "The body is larger than the limit (MAX_BODY_BYTES)"},
}
NOT_FOUND: Responses = {404: {"model": Message, "description": "No row has this id"}}
UNAUTHORIZED: Responses = {
    401: {"model": Message, "description": "No, an invalid or an expired bearer token"},
    403: {"model": Message, "description": "The signed-in user's role does not allow this"},
}
CONFLICT: Responses = {
    409: {
        "model": Conflict,
        "description": "A unique, foreign-key or check rule would be broken; `loc` names the field",
    }
}


def from_write_error(
    error: WriteError, *, where: str = "body"
) -> HTTPException | RequestValidationError:
    """A refused write as the API answers it: 409 for a conflict with stored data (unique,
    reference, check, tree), 422 for the request's own values; `loc` names the fields."""
    if error.conflict:
        items = [
            ConflictDetail(
                loc=[where, *problem.location],
                msg=problem.message,
                type=problem.kind,
                constraint=problem.constraint,
            ).model_dump()
            for problem in error.problems
        ]
        return HTTPException(status.HTTP_409_CONFLICT, items)
    return RequestValidationError(
        [
            {
                "type": "missing" if problem.kind == "missing" else "value_error",
                "loc": (where, *problem.location),
                "msg": problem.message,
            }
            for problem in error.problems
        ]
    )


def still_referenced(error: StillReferenced) -> HTTPException:
    """A 409 naming the tables whose rows still point at the row to delete."""
    problem = error.problems[0]
    item = ConflictDetail(loc=["path", "id"], msg=problem.message, type="foreign_key")
    return HTTPException(status.HTTP_409_CONFLICT, [item.model_dump()])


PRECONDITION: Responses = {
    400: {"model": Message, "description": "`If-Match` names more than one version"},
    412: {
        "model": Message,
        "description": "`If-Match` names a version the row no longer has: it changed since it "
        "was read. The current `ETag` is in the response's headers; read the row again.",
        "headers": {
            "ETag": {"description": "The row's current version", "schema": {"type": "string"}}
        },
    },
    428: {
        "model": Message,
        "description": "The server requires `If-Match` on writes (setting REQUIRE_IF_MATCH)",
    },
}


def responses(*parts: Responses) -> Responses:
    """The documented answers of `parts` together; where two document the same status, one
    answer whose description names both causes."""
    merged: Responses = {}
    for part in parts:
        for status_code, answer in part.items():
            if status_code in merged and "description" in answer:
                before = merged[status_code]
                causes = f"{before['description']}; or: {answer['description']}"
                merged[status_code] = {**before, **answer, "description": causes}
            else:
                merged[status_code] = answer
    return merged
