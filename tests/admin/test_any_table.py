"""The admin over the fixture app's table shapes: a tree, a client-chosen string key, a UUID
key, a BIGINT key referring to it, and a row of every column type - on both databases.

The generic round trip of every table is in test_every_table.py; these are the behaviours
particular to a shape: cycles refused, a chosen key kept on edit, related rows looked up by
keys of every type, and each kind of bad input an error next to its field.
"""

import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from sqlmodel import select

from backend.registry import registry
from tests.admin.conftest import AdminClient
from tests.admin.test_admin_http import field_errors
from tests.fixture_app.models import Bin, Currency, Node, Specimen, SpecimenKind, Warehouse

SQL_WORDS = re.compile(r"\b(INSERT INTO|UPDATE fx_|SELECT .* FROM|sqlalchemy|asyncpg|sqlite3)\b")


async def _add(app: FastAPI, *rows: Any) -> None:
    async with app.state.database.api_sessions() as session:
        session.add_all(rows)
        await session.commit()
        for row in rows:
            await session.refresh(row)


async def _get(app: FastAPI, model: type[Any], key: Any) -> Any:
    async with app.state.database.api_sessions() as session:
        return await session.get(model, key)


# -- trees -------------------------------------------------------------------------------------


async def _tree(app: FastAPI) -> tuple[Node, Node, Node]:
    """root > child > grandchild."""
    root = Node(name="root")
    await _add(app, root)
    child = Node(name="child", parent_id=root.id)
    await _add(app, child)
    grandchild = Node(name="grandchild", parent_id=child.id)
    await _add(app, grandchild)
    return root, child, grandchild


@pytest.mark.parametrize("new_parent", ["itself", "grandchild"])
async def test_a_node_cannot_move_under_itself(
    app: FastAPI, editor_client: AdminClient, new_parent: str
) -> None:
    assert registry.get("fx_nodes").tree == "parent_id"
    root, child, grandchild = await _tree(app)
    parent = child if new_parent == "itself" else grandchild
    response = await editor_client.post(
        f"/admin/node/edit/{child.id}", {"name": "moved", "parent": str(parent.id), "save": "Save"}
    )
    assert response.status_code == 400
    errors = field_errors(response.text)
    assert list(errors) == ["parent"]
    expected = "its own parent" if new_parent == "itself" else "grandchild is below child"
    assert expected in errors["parent"][0]
    assert not SQL_WORDS.search(response.text)
    stored = await _get(app, Node, child.id)
    assert (stored.name, stored.parent_id) == ("child", root.id)  # nothing written


async def test_a_node_moves_anywhere_else(app: FastAPI, editor_client: AdminClient) -> None:
    root, child, grandchild = await _tree(app)
    other = Node(name="other")
    await _add(app, other)
    moved = await editor_client.post(
        f"/admin/node/edit/{child.id}", {"name": "child", "parent": str(other.id), "save": "Save"}
    )
    assert moved.status_code == 302, field_errors(moved.text)
    assert (await _get(app, Node, child.id)).parent_id == other.id
    to_root = await editor_client.post(
        f"/admin/node/edit/{grandchild.id}", {"name": "grandchild", "parent": "", "save": "Save"}
    )
    assert to_root.status_code == 302, field_errors(to_root.text)
    assert (await _get(app, Node, grandchild.id)).parent_id is None
    # the parent is chosen by searching the same table
    lookup = await editor_client.http.get("/admin/node/ajax/lookup?name=parent&term=oth")
    assert [r["text"] for r in lookup.json()["results"]] == ["other"]
    page = await editor_client.http.get(f"/admin/node/edit/{child.id}")
    assert (
        'data-role="select2-ajax"' in page.text and "&#34;text&#34;: &#34;other&#34;" in page.text
    )


# -- keys of every type ---------------------------------------------------------------------------


async def test_a_chosen_string_key_is_written_on_create_and_kept_on_edit(
    app: FastAPI, editor_client: AdminClient
) -> None:
    form = await editor_client.http.get("/admin/currency/create")
    assert 'name="code"' in form.text
    bad = await editor_client.post(
        "/admin/currency/create", {"code": "eur", "name": "Euro", "save": "Save"}
    )
    assert bad.status_code == 400 and list(field_errors(bad.text)) == ["code"]
    created = await editor_client.post(
        "/admin/currency/create", {"code": "EUR", "name": "Euro", "save": "Save"}
    )
    assert created.status_code == 302, field_errors(created.text)
    again = await editor_client.post(
        "/admin/currency/create", {"code": "EUR", "name": "Euro again", "save": "Save"}
    )
    assert again.status_code == 400 and "must be unique" in field_errors(again.text)["code"][0]

    page = await editor_client.http.get("/admin/currency/edit/EUR")
    assert page.status_code == 200
    code = re.search(r'<input[^>]*name="code"[^>]*>', page.text)
    assert code is not None and "readonly" in code.group(0) and 'value="EUR"' in code.group(0)
    forged = {"code": "USD", "name": "Euro (EU)", "save": "Save"}
    assert (await editor_client.post("/admin/currency/edit/EUR", forged)).status_code == 302
    assert (await _get(app, Currency, "EUR")).name == "Euro (EU)"
    assert await _get(app, Currency, "USD") is None
    assert (await editor_client.http.get("/admin/currency/details/EUR")).status_code == 200


async def test_uuid_keys_in_urls_and_in_related_row_lookups(
    app: FastAPI, editor_client: AdminClient
) -> None:
    warehouse = Warehouse(code="AB-123", region="North")
    await _add(app, warehouse)
    base = f"/admin/warehouse/edit/{warehouse.id}"
    assert (await editor_client.http.get(base)).status_code == 200
    edited = await editor_client.post(
        base, {"code": "AB-123", "region": "South", "node": "", "save": "Save"}
    )
    assert edited.status_code == 302, field_errors(edited.text)
    assert (await _get(app, Warehouse, warehouse.id)).region == "South"
    assert (
        await editor_client.http.get(f"/admin/warehouse/edit/{uuid.uuid4()}")
    ).status_code == 404
    assert (await editor_client.http.get("/admin/warehouse/edit/not-a-uuid")).status_code == 404

    lookup = await editor_client.http.get("/admin/bin/ajax/lookup?name=warehouse&term=ab-1")
    assert lookup.json()["results"] == [{"id": str(warehouse.id), "text": "AB-123 (South)"}]
    bin_form = {"warehouse": str(warehouse.id), "label": "A1", "capacity": "5", "save": "Save"}
    created = await editor_client.post("/admin/bin/create", bin_form)
    assert created.status_code == 302, field_errors(created.text)
    async with app.state.database.api_sessions() as session:
        [stored] = (await session.exec(select(Bin))).all()
    assert stored.warehouse_id == warehouse.id and stored.id is not None
    missing = await editor_client.post(
        "/admin/bin/create", {**bin_form, "warehouse": str(uuid.uuid4())}
    )
    assert missing.status_code == 400 and list(field_errors(missing.text)) == ["warehouse"]
    bad = await editor_client.post("/admin/bin/create", {**bin_form, "warehouse": "nope"})
    assert bad.status_code == 400 and list(field_errors(bad.text)) == ["warehouse"]


# -- every column type -----------------------------------------------------------------------------


def _specimen_form(**changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "slug": "quartz-1",
        "country_code": "BR",
        "notes": "",
        "count": "3",
        "ratio": "0.25",
        "amount": "12.500",
        "found_on": "2026-03-04",
        "opens_at": "08:30:15",
        "seen_at": "2026-03-04 05:06:07",
        "duration": "1 day, 2:30:00",
        "token": str(uuid.UUID(int=7)),
        "kind": "mineral",
        "grade": "high",
        "attributes": '{"colour": "clear", "hard": 7}',
        "readings": "[1, 2.5, null]",
        "labels": '["rock", "gem"]',
        "photo": "AAEC/w==",
        "source": "field",
        "currency": "",
        "bin": "",
        "save": "Save",
    }
    form.update(changes)
    return form


async def _specimens(app: FastAPI) -> list[Specimen]:
    async with app.state.database.api_sessions() as session:
        return list((await session.exec(select(Specimen))).all())


async def test_every_column_type_is_written_from_its_form_field(
    app: FastAPI, editor_client: AdminClient
) -> None:
    currency = Currency(code="BRL", name="Real")
    await _add(app, currency)
    page = await editor_client.http.get("/admin/specimen/create")
    assert page.status_code == 200
    kind = re.search(r'<select[^>]*name="kind".*?</select>', page.text, re.S)
    assert kind is not None and 'value="mineral"' in kind.group(0)
    grade = re.search(r'<select[^>]*name="grade".*?</select>', page.text, re.S)
    assert grade is not None and 'value="high"' in grade.group(0)
    response = await editor_client.post("/admin/specimen/create", _specimen_form(currency="BRL"))
    assert response.status_code == 302, field_errors(response.text)
    [row] = await _specimens(app)
    assert row.found_on == date(2026, 3, 4) and str(row.opens_at) == "08:30:15"
    assert row.amount == Decimal("12.5") and row.ratio == 0.25 and row.kind is SpecimenKind.mineral
    assert row.attributes == {"colour": "clear", "hard": 7} and row.readings == [1, 2.5, None]
    assert row.labels == ["rock", "gem"] and row.photo == b"\x00\x01\x02\xff"
    assert str(row.duration) == "1 day, 2:30:00" and row.currency_code == "BRL"
    assert row.notes is None and row.bin_id is None

    edit = await editor_client.http.get(f"/admin/specimen/edit/{row.id}")
    assert edit.status_code == 200
    for shown in ("AAEC/w==", "08:30:15", "1 day, 2:30:00", "[&#34;rock&#34;, &#34;gem&#34;]"):
        assert shown in edit.text, shown
    details = await editor_client.http.get(f"/admin/specimen/details/{row.id}")
    assert details.status_code == 200 and "AAEC/w==" in details.text
    exported = await editor_client.http.get("/admin/specimen/export/json")
    [record] = exported.json()
    assert record["photo"] == "AAEC/w==" and record["kind"] == "mineral"
    assert record["amount"] == "12.500" and record["attributes"] == {"colour": "clear", "hard": 7}
    assert record["labels"] == ["rock", "gem"] and record["currency_code"] == "BRL"

    kept = await editor_client.post(
        f"/admin/specimen/edit/{row.id}",
        _specimen_form(currency="BRL", labels="[]", readings="", photo="", count="4"),
    )
    assert kept.status_code == 302, field_errors(kept.text)
    [row] = await _specimens(app)
    assert row.labels == [] and row.readings is None and row.photo is None and row.count == 4


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("country_code", "br", "should match pattern"),
        ("slug", "Not A Slug", "should match pattern"),
        ("kind", "vegetable", "Not a valid choice"),
        ("grade", "medium", "Not a valid choice"),
        ("count", str(2**31), "less than or equal to"),
        ("count", "-1", "greater than or equal to 0"),
        ("amount", "123456789012.5", "digits"),
        ("ratio", "1e12", "less than or equal to"),
        ("found_on", "2026-02-30", "Not a valid date"),
        ("opens_at", "25:00", "Not a valid time"),
        ("seen_at", "yesterday", "Not a valid datetime"),
        ("duration", "soon", "Not a valid duration"),
        ("token", "not-a-uuid", "Invalid UUID"),
        ("attributes", '{"colour": }', "Invalid JSON: Expecting value (line 1, column 12)"),
        ("attributes", "[1, 2]", "valid dictionary"),
        ("labels", '[1, {"a": 2}]', "valid string"),
        ("photo", "not base64!", "Not valid base64"),
        ("currency", "XXX", "No fx_currencies row has code XXX."),
    ],
)
async def test_bad_values_are_errors_next_to_their_field(
    app: FastAPI, editor_client: AdminClient, field: str, value: str, message: str
) -> None:
    response = await editor_client.post("/admin/specimen/create", _specimen_form(**{field: value}))
    assert response.status_code == 400
    errors = field_errors(response.text)
    assert list(errors) == [field], errors
    assert message in " ".join(errors[field])
    assert not SQL_WORDS.search(response.text)
    assert await _specimens(app) == []


async def test_saving_a_row_keeps_the_sub_second_part_of_its_datetimes(
    app: FastAPI, editor_client: AdminClient
) -> None:
    seen = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    specimen = Specimen(
        slug="opal",
        country_code="AU",
        amount=Decimal(1),
        found_on=date(2026, 1, 1),
        kind=SpecimenKind.mineral,
        seen_at=seen,
    )
    await _add(app, specimen)
    page = await editor_client.http.get(f"/admin/specimen/edit/{specimen.id}")
    assert 'value="2026-03-04 05:06:07"' in page.text  # shown to the second
    form = _specimen_form(slug="opal", country_code="AU", seen_at="2026-03-04 05:06:07")
    saved = await editor_client.post(f"/admin/specimen/edit/{specimen.id}", form)
    assert saved.status_code == 302, field_errors(saved.text)
    assert (await _get(app, Specimen, specimen.id)).seen_at == seen
    moved = await editor_client.post(
        f"/admin/specimen/edit/{specimen.id}", {**form, "seen_at": "2026-03-04 05:06:08"}
    )
    assert moved.status_code == 302
    assert (await _get(app, Specimen, specimen.id)).seen_at == datetime(
        2026, 3, 4, 5, 6, 8, tzinfo=UTC
    )
