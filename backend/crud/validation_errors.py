"""The 422 answer to a `RequestValidationError`, always valid JSON whatever the input echoed.

FastAPI's own handler writes `jsonable_encoder(exc.errors())` with `allow_nan=False` and
UTF-8: an error whose `input` is `NaN`, `Infinity` or `1e999` (all accepted by Python's JSON
parser), a lone surrogate (`"\\ud800"`), bytes that are not UTF-8, or a value nested deeper
than the encoder recurses, cannot be written, and the 422 became a 500. Here every echoed value
is made writable first, and otherwise left as FastAPI would write it:
- a non-finite number becomes the text a client would have sent (`"NaN"`, `"Infinity"`,
  `"-Infinity"`);
- text that is not valid Unicode keeps its bad code points as `\\udXXX` escapes (bytes as
  `\\xNN`), so the client sees what it sent;
- structure nested deeper than `MAX_ECHO_DEPTH` is cut off as `"..."`;
- anything else goes through FastAPI's `jsonable_encoder`, one value at a time.
"""

import math
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

MAX_ECHO_DEPTH = 32
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


async def validation_error_response(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 (`{"detail": [...]}`), with every echoed value writable as JSON."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": json_safe(exc.errors())}, status_code=422)


def json_safe(value: Any, depth: int = 0) -> Any:
    """`value` as JSON can hold it: finite numbers, valid text, bounded depth (see above)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _valid_text(value)
    if isinstance(value, int):
        # Python refuses to write an integer of more than 4300 digits (about 14,000 bits).
        return (
            value if value.bit_length() < 14_000 else f"<an integer of {value.bit_length()} bits>"
        )
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return _NON_FINITE.get(value, "NaN")
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if depth >= MAX_ECHO_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {_valid_text(str(key)): json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item, depth + 1) for item in value]
    try:
        encoded = jsonable_encoder(value)
    except Exception:  # whatever FastAPI cannot encode is shown as Python shows it
        encoded = repr(value)
    if encoded is value:  # not simpler than before: stop here
        return repr(value)
    return json_safe(encoded, depth + 1)


def _valid_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
