"""One contract every generated resource keeps, checked for every registered table.

Parametrized over the registry: a newly registered table is covered without writing a test.
Rows are built from the derived schemas by `Rows` (tests/api/conftest.py).
"""

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
from httpx import AsyncClient, Response

from backend.config import Settings
from backend.crud.query import field_specs
from backend.crud.schemas import derive_schemas, read_only_fields
from backend.models import Role
from backend.registry import ResourceOptions, registry
from tests.api.conftest import Account, Rows, writer

MISSING_ID = 2**31 - 1


def over(
    applies: Callable[[ResourceOptions], bool] = lambda resource: True,
) -> pytest.MarkDecorator:
    """Parametrize a contract test over every registered resource it applies to."""
    return pytest.mark.parametrize("name", [r.name for r in registry if applies(r)])


def refers_to_other_rows(resource: ResourceOptions) -> bool:
    return any(c.foreign_keys for c in resource.table.columns) or bool(
        derive_schemas(resource).many_to_many
    )


def is_referenced(resource: ResourceOptions) -> bool:
    return any(
        fk.column.table is resource.table
        for child in registry
        for column in child.table.columns
        for fk in column.foreign_keys
    )


def hides_columns(resource: ResourceOptions) -> bool:
    return bool(
        set(resource.table.columns.keys()) - set(derive_schemas(resource).read.model_fields)
    )


def is_searchable(resource: ResourceOptions) -> bool:
    return any(field in field_specs(resource) for field in resource.search_fields)


def has_decimals(resource: ResourceOptions) -> bool:
    return any(spec.python_type is Decimal for spec in field_specs(resource).values())


def comparable(value: Any) -> Any:
    """A JSON value in a form that compares as the database orders it."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
        try:
            if value.replace(".", "", 1).lstrip("-").isdigit():
                return Decimal(value)
        except InvalidOperation:
            pass
    return value


def same(sent: Any, shown: Any) -> bool:
    return bool(comparable(sent) == comparable(shown) or sent == shown)


def ids(response: Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()]


def query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def errors_at(response: Response, *loc: str | int) -> list[dict[str, Any]]:
    """The errors of a FastAPI-shaped 4xx body whose `loc` starts with `loc`."""
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return [e for e in detail if tuple(e["loc"][: len(loc)]) == loc]


async def three(rows: Rows, name: str) -> list[dict[str, Any]]:
    return [await rows.create(name) for _ in range(3)]


def resource_of(name: str) -> ResourceOptions:
    return registry.get(name)


# Create / read -----------------------------------------------------------------------------


@over()
async def test_create_returns_201_location_and_the_record(
    name: str, client: AsyncClient, rows: Rows, accounts: dict[Role, Account]
) -> None:
    resource = resource_of(name)
    body = await rows.payload(name)
    response = await client.post(f"/api/{name}", json=body, headers=writer(resource, accounts))
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"].endswith(f"/api/{name}/{created['id']}")
    for field, value in body.items():
        if field in created:
            assert same(value, created[field]), (field, value, created[field])
    fetched = await client.get(response.headers["location"], headers=writer(resource, accounts))
    assert fetched.status_code == 200
    assert fetched.json() == created


@over()
async def test_missing_id_is_404_on_every_item_route(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    body = await rows.payload(name)
    url = f"/api/{name}/{MISSING_ID}"
    for response in (
        await client.get(url, headers=admin),
        await client.put(url, json=body, headers=admin),
        await client.patch(url, json={}, headers=admin),
        await client.delete(url, headers=admin),
    ):
        assert response.status_code == 404, response.text
        assert str(MISSING_ID) in response.json()["detail"]
    bad = await client.get(f"/api/{name}/not-a-number", headers=admin)
    assert bad.status_code == 422
    assert errors_at(bad, "path", "id")
    huge = await client.get(f"/api/{name}/{2**40}", headers=admin)
    assert huge.status_code == 422


@over()
async def test_invalid_body_is_a_fastapi_shaped_422(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    create = derive_schemas(resource_of(name)).create
    required = [f for f, info in create.model_fields.items() if info.is_required()]
    response = await client.post(f"/api/{name}", json={}, headers=admin)
    assert response.status_code == 422
    assert {e["loc"][1] for e in errors_at(response, "body")} == set(required)
    body = await rows.payload(name)
    extra = await client.post(f"/api/{name}", json={**body, "no_such_field": 1}, headers=admin)
    assert extra.status_code == 422
    assert errors_at(extra, "body", "no_such_field")
    nul = next(
        f for f, v in body.items() if isinstance(v, str) and "@" not in v and f != "password"
    )
    with_nul = await client.post(f"/api/{name}", json={**body, nul: "a\x00b"}, headers=admin)
    assert with_nul.status_code == 422, with_nul.text


# Replace / update / delete -------------------------------------------------------------------


@over()
async def test_put_replaces_and_ignores_read_only_fields_sent_back(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    original = await rows.create(name)
    replacement = await rows.payload(name)
    sent_back = {k: v for k, v in original.items() if k in read_only_fields(resource)}
    body = {**replacement, **sent_back, "id": original["id"]}
    response = await client.put(f"/api/{name}/{original['id']}", json=body, headers=admin)
    assert response.status_code == 200, response.text
    replaced = response.json()
    assert replaced["id"] == original["id"]
    for field, value in replacement.items():
        if field in replaced:
            assert same(value, replaced[field]), field
    if "created_at" in original:
        assert same(original["created_at"], replaced["created_at"])
    # Replace means every required field: leaving one out is a 422 naming it.
    create = derive_schemas(resource).create
    required = next(f for f, info in create.model_fields.items() if info.is_required())
    partial = {k: v for k, v in body.items() if k != required}
    missing = await client.put(f"/api/{name}/{original['id']}", json=partial, headers=admin)
    assert missing.status_code == 422
    assert errors_at(missing, "body", required)


@over()
async def test_patch_changes_only_the_fields_sent(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    original = await rows.create(name)
    fresh = await rows.payload(name)
    foreign_keys = {c.name for c in resource.table.columns if c.foreign_keys}
    field = next(
        f
        for f in derive_schemas(resource).update.model_fields
        if f in original and f not in foreign_keys and original[f] != fresh.get(f)
    )
    response = await client.patch(
        f"/api/{name}/{original['id']}", json={field: fresh[field]}, headers=admin
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert same(fresh[field], patched[field])
    for other, value in original.items():
        if other not in (field, "updated_at"):
            assert patched[other] == value, other
    required = next(
        f
        for f in resource.table.columns.keys()
        if f in original
        and f not in read_only_fields(resource)
        and not resource.table.columns[f].nullable
    )
    null = await client.patch(f"/api/{name}/{original['id']}", json={required: None}, headers=admin)
    assert null.status_code == 422
    assert errors_at(null, "body", required)


@over()
async def test_delete_returns_the_deleted_record(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    row = await rows.create(name)
    response = await client.delete(f"/api/{name}/{row['id']}", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == row
    assert (await client.get(f"/api/{name}/{row['id']}", headers=admin)).status_code == 404


@over()
async def test_delete_all_is_off_unless_the_table_enables_it(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    await rows.create(name)
    response = await client.delete(f"/api/{name}", headers=admin)
    if resource_of(name).delete_all:
        assert response.status_code == 200
        assert response.json()["deleted"] >= 1
    else:
        assert response.status_code == 405


# Integrity: unique, foreign keys -------------------------------------------------------------


def unique_keys(resource: ResourceOptions) -> list[tuple[str, ...]]:
    from sqlalchemy import UniqueConstraint

    keys: list[tuple[str, ...]] = [(c.name,) for c in resource.table.columns if c.unique]
    keys += [
        tuple(c.name for c in constraint.columns)
        for constraint in resource.table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    return keys


@over(lambda resource: bool(unique_keys(resource)))
async def test_unique_violations_are_409_naming_the_fields(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    keys = unique_keys(resource)
    for key in keys:
        first = await rows.create(name)
        body = await rows.payload(name)
        duplicate = {**body, **{field: first[field] for field in key}}
        response = await client.post(f"/api/{name}", json=duplicate, headers=admin)
        assert response.status_code == 409, response.text
        detail = response.json()["detail"][0]
        assert detail["type"] == "unique"
        assert set(key) <= set(detail["loc"]), detail
        assert all(field in detail["msg"] for field in key)
        second = await rows.create(name)
        patched = await client.patch(
            f"/api/{name}/{second['id']}",
            json={field: first[field] for field in key},
            headers=admin,
        )
        assert patched.status_code == 409, patched.text


@over(refers_to_other_rows)
async def test_references_to_missing_rows_are_409_naming_the_field(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    fields = [c.name for c in resource.table.columns if c.foreign_keys]
    fields += [link.field for link in derive_schemas(resource).many_to_many]
    for field in fields:
        body = await rows.payload(name)
        body[field] = [MISSING_ID] if isinstance(body[field], list) else MISSING_ID
        response = await client.post(f"/api/{name}", json=body, headers=admin)
        assert response.status_code == 409, response.text
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", field]
        assert detail["type"] == "foreign_key"
        assert field in detail["msg"] and str(MISSING_ID) in detail["msg"]


@over(is_referenced)
async def test_deleting_a_referenced_row_is_409_or_cascades(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    children = [
        (child, column)
        for child in registry
        for column in child.table.columns
        for fk in column.foreign_keys
        if fk.column.table is resource.table
    ]
    for child, column in children:
        parent = await rows.create(name)
        kid = await rows.create(child.name, **{column.name: parent["id"]})
        response = await client.delete(f"/api/{name}/{parent['id']}", headers=admin)
        fk = next(iter(column.foreign_keys))
        if (fk.ondelete or "").upper() == "CASCADE":
            assert response.status_code == 200, response.text
            gone = await client.get(f"/api/{child.name}/{kid['id']}", headers=admin)
            assert gone.status_code == 404
        else:
            assert response.status_code == 409, response.text
            detail = response.json()["detail"][0]
            assert detail["loc"] == ["path", "id"]
            assert f"{child.table.name}.{column.name}" in detail["msg"]
            still = await client.get(f"/api/{name}/{parent['id']}", headers=admin)
            assert still.status_code == 200


# Listing: paging, counts, sorting, filtering ---------------------------------------------------


@over()
async def test_paging_counts_and_headers(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    made = await three(rows, name)
    only = "id__in=" + ",".join(str(r["id"]) for r in made)
    page = await client.get(f"/api/{name}?{only}&limit=2", headers=admin)
    assert ids(page) == [r["id"] for r in made[:2]]
    assert page.headers["x-total-count"] == "3"
    assert page.headers["content-range"] == f"{name} 0-1/3"
    rest = await client.get(f"/api/{name}?{only}&limit=2&skip=2", headers=admin)
    assert ids(rest) == [made[2]["id"]]
    assert rest.headers["content-range"] == f"{name} 2-2/3"
    beyond = await client.get(f"/api/{name}?{only}&skip=10", headers=admin)
    assert ids(beyond) == []
    assert beyond.headers["content-range"] == f"{name} */3"
    everything = await client.get(f"/api/{name}", headers=admin)
    assert int(everything.headers["x-total-count"]) >= 3


@over()
async def test_page_size_bounds_are_422s(
    name: str, client: AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    url = f"/api/{name}"
    for query, parameter in (
        ("limit=0", "limit"),
        (f"limit={settings.page_size_max + 1}", "limit"),
        ("skip=-1", "skip"),
        (f"range=[0,{settings.page_size_max}]", "range"),
        ("range=[5,2]", "range"),
        ("range=oops", "range"),
        ("range=[0,1]&limit=5", "range"),
    ):
        response = await client.get(f"{url}?{query}", headers=admin)
        assert response.status_code == 422, query
        assert errors_at(response, "query", parameter), (query, response.json())
    assert (
        await client.get(f"{url}?limit={settings.page_size_max}", headers=admin)
    ).status_code == 200


@over()
async def test_sorting_on_every_column_is_stable(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    made = await three(rows, name)
    made.append(await rows.create(name))
    only = "id__in=" + ",".join(str(r["id"]) for r in made)

    def expected(column: str, descending: bool) -> list[int]:
        def key(row: dict[str, Any]) -> tuple[Any, ...]:
            value = comparable(row[column])
            return (value is None, value) if value is not None else (True, 0)

        by_id = sorted(made, key=lambda r: r["id"])
        ordered = sorted(by_id, key=key, reverse=descending)
        if descending:  # ties still by ascending id
            groups: dict[Any, list[int]] = {}
            for row in ordered:
                groups.setdefault(key(row), []).append(row["id"])
            return [i for group in groups.values() for i in sorted(group)]
        return [r["id"] for r in ordered]

    for column, spec in field_specs(resource).items():
        if spec.column is None:
            continue
        for descending in (False, True):
            sort = f"-{column}" if descending else column
            got = ids(await client.get(f"/api/{name}?{only}&sort={sort}", headers=admin))
            assert got == expected(column, descending), (column, descending)
            react = json.dumps([column, "DESC" if descending else "ASC"])
            same_order = await client.get(f"/api/{name}?{only}&sort={react}", headers=admin)
            assert ids(same_order) == got
    unknown = await client.get(f"/api/{name}?sort=-no_such_column", headers=admin)
    assert unknown.status_code == 422
    assert "no_such_column" in errors_at(unknown, "query", "sort")[0]["msg"]


@over()
async def test_equality_filter_on_every_field(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    made = await three(rows, name)
    target = made[0]
    only = "id__in=" + ",".join(str(r["id"]) for r in made)
    for field in field_specs(resource):
        value = target[field]
        if value is None:
            continue
        if isinstance(value, list):
            value = value[0]
        got = ids(
            await client.get(
                f"/api/{name}", params={"id__in": only[7:], field: query_text(value)}, headers=admin
            )
        )
        assert target["id"] in got, field
        assert got == sorted(
            r["id"]
            for r in made
            if same(r[field], value) or (isinstance(r[field], list) and value in r[field])
        ), field


@over()
async def test_every_filter_operator(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    made = await three(rows, name)
    a, b, c = (r["id"] for r in made)
    url = f"/api/{name}"

    async def found(**params: str) -> list[int]:
        return ids(
            await client.get(url, params={"id__in": f"{a},{b},{c}", **params}, headers=admin)
        )

    assert await found(id=str(b)) == [b]
    assert await found(id__ne=str(b)) == [a, c]
    assert await found(id__gt=str(b)) == [c]
    assert await found(id__gte=str(b)) == [b, c]
    assert await found(id__lt=str(b)) == [a]
    assert await found(id__lte=str(b)) == [a, b]
    assert await found(id__in=f"{a},{c}") == [a, c]
    texts = [
        f for f, s in field_specs(resource).items() if s.is_text and isinstance(made[0][f], str)
    ]
    for text in texts[:1]:
        value: str = made[0][text]
        assert await found(**{f"{text}__like": value}) == [a]
        assert await found(**{f"{text}__like": value[0] + "_" + value[2:]}) == [a]
        assert await found(**{f"{text}__like": "%" + value[2:]}) == [a]
        assert await found(**{f"{text}__like": value.upper()}) == []  # like is case-sensitive
        assert await found(**{f"{text}__ilike": value.upper()}) == [a]
        assert await found(**{f"{text}__ilike": "%" + value[2:].upper() + "%"}) == [a]
        escaped = "%" + value[2:].replace("_", "\\_").replace("%", "\\%")
        assert await found(**{f"{text}__like": escaped}) == [a]
        assert await found(**{f"{text}__ilike": escaped.upper()}) == [a]
        assert await found(**{f"{text}__like": value[:-1] + "\\_"}) == []  # `_` escaped: literal
        bad = await client.get(url, params={f"{text}__like": "abc\\"}, headers=admin)
        assert bad.status_code == 422
    nullable = [f for f, s in field_specs(resource).items() if s.nullable]
    for field in nullable or ["id"]:
        filled = [r["id"] for r in made if r[field] is not None]
        assert await found(**{f"{field}__isnull": "false"}) == filled
        assert await found(**{f"{field}__isnull": "true"}) == [
            r["id"] for r in made if r[field] is None
        ]


@over()
async def test_bad_filters_are_422s_naming_the_parameter(
    name: str, client: AsyncClient, admin: dict[str, str]
) -> None:
    url = f"/api/{name}"
    for parameter, value, words in (
        ("no_such_field", "1", "unknown field"),
        ("id__near", "1", "unknown operator"),
        ("id", "abc", "id"),
        ("id__in", "1,x", "id"),
        ("id__isnull", "maybe", "isnull"),
        ("id__like", "1%", "unknown operator"),
        ("id", str(2**40), "id"),
        ("q", "a\x00b", "NUL"),
    ):
        response = await client.get(url, params={parameter: value}, headers=admin)
        assert response.status_code == 422, (parameter, response.text)
        found = errors_at(response, "query", parameter)
        assert found and words in found[0]["msg"], (parameter, found, response.json())
    for raw in ('{"no_such_field": 1}', "[1,2]", "{oops"):
        response = await client.get(url, params={"filter": raw}, headers=admin)
        assert response.status_code == 422, raw
        assert errors_at(response, "query", "filter")


@over(hides_columns)
async def test_hidden_columns_cannot_be_filtered_or_sorted(
    name: str, client: AsyncClient, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    shown = set(derive_schemas(resource).read.model_fields)
    hidden = [c for c in resource.table.columns.keys() if c not in shown]
    for column in hidden:
        assert (
            await client.get(f"/api/{name}", params={column: "x"}, headers=admin)
        ).status_code == 422
        assert (
            await client.get(f"/api/{name}", params={"sort": column}, headers=admin)
        ).status_code == 422


@over(is_searchable)
async def test_search_matches_words_in_the_search_fields(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    made = await three(rows, name)
    searchable = [f for f in resource.search_fields if f in field_specs(resource)]
    field = next((f for f in searchable if isinstance(made[1][f], str)), None)
    if field is None:
        pytest.skip(f"{name} has no search fields")
    needle = made[1][field][1:].upper()
    found = ids(await client.get(f"/api/{name}", params={"q": needle}, headers=admin))
    assert made[1]["id"] in found
    assert made[0]["id"] not in found
    assert ids(await client.get(f"/api/{name}", params={"q": "%"}, headers=admin)) == []


@over()
async def test_react_admin_simple_rest_dialect(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    made = await three(rows, name)
    a, b, c = (r["id"] for r in made)
    response = await client.get(
        f"/api/{name}",
        params={
            "filter": json.dumps({"id": [a, b, c]}),
            "sort": '["id","DESC"]',
            "range": "[0,1]",
        },
        headers=admin,
    )
    assert ids(response) == [c, b]
    assert response.headers["content-range"] == f"{name} 0-1/3"
    assert response.headers["x-total-count"] == "3"
    searchable = [f for f in resource.search_fields if f in field_specs(resource)]
    if searchable and isinstance(made[2][searchable[0]], str):
        query = {"q": made[2][searchable[0]], "id": [a, b, c]}
        found = await client.get(
            f"/api/{name}", params={"filter": json.dumps(query)}, headers=admin
        )
        assert ids(found) == [c]
    many = await client.get(
        f"/api/{name}",
        params={"filter": json.dumps({"id__gte": b, "id": [a, b, c]})},
        headers=admin,
    )
    assert ids(many) == [b, c]


# Auth ------------------------------------------------------------------------------------------


@over()
async def test_roles_decide_who_reads_and_writes(
    name: str, client: AsyncClient, rows: Rows, accounts: dict[Role, Account]
) -> None:
    resource = resource_of(name)
    row = await rows.create(name)
    item = f"/api/{name}/{row['id']}"
    for role, account in accounts.items():
        reads = role.allows(resource.read_role)
        writes = role.allows(resource.write_role)
        headers = account.headers
        assert (await client.get(f"/api/{name}", headers=headers)).status_code == (
            200 if reads else 403
        )
        assert (await client.get(item, headers=headers)).status_code == (200 if reads else 403)
        body = await rows.payload(name)
        created = await client.post(f"/api/{name}", json=body, headers=headers)
        assert created.status_code == (201 if writes else 403), (role, created.text)
        patched = await client.patch(item, json={}, headers=headers)
        assert patched.status_code == (200 if writes else 403)
        if not writes:
            assert (await client.delete(item, headers=headers)).status_code == 403
            assert "detail" in created.json()


@over()
async def test_anonymous_calls_are_401_with_a_bearer_challenge(
    name: str, client: AsyncClient, rows: Rows
) -> None:
    row = await rows.create(name)
    body = await rows.payload(name)
    item = f"/api/{name}/{row['id']}"
    for response in (
        await client.get(f"/api/{name}"),
        await client.get(item),
        await client.post(f"/api/{name}", json=body),
        await client.put(item, json=body),
        await client.patch(item, json={}),
        await client.delete(item),
        await client.get(item, headers={"Authorization": "Bearer not-a-token"}),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


@over()
async def test_no_response_shows_a_password_hash(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    row = await rows.create(name)
    for response in (
        await client.get(f"/api/{name}", headers=admin),
        await client.get(f"/api/{name}/{row['id']}", headers=admin),
        await client.patch(f"/api/{name}/{row['id']}", json={}, headers=admin),
    ):
        assert "hashed_password" not in response.text
        assert "$argon2" not in response.text


@over(has_decimals)
async def test_decimal_filters_compare_exactly_whatever_the_column_precision(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    decimals = [f for f, s in field_specs(resource).items() if s.python_type is Decimal]
    made = await three(rows, name)
    only = ",".join(str(r["id"]) for r in made)
    for field in decimals:
        value = made[0][field]

        async def found(op: str, raw: str, field: str = field) -> list[int]:
            params = {"id__in": only, f"{field}{op}": raw}
            return ids(await client.get(f"/api/{name}", params=params, headers=admin))

        assert await found("__lt", "1e16") == sorted(r["id"] for r in made)
        assert await found("__gt", "-1e16") == sorted(r["id"] for r in made)
        assert await found("", "1e16") == []
        assert await found("", value) == [r["id"] for r in made if same(r[field], value)]
        assert await found("", value + "1") == []  # not rounded to the column's scale
        assert (
            await client.get(f"/api/{name}", params={field: "NaN"}, headers=admin)
        ).status_code == 422
