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

from backend.integrity import Violation

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


def conflict(loc: Loc, msg: str, *, type: str, constraint: str | None = None) -> HTTPException:
    """A 409 naming the field (`loc`) and, when known, the violated constraint."""
    item = ConflictDetail(loc=list(loc), msg=msg, type=type, constraint=constraint)
    return HTTPException(status.HTTP_409_CONFLICT, [item.model_dump()])


def error_from_violation(
    violation: Violation, *, where: str = "body"
) -> HTTPException | RequestValidationError:
    """A 409 for a database integrity violation (a 422 for a required field left null)."""
    loc: list[str | int] = [where, *violation.fields] if violation.fields else [where]
    if violation.kind == "not_null":
        return invalid(loc, violation.message(), type="missing")
    return conflict(loc, violation.message(), type=violation.kind, constraint=violation.constraint)


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


BAD_BODY: Responses = {
    400: {"model": Message, "description": "The body cannot be parsed (not JSON text)"}
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
