"""One contract every generated resource keeps, checked for every registered table.

Parametrized over the registry: a newly registered table is covered without writing a test.
Rows are built from the derived schemas by `Rows` (tests/api/conftest.py).
"""

import enum
import json
import operator
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from pydantic import TypeAdapter, ValidationError

from backend.config import Settings
from backend.crud.query import FieldSpec, field_specs
from backend.crud.schemas import derive_schemas, integer_bounds, read_only_fields
from backend.models import Role
from backend.registry import ResourceOptions, client_chosen_primary_key, registry
from tests.api.conftest import Account, Rows, resource_of_table, writer


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


@cache
def _read_adapter(name: str, field: str) -> TypeAdapter[Any]:
    annotation: Any = derive_schemas(resource_of(name)).read.model_fields[field].annotation
    return TypeAdapter(annotation)


def typed(name: str, field: str, value: Any) -> Any:
    """A JSON value of `field` as the Python value the Read schema makes of it."""
    try:
        return _read_adapter(name, field).validate_python(value)
    except ValidationError:
        return value


def same(name: str, field: str, sent: Any, shown: Any) -> bool:
    return bool(sent == shown or typed(name, field, sent) == typed(name, field, shown))


def order_key(name: str, field: str, value: Any) -> tuple[bool, Any]:
    """How the database orders `value`: NULL last, an enum in its members' declared order."""
    value = typed(name, field, value)
    if value is None:
        return (True, 0)
    if isinstance(value, enum.Enum):
        return (False, list(type(value)).index(value))
    return (False, value)


def pk(name: str) -> str:
    return resource_of(name).primary_key


def by_key(name: str, made: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`made` in primary key order (the lists' last tie-breaker)."""
    return sorted(made, key=lambda row: order_key(name, pk(name), row[pk(name)]))


def ids(response: Response, name: str) -> list[Any]:
    assert response.status_code == 200, response.text
    return [row[pk(name)] for row in response.json()]


def keys_of(name: str, made: list[dict[str, Any]]) -> list[Any]:
    return [row[pk(name)] for row in made]


def only(name: str, made: list[dict[str, Any]]) -> dict[str, str]:
    """The query parameter limiting a list to `made`."""
    return {f"{pk(name)}__in": ",".join(str(row[pk(name)]) for row in made)}


def dialect(settings: Settings) -> str:
    return "sqlite" if settings.is_sqlite else "postgresql"


def query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value)
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
    assert response.headers["location"].endswith(f"/api/{name}/{created[pk(name)]}")
    for field, value in body.items():
        if field in created:
            assert same(name, field, value, created[field]), (field, value, created[field])
    fetched = await client.get(response.headers["location"], headers=writer(resource, accounts))
    assert fetched.status_code == 200
    assert fetched.json() == created
    listed = await client.get(
        f"/api/{name}", params=only(name, [created]), headers=admin_of(accounts)
    )
    assert listed.json() == [created]


def admin_of(accounts: dict[Role, Account]) -> dict[str, str]:
    return accounts[Role.admin].headers


@over()
async def test_missing_id_is_404_on_every_item_route(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    body = await rows.payload(name)
    missing = await rows.missing_id(name)
    url = f"/api/{name}/{missing}"
    for response in (
        await client.get(url, headers=admin),
        await client.put(url, json=body, headers=admin),
        await client.patch(url, json={}, headers=admin),
        await client.delete(url, headers=admin),
    ):
        assert response.status_code == 404, response.text
        assert str(missing) in response.json()["detail"]
    key_type = resource.primary_key_type
    if key_type in (int, uuid.UUID):
        bad = await client.get(f"/api/{name}/not-a-{key_type.__name__}", headers=admin)
        assert bad.status_code == 422
        assert errors_at(bad, "path", "id")
    if key_type is int:
        _, highest = integer_bounds(resource.table.columns[resource.primary_key])
        huge = await client.get(f"/api/{name}/{highest + 1}", headers=admin)
        assert huge.status_code == 422
        assert errors_at(huge, "path", "id")


@over()
async def test_invalid_body_is_a_fastapi_shaped_422(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    create = derive_schemas(resource).create
    required = [f for f, info in create.model_fields.items() if info.is_required()]
    response = await client.post(f"/api/{name}", json={}, headers=admin)
    assert response.status_code == 422
    assert {e["loc"][1] for e in errors_at(response, "body")} == set(required)
    body = await rows.payload(name)
    extra = await client.post(f"/api/{name}", json={**body, "no_such_field": 1}, headers=admin)
    assert extra.status_code == 422
    assert errors_at(extra, "body", "no_such_field")
    specs = field_specs(resource)
    texts = [f for f, v in body.items() if isinstance(v, str) and f in specs]
    texts.sort(key=lambda f: not specs[f].is_text)  # text fields first, else any string
    for nul in texts[:1]:
        with_nul = await client.post(f"/api/{name}", json={**body, nul: "a\x00b"}, headers=admin)
        assert with_nul.status_code == 422, with_nul.text
        assert errors_at(with_nul, "body", nul)


# Replace / update / delete -------------------------------------------------------------------


def written_key(name: str) -> bool:
    """Whether the client writes the primary key (a currency's code)."""
    return client_chosen_primary_key(resource_of(name).table)


@over()
async def test_put_replaces_and_ignores_read_only_fields_sent_back(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    key = pk(name)
    original = await rows.create(name)
    replacement = await rows.payload(name)
    if written_key(name):
        replacement[key] = original[key]
    sent_back = {k: v for k, v in original.items() if k in read_only_fields(resource)}
    body = {**replacement, **sent_back, key: original[key]}
    response = await client.put(f"/api/{name}/{original[key]}", json=body, headers=admin)
    assert response.status_code == 200, response.text
    replaced = response.json()
    assert replaced[key] == original[key]
    for field, value in replacement.items():
        if field in replaced:
            assert same(name, field, value, replaced[field]), field
    if "created_at" in original:
        assert same(name, "created_at", original["created_at"], replaced["created_at"])
    # Replace means every required field: leaving one out is a 422 naming it.
    create = derive_schemas(resource).create
    required = next(f for f, info in create.model_fields.items() if info.is_required() and f != key)
    partial = {k: v for k, v in body.items() if k != required}
    missing = await client.put(f"/api/{name}/{original[key]}", json=partial, headers=admin)
    assert missing.status_code == 422
    assert errors_at(missing, "body", required)


@over()
async def test_patch_changes_only_the_fields_sent(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    key = pk(name)
    original = await rows.create(name)
    fresh = await rows.payload(name)
    foreign_keys = {c.name for c in resource.table.columns if c.foreign_keys}
    changed = [
        f
        for f in derive_schemas(resource).update.model_fields
        if f in original
        and f not in foreign_keys
        and f != key
        and not same(name, f, original[f], fresh.get(f))
    ]
    assert changed, "the sample data should differ between two rows"
    for field in changed:
        response = await client.patch(
            f"/api/{name}/{original[key]}", json={field: fresh[field]}, headers=admin
        )
        assert response.status_code == 200, (field, response.text)
        patched = response.json()
        assert same(name, field, fresh[field], patched[field]), field
        for other, value in original.items():
            if other not in (field, "updated_at"):
                assert patched[other] == value, (field, other)
        original = patched
    required = next(
        f
        for f in resource.table.columns.keys()
        if f in original
        and f not in read_only_fields(resource)
        and not resource.table.columns[f].nullable
    )
    null = await client.patch(f"/api/{name}/{original[key]}", json={required: None}, headers=admin)
    assert null.status_code == 422
    assert errors_at(null, "body", required)


@over()
async def test_delete_returns_the_deleted_record(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    row = await rows.create(name)
    response = await client.delete(f"/api/{name}/{row[pk(name)]}", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == row
    assert (await client.get(f"/api/{name}/{row[pk(name)]}", headers=admin)).status_code == 404


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
            f"/api/{name}/{second[pk(name)]}",
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
    targets = {
        c.name: resource_of_table(next(iter(c.foreign_keys)).column.table).name
        for c in resource.table.columns
        if c.foreign_keys
    }
    targets |= {
        link.field: registry.for_model(link.target).name
        for link in derive_schemas(resource).many_to_many
    }
    for field in fields:
        body = await rows.payload(name)
        missing = await rows.missing_id(targets[field])
        body[field] = [missing] if isinstance(body[field], list) else missing
        response = await client.post(f"/api/{name}", json=body, headers=admin)
        assert response.status_code == 409, response.text
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", field]
        assert detail["type"] == "foreign_key"
        assert field in detail["msg"] and str(missing) in detail["msg"], detail


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
        fk = next(iter(column.foreign_keys))
        kid = await rows.create(child.name, **{column.name: parent[fk.column.name]})
        response = await client.delete(f"/api/{name}/{parent[pk(name)]}", headers=admin)
        if (fk.ondelete or "").upper() == "CASCADE":
            assert response.status_code == 200, response.text
            gone = await client.get(f"/api/{child.name}/{kid[pk(child.name)]}", headers=admin)
            assert gone.status_code == 404
        else:
            assert response.status_code == 409, response.text
            detail = response.json()["detail"][0]
            assert detail["loc"] == ["path", "id"]
            assert f"{child.table.name}.{column.name}" in detail["msg"]
            still = await client.get(f"/api/{name}/{parent[pk(name)]}", headers=admin)
            assert still.status_code == 200


# Listing: paging, counts, sorting, filtering ---------------------------------------------------


@over()
async def test_paging_counts_and_headers(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    made = by_key(name, await three(rows, name))
    url = f"/api/{name}"
    page = await client.get(url, params={**only(name, made), "limit": "2"}, headers=admin)
    assert ids(page, name) == keys_of(name, made[:2])
    assert page.headers["x-total-count"] == "3"
    assert page.headers["content-range"] == f"{name} 0-1/3"
    rest = await client.get(
        url, params={**only(name, made), "limit": "2", "skip": "2"}, headers=admin
    )
    assert ids(rest, name) == keys_of(name, made[2:])
    assert rest.headers["content-range"] == f"{name} 2-2/3"
    beyond = await client.get(url, params={**only(name, made), "skip": "10"}, headers=admin)
    assert ids(beyond, name) == []
    assert beyond.headers["content-range"] == f"{name} */3"
    everything = await client.get(url, headers=admin)
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


def expected_order(
    name: str, made: list[dict[str, Any]], field: str, *, descending: bool
) -> list[Any]:
    """The keys of `made` sorted on `field` as the API sorts: NULL last ascending (first
    descending), ties by ascending primary key."""
    ordered = sorted(by_key(name, made), key=lambda r: order_key(name, field, r[field]))
    if not descending:
        return keys_of(name, ordered)
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in reversed(ordered):
        groups.setdefault(order_key(name, field, row[field]), []).append(row)
    return [k for group in groups.values() for k in keys_of(name, by_key(name, group))]


@over()
async def test_sorting_on_every_sortable_field_is_stable(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    made = await three(rows, name)
    # Two rows sharing every value but the unique ones: ties are broken by the primary key.
    made.append(await rows.create(name, **tie_values(name, made[0])))
    url = f"/api/{name}"
    for field, spec in field_specs(resource).items():
        if not spec.sortable:
            refused = await client.get(url, params={"sort": field}, headers=admin)
            assert refused.status_code == 422, (field, refused.text)
            assert field in errors_at(refused, "query", "sort")[0]["msg"]
            continue
        for descending in (False, True):
            sort = f"-{field}" if descending else field
            got = ids(
                await client.get(url, params={**only(name, made), "sort": sort}, headers=admin),
                name,
            )
            assert got == expected_order(name, made, field, descending=descending), (
                field,
                descending,
            )
            react = json.dumps([field, "DESC" if descending else "ASC"])
            same_order = await client.get(
                url, params={**only(name, made), "sort": react}, headers=admin
            )
            assert ids(same_order, name) == got
    unknown = await client.get(url, params={"sort": "-no_such_column"}, headers=admin)
    assert unknown.status_code == 422
    assert "no_such_column" in errors_at(unknown, "query", "sort")[0]["msg"]


def tie_values(name: str, row: dict[str, Any]) -> dict[str, Any]:
    """The values of `row` another row may share: every writable column outside the unique
    keys and the foreign keys (a row of its own may refer to other rows)."""
    from tests.api.conftest import unique_keys

    resource = resource_of(name)
    unique = {field for key in unique_keys(resource) for field in key}
    writable = set(derive_schemas(resource).create.model_fields)
    return {
        field: value
        for field, value in row.items()
        if field in writable
        and field in resource.table.columns
        and field not in unique
        and not resource.table.columns[field].foreign_keys
    }


def comparisons(spec: FieldSpec, dialect: str) -> list[str]:
    return [op for op in ("eq", "ne", "gt", "gte", "lt", "lte") if op in spec.operators_on(dialect)]


def compare(op: str, left: Any, right: Any) -> bool:
    """`left <op> right` as SQL answers it for non-NULL values."""
    result: bool = getattr(operator, {"gte": "ge", "lte": "le"}.get(op, op))(left, right)
    return result


@over()
async def test_every_comparison_on_every_field(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str], settings: Settings
) -> None:
    """Each operator of each comparable field, with a value of a created row, finds exactly
    the rows Python's comparison of the typed values finds (as query parameters and in
    react-admin's `filter=`)."""
    resource = resource_of(name)
    made = await three(rows, name)
    made.append(await rows.create(name, **tie_values(name, made[0])))
    url = f"/api/{name}"
    checked = 0
    for field, spec in field_specs(resource).items():
        operators = comparisons(spec, dialect(settings))
        target = made[1]
        value = target[field]
        if value is None or not operators:
            continue
        if spec.link is not None:
            value = value[0]
            want = keys_of(name, by_key(name, [r for r in made if value in r[field]]))
            got = await client.get(
                url, params={**only(name, made), field: str(value)}, headers=admin
            )
            assert ids(got, name) == want, field
            continue
        typed_value = typed(name, field, value)
        for op in operators:
            want = keys_of(
                name,
                by_key(
                    name,
                    [
                        r
                        for r in made
                        if (r[field] is None and op == "ne")
                        or (
                            r[field] is not None
                            and compare(op, typed(name, field, r[field]), typed_value)
                        )
                    ],
                ),
            )
            parameter = field if op == "eq" else f"{field}__{op}"
            got = await client.get(
                url, params={**only(name, made), parameter: query_text(value)}, headers=admin
            )
            assert ids(got, name) == want, (field, op, value)
            as_json = json.dumps({parameter: value, f"{pk(name)}__in": keys_of(name, made)})
            got_json = await client.get(url, params={"filter": as_json}, headers=admin)
            assert ids(got_json, name) == want, (field, op, value, "filter=")
            checked += 1
        if "in" in spec.operators_on(dialect(settings)):
            others = [r[field] for r in made[2:] if r[field] is not None]
            want = keys_of(
                name,
                by_key(
                    name,
                    [
                        r
                        for r in made
                        if r[field] is not None
                        and typed(name, field, r[field])
                        in [typed(name, field, v) for v in [value, *others]]
                    ],
                ),
            )
            values = [query_text(v) for v in [value, *others]]
            if all("," not in v for v in values):
                got = await client.get(
                    url,
                    params={**only(name, made), f"{field}__in": ",".join(values)},
                    headers=admin,
                )
                assert ids(got, name) == want, (field, "in")
    assert checked, f"{name}: no field was compared"


@over()
async def test_text_patterns_and_nulls(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    made = by_key(name, await three(rows, name))
    a = made[0][pk(name)]
    url = f"/api/{name}"

    async def found(**params: str) -> list[Any]:
        return ids(
            await client.get(url, params={**only(name, made), **params}, headers=admin), name
        )

    def usable(value: Any) -> bool:
        return (
            isinstance(value, str)
            and len(value) >= 4
            and value.upper() != value
            and not any(c in value for c in "%_\\")
        )

    texts = [f for f, s in field_specs(resource).items() if s.is_text and usable(made[0][f])]
    for text in texts[:1]:
        value: str = made[0][text]
        assert await found(**{f"{text}__like": value}) == [a]
        assert await found(**{f"{text}__like": value[0] + "_" + value[2:]}) == [a]
        assert await found(**{f"{text}__like": "%" + value[2:]}) == [a]
        assert await found(**{f"{text}__like": value.upper()}) == []  # like is case-sensitive
        assert await found(**{f"{text}__ilike": value.upper()}) == [a]
        assert await found(**{f"{text}__ilike": "%" + value[2:].upper() + "%"}) == [a]
        assert await found(**{f"{text}__like": value[:-1] + "\\_"}) == []  # `_` escaped: literal
        bad = await client.get(url, params={f"{text}__like": "abc\\"}, headers=admin)
        assert bad.status_code == 422
    for field, spec in field_specs(resource).items():
        if spec.link is not None:
            continue
        filled = keys_of(name, [r for r in made if r[field] is not None])
        assert await found(**{f"{field}__isnull": "false"}) == filled, field
        assert await found(**{f"{field}__isnull": "true"}) == keys_of(
            name, [r for r in made if r[field] is None]
        ), field


@over(
    lambda resource: any(not s.sortable and s.link is None for s in field_specs(resource).values())
)
async def test_json_array_and_bytes_filters(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str], settings: Settings
) -> None:
    """JSON, arrays and bytes: no equality or sort; `contains` and `has_key` on PostgreSQL,
    a 422 naming the parameter elsewhere."""
    resource = resource_of(name)
    made = by_key(name, await three(rows, name))
    target = made[1]
    url = f"/api/{name}"
    on = dialect(settings)

    async def found(**params: str) -> list[Any]:
        return ids(
            await client.get(url, params={**only(name, made), **params}, headers=admin), name
        )

    for field, spec in field_specs(resource).items():
        if spec.sortable or spec.link is not None:
            continue
        for refused in (field, f"{field}__gt", f"{field}__like"):
            response = await client.get(url, params={refused: "1"}, headers=admin)
            assert response.status_code == 422, (refused, response.text)
            assert errors_at(response, "query", refused), refused
        kind = spec.kind(on)
        value = target[field]
        if "contains" not in spec.operators:
            continue
        if "contains" not in spec.operators_on(on):
            response = await client.get(url, params={f"{field}__contains": "[]"}, headers=admin)
            assert response.status_code == 422
            assert "PostgreSQL" in errors_at(response, "query", f"{field}__contains")[0]["msg"]
            continue
        assert value, (field, "the sample should not be empty")
        if kind == "array":
            item = value[0]
            want = [r[pk(name)] for r in made if r[field] is not None and item in r[field]]
            assert await found(**{f"{field}__contains": item}) == want, field
            assert await found(**{f"{field}__contains": ",".join(value)}) == [
                r[pk(name)] for r in made if r[field] is not None and set(value) <= set(r[field])
            ], field
            continue
        part = dict(list(value.items())[:1]) if isinstance(value, dict) else value[:1]
        want = [r[pk(name)] for r in made if contains(r[field], part)]
        assert target[pk(name)] in want
        assert await found(**{f"{field}__contains": json.dumps(part)}) == want, field
        as_json = json.dumps({f"{field}__contains": part, f"{pk(name)}__in": keys_of(name, made)})
        got = await client.get(url, params={"filter": as_json}, headers=admin)
        assert ids(got, name) == want
        for wrong in ("{oops", '{"a": NaN}', "[1e999]", '["\\u0000"]'):
            bad = await client.get(url, params={f"{field}__contains": wrong}, headers=admin)
            assert bad.status_code == 422, (wrong, bad.text)
            assert errors_at(bad, "query", f"{field}__contains")
        if isinstance(value, dict):
            key = next(iter(value))
            assert await found(**{f"{field}__has_key": key}) == [
                r[pk(name)] for r in made if isinstance(r[field], dict) and key in r[field]
            ]


def contains(document: Any, part: Any) -> bool:
    """PostgreSQL's jsonb `@>` for the shapes the samples have."""
    if isinstance(part, dict):
        return isinstance(document, dict) and all(
            k in document and contains(document[k], v) for k, v in part.items()
        )
    if isinstance(part, list):
        return isinstance(document, list) and all(
            any(contains(d, p) for d in document) for p in part
        )
    return bool(document == part)


@over()
async def test_bad_filters_are_422s_naming_the_parameter(
    name: str, client: AsyncClient, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    url = f"/api/{name}"
    cases = [("no_such_field", "1", "unknown field"), ("q", "a\x00b", "NUL")]
    typed_field = next(
        (f for f, s in field_specs(resource).items() if s.kind("sqlite") == "scalar"), None
    )
    if typed_field is not None:
        cases += [
            (f"{typed_field}__near", "1", "unknown operator"),
            (typed_field, "abc", typed_field),
            (f"{typed_field}__in", "1,abc", typed_field),
            (f"{typed_field}__isnull", "maybe", "isnull"),
            (f"{typed_field}__like", "1%", "unknown operator"),
        ]
    if resource.primary_key_type is int:
        cases.append((pk(name), str(2**63), pk(name)))
    for parameter, value, words in cases:
        response = await client.get(url, params={parameter: value}, headers=admin)
        assert response.status_code == 422, (parameter, response.text)
        found = errors_at(response, "query", parameter)
        assert found and words in found[0]["msg"], (parameter, found, response.json())
    for raw in ('{"no_such_field": 1}', "[1,2]", "{oops"):
        response = await client.get(url, params={"filter": raw}, headers=admin)
        assert response.status_code == 422, raw
        assert errors_at(response, "query", "filter")


FORMATS: dict[str, Callable[[str], Any]] = {
    "date-time": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "partial-time": time.fromisoformat,
    "uuid": uuid.UUID,
    "duration": TypeAdapter(timedelta).validate_python,
    "decimal": Decimal,
}


@over()
async def test_openapi_documents_a_filter_of_each_field_typed_as_its_values(
    name: str, app: FastAPI, rows: Rows
) -> None:
    """The list operation documents each field's filter, with a schema its values satisfy:
    `isnull` for JSON, arrays and bytes."""
    row = await rows.create(name)
    operation = app.openapi()["paths"][f"/api/{name}"]["get"]
    documented = {p["name"]: p["schema"] for p in operation["parameters"]}
    for field, spec in field_specs(resource_of(name)).items():
        if "eq" not in spec.operators:
            assert documented[f"{field}__isnull"] == {"type": "boolean"}, field
            continue
        schema = documented[field]
        values = row[field] if isinstance(row[field], list) else [row[field]]
        for value in (v for v in values if v is not None):
            if "enum" in schema:
                assert value in schema["enum"], field
            elif schema["type"] == "integer":
                assert schema["minimum"] <= value <= schema["maximum"], field
            elif schema["type"] == "string" and "format" in schema:
                FORMATS[schema["format"]](value)
            elif schema["type"] == "boolean":
                assert isinstance(value, bool), field
            elif schema["type"] == "number":
                float(value)


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
    field = next(
        (
            f
            for f in searchable
            if isinstance(made[1][f], str)
            and len(made[1][f]) >= 3
            and not any(made[1][f][1:].upper() in str(r[f]).upper() for r in (made[0], made[2]))
        ),
        None,
    )
    if field is None:
        pytest.skip(f"{name}: no search field with a telling sample value")
    needle = made[1][field][1:].upper()
    found = ids(await client.get(f"/api/{name}", params={"q": needle}, headers=admin), name)
    assert made[1][pk(name)] in found
    assert made[0][pk(name)] not in found
    assert ids(await client.get(f"/api/{name}", params={"q": "%"}, headers=admin), name) == []


@over()
async def test_react_admin_simple_rest_dialect(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    key = pk(name)
    made = by_key(name, await three(rows, name))
    a, b, c = keys_of(name, made)
    response = await client.get(
        f"/api/{name}",
        params={
            "filter": json.dumps({key: [a, b, c]}),
            "sort": json.dumps([key, "DESC"]),
            "range": "[0,1]",
        },
        headers=admin,
    )
    assert ids(response, name) == [c, b]
    assert response.headers["content-range"] == f"{name} 0-1/3"
    assert response.headers["x-total-count"] == "3"
    searchable = [f for f in resource.search_fields if f in field_specs(resource)]
    if searchable and isinstance(made[2][searchable[0]], str):
        query = {"q": made[2][searchable[0]], key: [a, b, c]}
        found = await client.get(
            f"/api/{name}", params={"filter": json.dumps(query)}, headers=admin
        )
        assert c in ids(found, name)
    many = await client.get(
        f"/api/{name}",
        params={"filter": json.dumps({f"{key}__gte": b, key: [a, b, c]})},
        headers=admin,
    )
    assert ids(many, name) == [b, c]


# Auth ------------------------------------------------------------------------------------------


@over()
async def test_roles_decide_who_reads_and_writes(
    name: str, client: AsyncClient, rows: Rows, accounts: dict[Role, Account]
) -> None:
    resource = resource_of(name)
    row = await rows.create(name)
    item = f"/api/{name}/{row[pk(name)]}"
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
    item = f"/api/{name}/{row[pk(name)]}"
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
        await client.get(f"/api/{name}/{row[pk(name)]}", headers=admin),
        await client.patch(f"/api/{name}/{row[pk(name)]}", json={}, headers=admin),
    ):
        assert "hashed_password" not in response.text
        assert "$argon2" not in response.text


# Inputs that have broken parsers before: out of range, out of format, not finite, odd text.
AWKWARD = (
    "",
    "null",
    "1e999",
    "NaN",
    "9" * 40,
    "9999-12-31T23:59:59.999999-23:59",
    "12:00:00+05:00",
    "P999999999D",
    "a,b,,c",
    '{"a": {"b": [1, null]}}',
    '"\\u0000"',
    "%_\\%",
)


@over()
async def test_no_filter_value_is_a_server_error(
    name: str, client: AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    """Every operator of every field, and one it does not take, with awkward values (as query
    text and in `filter=`): a 200 or a 422 naming the parameter, never a 5xx."""
    url = f"/api/{name}"
    for field, spec in field_specs(resource_of(name)).items():
        operators = [*spec.operators, "like" if "like" not in spec.operators else "has_key"]
        for op in operators:
            parameter = field if op == "eq" else f"{field}__{op}"
            for raw in AWKWARD:
                response = await client.get(url, params={parameter: raw}, headers=admin)
                assert response.status_code in (200, 422), (parameter, raw, response.text)
                if response.status_code == 422:
                    assert errors_at(response, "query", parameter), (parameter, raw)
                try:
                    value = json.loads(raw)
                except ValueError:
                    value = raw
                as_json = json.dumps({parameter: value})
                response = await client.get(url, params={"filter": as_json}, headers=admin)
                assert response.status_code in (200, 422), (parameter, raw, response.text)


@over(has_decimals)
async def test_decimal_filters_compare_exactly_whatever_the_column_precision(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    resource = resource_of(name)
    decimals = [f for f, s in field_specs(resource).items() if s.python_type is Decimal]
    made = by_key(name, await three(rows, name))
    everything = keys_of(name, made)
    for field in decimals:
        value = made[0][field]

        async def found(op: str, raw: str, field: str = field) -> list[Any]:
            params = {**only(name, made), f"{field}{op}": raw}
            return ids(await client.get(f"/api/{name}", params=params, headers=admin), name)

        huge = "1" + "0" * 16  # a decimal filter is decimal text: no exponent
        assert await found("__lt", huge) == everything
        assert await found("__gt", "-" + huge) == everything
        assert await found("", huge) == []
        assert await found("", value) == keys_of(
            name, [r for r in made if same(name, field, r[field], value)]
        )
        assert await found("", value + "1") == []  # not rounded to the column's scale
        assert (
            await client.get(f"/api/{name}", params={field: "NaN"}, headers=admin)
        ).status_code == 422


# History and versions ----------------------------------------------------------------------


def _changeable_field(name: str, original: dict[str, Any], fresh: dict[str, Any]) -> str:
    """A field PATCH can change to a value that differs (not a key, reference or read-only)."""
    resource = resource_of(name)
    foreign_keys = {c.name for c in resource.table.columns if c.foreign_keys}
    return next(
        f
        for f in derive_schemas(resource).update.model_fields
        if f in original
        and f not in foreign_keys
        and f != pk(name)
        and f not in read_only_fields(resource)
        and not same(name, f, original[f], fresh.get(f))
    )


@over()
async def test_history_records_each_change_with_its_values_as_the_api_shows_them(
    name: str, client: AsyncClient, rows: Rows, accounts: dict[Role, Account]
) -> None:
    admin = accounts[Role.admin]
    created = await rows.create(name)
    item = f"/api/{name}/{created[pk(name)]}"
    field = _changeable_field(name, created, await rows.payload(name))
    fresh = (await rows.payload(name))[field]
    patched = (await client.patch(item, json={field: fresh}, headers=admin.headers)).json()
    assert (await client.delete(item, headers=admin.headers)).status_code == 200

    response = await client.get(f"{item}/history", headers=admin.headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-total-count"] == "3"
    deleted, updated, made = response.json()
    assert [made["action"], updated["action"], deleted["action"]] == [
        "created",
        "updated",
        "deleted",
    ]
    assert {e["actor"] for e in (made, updated, deleted)} == {admin.email}
    assert [made["version"], updated["version"], deleted["version"]] == [1, 2, 2]
    # every value the row was created with, exactly as the API wrote it (null ones left out)
    shown = {f: v for f, v in created.items() if v is not None and v != []}
    assert {f: v[1] for f, v in made["changes"].items() if f in created} == shown
    assert updated["changes"] == {field: [created[field], patched[field]]}
    assert {f: v[0] for f, v in deleted["changes"].items() if f in patched} == {
        f: v for f, v in patched.items() if v is not None and v != []
    }


@over()
async def test_get_answers_an_etag_and_writes_honour_if_match(
    name: str, client: AsyncClient, rows: Rows, admin: dict[str, str]
) -> None:
    created = await rows.create(name)
    item = f"/api/{name}/{created[pk(name)]}"
    fetched = await client.get(item, headers=admin)
    assert fetched.headers["etag"] == '"1"'
    unchanged = await client.get(item, headers={**admin, "If-None-Match": '"1"'})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    field = _changeable_field(name, created, await rows.payload(name))
    fresh = (await rows.payload(name))[field]

    patched = await client.patch(
        item, json={field: fresh}, headers={**admin, "If-Match": fetched.headers["etag"]}
    )
    assert patched.status_code == 200, patched.text
    assert patched.headers["etag"] == '"2"'
    stale = await client.patch(
        item, json={field: created[field]}, headers={**admin, "If-Match": '"1"'}
    )
    assert stale.status_code == 412, stale.text
    assert stale.headers["etag"] == '"2"'
    assert (await client.get(item, headers=admin)).json() == patched.json()  # nothing lost
    assert (await client.delete(item, headers={**admin, "If-Match": '"1"'})).status_code == 412
    history = await client.get(f"{item}/history", headers=admin)
    assert [e["action"] for e in history.json()] == ["updated", "created"]  # none for a 412
    assert (await client.delete(item, headers={**admin, "If-Match": '"2"'})).status_code == 200
