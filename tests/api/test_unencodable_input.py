"""Input JSON cannot hold, or Python's JSON holds too well: NaN, Infinity, 1e999, lone
surrogates, bytes that are not UTF-8, and nesting at any depth. Each is a 4xx whose body is
valid JSON naming the field or parameter; none is stored, none is a 500 on write or read."""

import json
import math
from decimal import Decimal
from typing import Any

import pytest
from httpx import AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.crud.validation_errors import MAX_ECHO_DEPTH, json_safe
from backend.registry import registry
from backend.writes.errors import WriteError
from backend.writes.values import MAX_VALUE_DEPTH, ColumnValues
from tests.api.conftest import Rows

JSON = {"content-type": "application/json"}
NON_FINITE = {"NaN": "NaN", "-Infinity": "-Infinity", "1e999": "Infinity"}


def strict_json(response: Response) -> Any:
    """The body as RFC 8259 JSON: no NaN or Infinity, valid UTF-8."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(response.content.decode("utf-8"), parse_constant=refuse)


def with_raw(payload: dict[str, Any], field: str, literal: str) -> str:
    """`payload` as JSON text with `field` set to the JSON text `literal`."""
    return json.dumps({**payload, field: "\x00MARK"}).replace('"\\u0000MARK"', literal)


async def post_raw(client: AsyncClient, headers: dict[str, str], body: str | bytes) -> Response:
    return await client.post("/api/fx_specimens", content=body, headers={**headers, **JSON})


@pytest.mark.parametrize("literal", list(NON_FINITE))
@pytest.mark.parametrize("field", ["ratio", "count", "amount"])
async def test_a_non_finite_number_in_a_body_is_a_422_echoing_it_as_text(
    client: AsyncClient, admin: dict[str, str], rows: Rows, field: str, literal: str
) -> None:
    payload = await rows.payload("fx_specimens")
    response = await post_raw(client, admin, with_raw(payload, field, literal))
    assert response.status_code == 422, response.text
    (error,) = strict_json(response)["detail"]
    assert error["loc"] == ["body", field]
    assert error["input"] == NON_FINITE[literal]


@pytest.mark.parametrize("literal", list(NON_FINITE))
async def test_a_non_finite_number_in_a_json_column_is_refused_naming_it(
    client: AsyncClient, admin: dict[str, str], rows: Rows, literal: str
) -> None:
    payload = await rows.payload("fx_specimens")
    for field, value in [("attributes", '{"a": [1, %s]}'), ("readings", "[1, %s]")]:
        response = await post_raw(client, admin, with_raw(payload, field, value % literal))
        assert response.status_code == 422, response.text
        assert strict_json(response)["detail"] == [
            {"type": "value_error", "loc": ["body", field], "msg": "must be a finite number"}
        ]
    listed = await client.get("/api/fx_specimens", params={"slug": payload["slug"]}, headers=admin)
    assert listed.json() == []


def test_the_writer_refuses_non_finite_numbers_for_every_surface() -> None:
    """The admin and the loader write through the same checks: a float column without bounds
    in its schema (here, the check called directly) still refuses them."""
    values = ColumnValues(registry.get("fx_specimens"))
    for bad in (math.nan, math.inf, -math.inf, Decimal("NaN"), Decimal("-Infinity")):
        with pytest.raises(WriteError) as refused:
            values.check({"ratio": bad}, creating=False)
        assert [(p.field, p.message) for p in refused.value.problems] == [
            ("ratio", "must be a finite number")
        ]
    values.check({"ratio": 1.5, "attributes": {"a": [0.5, -2]}}, creating=False)


async def test_a_lone_surrogate_is_a_422_echoing_it_escaped(
    client: AsyncClient, admin: dict[str, str], rows: Rows
) -> None:
    payload = await rows.payload("fx_specimens")
    response = await post_raw(client, admin, with_raw(payload, "slug", '"a\\ud800"'))
    assert response.status_code == 422
    (error,) = strict_json(response)["detail"]
    # the body is read as strict JSON, which takes no lone surrogate: the body as a whole is
    # refused (the query's echo of one is tested apart)
    assert (error["loc"], error["type"]) == (["body"], "json_invalid")


async def test_a_body_that_is_not_utf8_is_a_422_in_valid_json(
    client: AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/api/fx_specimens", content=b"\xff\xfe", headers={**admin, "content-type": "text/plain"}
    )
    assert response.status_code == 422
    assert strict_json(response)["detail"][0]["input"] == "\\xff\\xfe"


@pytest.mark.parametrize(
    ("raw", "field", "echoed"),
    [
        ('{"ratio": NaN}', "ratio", "NaN"),
        ('{"ratio": 1e999}', "ratio", "Infinity"),
        ('{"count": -Infinity}', "count", "-Infinity"),
        ('{"slug": "\\ud800"}', "slug", "\\ud800"),
    ],
)
async def test_a_filter_echoing_what_json_cannot_hold_is_a_422(
    client: AsyncClient, admin: dict[str, str], raw: str, field: str, echoed: str
) -> None:
    response = await client.get("/api/fx_specimens", params={"filter": raw}, headers=admin)
    assert response.status_code == 422
    (error,) = strict_json(response)["detail"]
    assert error["loc"] == ["query", "filter", field]
    assert error["input"] == echoed


async def test_a_body_nested_at_any_depth_is_a_clean_4xx(
    client: AsyncClient, admin: dict[str, str], rows: Rows
) -> None:
    payload = await rows.payload("fx_specimens")
    # The column's own value is the first level: MAX_VALUE_DEPTH in all is stored.
    inner = MAX_VALUE_DEPTH - 1
    deepest = {**payload, "attributes": {"a": json.loads("[" * inner + "]" * inner)}}
    stored = await client.post("/api/fx_specimens", json=deepest, headers=admin)
    assert stored.status_code == 201, stored.text
    read = await client.get(f"/api/fx_specimens/{stored.json()['id']}", headers=admin)
    assert strict_json(read)["attributes"] == deepest["attributes"]

    for depth in (MAX_VALUE_DEPTH, 255, 300, 900, 5000, 100_000):
        nested = "[" * depth + "]" * depth
        for field, value in [("attributes", '{"a": ' + nested + "}"), ("count", nested)]:
            response = await post_raw(client, admin, with_raw(payload, field, value))
            assert response.status_code in (400, 422), (depth, field, response.text[:200])
            if response.status_code == 422:
                error = strict_json(response)["detail"][0]
                # deeper than the JSON parser goes: the body as a whole is refused
                assert error["loc"] == ["body", field] or (
                    error["loc"] == ["body"] and error["type"] == "json_invalid"
                ), error


async def test_a_non_finite_number_stored_by_other_means_reads_as_json(
    client: AsyncClient, admin: dict[str, str], rows: Rows, connection: AsyncConnection
) -> None:
    """A float column the database filled with Infinity (SQL, another program): reads answer
    valid JSON (null for it), never a 500."""
    created = await rows.create("fx_specimens")
    await connection.execute(
        text("UPDATE fx_specimens SET ratio = :value WHERE id = :id"),
        {"value": math.inf, "id": created["id"]},
    )
    one = await client.get(f"/api/fx_specimens/{created['id']}", headers=admin)
    assert one.status_code == 200
    assert strict_json(one)["ratio"] is None
    listed = await client.get("/api/fx_specimens", headers=admin)
    assert listed.status_code == 200
    strict_json(listed)


def test_json_safe_makes_any_echo_writable() -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    safe = json_safe({"input": deep, "n": [math.nan, math.inf, -math.inf, 1.5, 10**5000]})
    text_ = json.dumps(safe, allow_nan=False)
    assert '"..."' in text_
    assert text_.count("[") <= MAX_ECHO_DEPTH + 1
    assert safe["n"][:4] == ["NaN", "Infinity", "-Infinity", 1.5]
    assert safe["n"][4].startswith("<an integer of")
    assert json_safe({"\udcff": b"\xff", "d": Decimal("1.50"), "e": ValueError("x")}) == {
        "\\udcff": "\\xff",
        "d": 1.5,
        "e": {},
    }
