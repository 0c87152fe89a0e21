"""Sample values for admin forms, drawn from the resources' Create schemas with hypothesis.

Each field's strategy follows its annotation and constraints (pattern, lengths, bounds, digits),
so a new table gets valid sample rows without a hand-kept table of examples. Draws are
deterministic (`hypothesis.find` returns the simplest value not drawn before), which keeps the
admin suite reproducible and lets a test ask for a second, different value to edit a row with.
"""

import enum
import re
import types
import typing
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from pydantic import EmailStr
from pydantic.fields import FieldInfo

_TEXT = st.characters(min_codepoint=ord("a"), max_codepoint=ord("z"))
_JSON_SCALARS = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(_TEXT, max_size=6)


def _constraint(metadata: list[Any], name: str) -> Any:
    for item in metadata:
        value = getattr(item, name, None)
        if value is not None:
            return value
    return None


def _bounds(metadata: list[Any]) -> tuple[Any, Any]:
    low: Any = None
    high: Any = None
    for item in metadata:
        if isinstance(item, Ge):
            low = item.ge
        elif isinstance(item, Gt):
            low = item.gt + 1 if isinstance(item.gt, int) else item.gt
        elif isinstance(item, Le):
            high = item.le
        elif isinstance(item, Lt):
            high = item.lt - 1 if isinstance(item.lt, int) else item.lt
    return low, high


def _without_none(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def _strings(metadata: list[Any]) -> st.SearchStrategy[str]:
    low = _constraint([m for m in metadata if isinstance(m, MinLen)], "min_length") or 1
    high = _constraint([m for m in metadata if isinstance(m, MaxLen)], "max_length") or 12
    pattern = _constraint(metadata, "pattern")
    if pattern is None:
        return st.text(_TEXT, min_size=low, max_size=min(high, 12))
    return st.from_regex(re.compile(pattern), fullmatch=True).filter(
        lambda s: low <= len(s) <= high and s.isprintable() and s.strip() == s
    )


def strategy(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    """Values a schema field with this annotation and constraints accepts."""
    annotation = _without_none(annotation)
    origin = typing.get_origin(annotation)
    low, high = _bounds(metadata)
    if annotation is EmailStr:
        return st.from_regex(r"[a-z]{1,8}@example\.com", fullmatch=True)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from(list(annotation))
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(low, high)
    if annotation is float:
        return st.floats(low, high, allow_nan=False, allow_infinity=False, width=32)
    if annotation is Decimal:
        places = _constraint(metadata, "decimal_places")
        digits = _constraint(metadata, "max_digits")
        if digits is not None and places is not None:
            limit = Decimal(10) ** (digits - places) - 1
            high = limit if high is None else min(Decimal(high), limit)
        return st.decimals(low, high, places=places, allow_nan=False, allow_infinity=False)
    if annotation is str:
        return _strings(metadata)
    if annotation is date:
        return st.dates(date(1990, 1, 1), date(2100, 1, 1))
    if annotation is time:
        return st.times().map(lambda t: t.replace(microsecond=0))
    if annotation is datetime or getattr(annotation, "__name__", "") == "AwareDatetime":
        naive = st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1))
        return naive.map(lambda d: d.replace(microsecond=0, tzinfo=UTC))
    if annotation is timedelta:
        return st.timedeltas(timedelta(0), timedelta(days=900)).map(
            lambda d: d - timedelta(microseconds=d.microseconds)
        )
    if annotation is uuid.UUID:
        return st.uuids()
    if annotation is bytes:
        return st.binary(min_size=1, max_size=24)
    if origin is list:
        (item,) = typing.get_args(annotation) or (Any,)
        items = st.text(_TEXT, max_size=8) if item is str else _JSON_SCALARS
        return st.lists(items, min_size=1, max_size=3)
    if origin is dict or annotation is dict:
        return st.dictionaries(st.text(_TEXT, min_size=1, max_size=6), _JSON_SCALARS, min_size=1)
    if annotation is Any:
        return _JSON_SCALARS
    raise NotImplementedError(f"no sample strategy for {annotation!r}")


_POOL = 8
_DRAW = settings(
    database=None,
    derandomize=True,
    phases=[Phase.generate],
    max_examples=50,
    suppress_health_check=list(HealthCheck),
    deadline=None,
)


@cache
def _pool(table: str, name: str, info: FieldInfo) -> list[Any]:
    """Distinct values for one field, the same every run (the first examples hypothesis
    generates, without shrinking them)."""
    values = strategy(info.annotation, list(info.metadata))
    annotation = _without_none(info.annotation)
    if annotation is bool:
        return [True, False]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return list(annotation)
    pool = st.lists(values, min_size=_POOL, max_size=_POOL, unique_by=repr)
    drawn: list[Any] = find(pool, lambda _: True, settings=_DRAW)
    return drawn


class Samples:
    """Sample values per field, each different from the ones drawn before for that field."""

    def __init__(self) -> None:
        self._drawn: dict[tuple[str, str], int] = {}

    def value(self, table: str, name: str, info: FieldInfo) -> Any:
        count = self._drawn.get((table, name), 0)
        self._drawn[(table, name)] = count + 1
        pool = _pool(table, name, info)
        return pool[count % len(pool)]
