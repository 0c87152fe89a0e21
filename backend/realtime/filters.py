"""A subscription's `field=value` / `field__op=value` filters, evaluated against each event.

The list route turns the same parameters into SQL; a feed has one event and many
subscribers, so here they are checked in Python against the event's record (for a delete:
the values the row held). Fields, operators and values are parsed exactly as the list route
parses them (`backend.crud.query`: `field_specs`, `FieldSpec.parse`, the operators of each
kind of column), so a filter the list route refuses is refused here with the same message;
`q=` searches the resource's search fields.
"""

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError

from backend.crud.query import MAX_IN_VALUES, FieldSpec, ParameterError, check_text, field_specs
from backend.registry import ResourceOptions


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter: the record matches when `test(its field's value)` holds."""

    field: str
    test: Callable[[Any], bool]

    def matches(self, values: Mapping[str, Any]) -> bool:
        try:
            return bool(self.test(values.get(self.field)))
        except (ParameterError, TypeError, ValueError):
            return False  # a stored value the filter's type cannot compare: no match


def parse_filters(
    resource: ResourceOptions, params: Iterable[tuple[str, str]], dialect: str
) -> list[Condition]:
    """The conditions of `params`; a 422 naming each parameter that is wrong."""
    specs = field_specs(resource)
    conditions: list[Condition] = []
    errors: list[dict[str, Any]] = []
    for key, raw in params:
        try:
            if key == "q":
                conditions.append(_search(resource, specs, raw))
                continue
            name, _, operator = key.partition("__")
            spec = specs.get(name)
            if spec is None:
                known = ", ".join(sorted(specs))
                raise ParameterError(f"unknown field {name!r}; filterable fields: {known}")
            operator = operator or "eq"
            available = spec.operators_on(dialect)
            if operator not in available:
                if operator in spec.operators:
                    raise ParameterError(f"{name}__{operator} is only available on PostgreSQL")
                raise ParameterError(
                    f"unknown operator {operator!r} for {name}; use one of " + ", ".join(available)
                )
            conditions.append(Condition(name, _test(spec, operator, raw)))
        except ParameterError as exc:
            message = exc.msg if exc.msg.startswith(("unknown", key)) else f"{key}: {exc.msg}"
            errors.append({"type": "value_error", "loc": ("query", key), "msg": message})
    if errors:
        raise RequestValidationError(errors)
    return conditions


def _test(spec: FieldSpec, operator: str, raw: str) -> Callable[[Any], bool]:
    """The test of one `field__operator=raw` (ParameterError when `raw` is not a value)."""
    if operator == "isnull":
        flag = raw.strip().lower()
        if flag not in ("true", "false", "1", "0", "yes", "no"):
            raise ParameterError("isnull takes true or false")
        wanted = flag in ("true", "1", "yes")
        return lambda value: (value is None) == wanted
    if operator == "has_key":
        key = check_text(raw)
        return lambda value: isinstance(value, dict) and key in value
    if operator == "contains":
        return _contains(spec, raw)
    if operator == "in":
        items = [part.strip() for part in raw.split(",")] if raw.strip() else []
        if len(items) > MAX_IN_VALUES:
            raise ParameterError(f"at most {MAX_IN_VALUES} values")
        wanted_values = [spec.parse(item) for item in items]
        if spec.link is not None:
            return lambda ids: bool(ids) and any(v in ids for v in wanted_values)
        return lambda value: value is not None and spec.parse(value) in wanted_values
    wanted_value = spec.parse(raw)
    if spec.link is not None:  # `tag_ids=3`: the row links to 3
        return lambda ids: bool(ids) and wanted_value in ids
    if operator in ("like", "ilike"):
        if (len(raw) - len(raw.rstrip("\\"))) % 2:
            raise ParameterError("a pattern cannot end with the escape character \\")
        pattern = _like_pattern(raw, case_insensitive=operator == "ilike")
        return lambda value: value is not None and pattern.fullmatch(str(value)) is not None
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "eq": lambda a, b: bool(a == b),
        "ne": lambda a, b: bool(a != b),
        "gt": lambda a, b: bool(a > b),
        "gte": lambda a, b: bool(a >= b),
        "lt": lambda a, b: bool(a < b),
        "lte": lambda a, b: bool(a <= b),
    }
    relation = compare[operator]
    if operator == "ne":  # as the list route: a null value is not equal to anything
        return lambda value: value is None or relation(spec.parse(value), wanted_value)
    return lambda value: value is not None and relation(spec.parse(value), wanted_value)


def _contains(spec: FieldSpec, raw: str) -> Callable[[Any], bool]:
    """PostgreSQL's `@>`: a JSON value containing another, or an array every listed item."""
    if spec.kind("postgresql") == "array":
        items = [part.strip() for part in raw.split(",")] if raw.strip() else []
        return lambda value: (
            isinstance(value, list)
            and all(any(str(have) == item for have in value) for item in items)
        )
    try:
        wanted = json.loads(check_text(raw))
    except ValueError:
        raise ParameterError("contains takes a JSON value") from None
    if not isinstance(wanted, dict | list):
        raise ParameterError("contains takes a JSON object or array")
    return lambda value: _json_contains(value, wanted)


def _json_contains(have: Any, wanted: Any) -> bool:
    """JSONB containment: every key and item of `wanted` is found in `have`."""
    if isinstance(wanted, dict):
        return isinstance(have, dict) and all(
            key in have and _json_contains(have[key], item) for key, item in wanted.items()
        )
    if isinstance(wanted, list):
        if not isinstance(have, list):
            return False
        return all(any(_json_contains(h, item) for h in have) for item in wanted)
    return bool(have == wanted)


def _like_pattern(pattern: str, *, case_insensitive: bool) -> re.Pattern[str]:
    """SQL LIKE (`%` any run, `_` one character, `\\` escapes) as a regular expression."""
    parts, escaped = [], False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


def _search(resource: ResourceOptions, specs: Mapping[str, FieldSpec], raw: str) -> Condition:
    """`q=`: every word appears (any case) in one of the resource's search fields."""
    words = [word.lower() for word in check_text(raw).split()]
    fields = [name for name in resource.search_fields if name in specs and specs[name].is_text]
    if words and not fields:
        raise ParameterError(f"{resource.name} has no searchable fields")
    return SearchCondition("q", _never, tuple(fields), tuple(words))


def _never(_value: Any) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class SearchCondition(Condition):
    """`q=`: reads several fields of the record."""

    fields: tuple[str, ...] = ()
    words: tuple[str, ...] = ()

    def matches(self, values: Mapping[str, Any]) -> bool:
        texts = [str(values.get(name) or "").lower() for name in self.fields]
        return all(any(word in text for text in texts) for word in self.words)


def matches_all(conditions: Iterable[Condition], values: Mapping[str, Any] | None) -> bool:
    """Whether the values pass every condition (no values: only when there are none)."""
    conditions = tuple(conditions)
    if not conditions:
        return True
    if values is None:
        return False
    return all(condition.matches(values) for condition in conditions)
