"""The admin meets the same limits as the API: a form over MAX_BODY_BYTES is a plain 413, and a
number that is not finite is refused next to its field, never stored."""

import pytest
from fastapi import FastAPI

from tests.admin.conftest import AdminClient
from tests.admin.test_admin_http import field_errors
from tests.admin.test_any_table import _specimen_form, _specimens
from tests.admin.test_writes import _catalog, assert_clean, entries, product_form


@pytest.mark.parametrize("price", ["NaN", "-Infinity", "1e999"])
async def test_a_number_that_is_not_finite_is_refused_next_to_its_field(
    app: FastAPI, editor_client: AdminClient, price: str
) -> None:
    category, _, _ = await _catalog(app)
    response = await editor_client.post(
        "/admin/product/create", product_form(category, price=price)
    )
    assert response.status_code == 400
    assert list(field_errors(response.text)) == ["price"]
    assert_clean(response.text)
    assert await entries(app, "products") == []


async def test_a_signed_in_form_over_the_limit_is_a_plain_413(
    app: FastAPI, editor_client: AdminClient
) -> None:
    category, _, _ = await _catalog(app)
    limit = app.state.settings.max_body_bytes
    form = product_form(category, description="x" * limit)
    response = await editor_client.post("/admin/product/create", form)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == f"The form sent is larger than the limit of {limit} bytes.\n"
    assert await entries(app, "products") == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("attributes", '{"a": NaN}', "inite number"),
        ("readings", "[1, -Infinity]", "inite number"),
        ("readings", "[1e999]", "inite number"),
        ("attributes", '{"a": ' + "[" * 64 + "]" * 64 + "}", "at most 64 levels"),
        ("attributes", '{"a": ' + "[" * 900 + "]" * 900 + "}", "at most 64 levels"),
        ("attributes", '{"a": ' + "[" * 5000 + "]" * 5000 + "}", "at most 64 levels"),
    ],
    ids=["nan", "-infinity", "1e999", "deep-64", "deep-900", "deep-5000"],
)
async def test_json_fields_refuse_non_finite_numbers_and_deep_nesting_next_to_the_field(
    app: FastAPI, editor_client: AdminClient, field: str, value: str, message: str
) -> None:
    response = await editor_client.post("/admin/specimen/create", _specimen_form(**{field: value}))
    assert response.status_code == 400
    errors = field_errors(response.text)
    assert list(errors) == [field], errors
    assert message in " ".join(errors[field])
    assert_clean(response.text)
    assert await _specimens(app) == []
