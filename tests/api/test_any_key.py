"""Keys of every kind, trees, and responses written before the commit.

- The `{id}` of the generated routes is typed after the primary key (integer with the column's
  range, UUID, string with its length and pattern) in the OpenAPI document and in validation,
  which answers exactly as FastAPI's own routes do; every route works with every kind of key,
  `Location` included.
- A key the client chooses (a currency's code) is written on create and never changed.
- A table registered with `tree=` refuses a parent that would make a row its own ancestor.
- A write whose response cannot be written rolls back rather than report a failure after
  storing the row.
"""

from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.config import Settings
from backend.crud import rows as rows_module
from backend.crud.generator import SQLModelCRUDRouter
from backend.crud.operation import ArgumentReader
from backend.crud.schemas import derive_schemas, integer_bounds
from backend.registry import ResourceOptions, client_chosen_primary_key, registry
from tests.api.samples import FullRows

RESOURCES = [resource.name for resource in registry]
TREES = [resource.name for resource in registry if resource.tree]
CHOSEN_KEYS = [r.name for r in registry if client_chosen_primary_key(r.table)]
LINKED = [resource.name for resource in registry if resource.many_to_many]


async def test_the_id_parameter_is_typed_after_the_primary_key(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for resource in registry:
        path = document["paths"][f"/api/{resource.name}/{{id}}"]
        column = resource.table.columns[resource.primary_key]
        for method in ("get", "put", "patch", "delete"):
            (parameter,) = [p for p in path[method]["parameters"] if p["in"] == "path"]
            schema = {
                k: v for k, v in parameter["schema"].items() if k not in ("title", "description")
            }
            if resource.primary_key_type is int:
                low, high = integer_bounds(column)
                assert schema == {"type": "integer", "minimum": low, "maximum": high}, schema
            elif resource.primary_key_type.__name__ == "UUID":
                assert schema == {"type": "string", "format": "uuid"}, schema
            else:
                assert schema["type"] == "string", schema
                field = resource.model.model_fields[resource.primary_key]
                pattern = next((m.pattern for m in field.metadata if hasattr(m, "pattern")), None)
                assert schema.get("pattern") == pattern
                assert schema["maxLength"] == column.type.length  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", RESOURCES)
async def test_every_route_works_with_the_resources_key(
    name: str, client: AsyncClient, admin: dict[str, str]
) -> None:
    resource = registry.get(name)
    full = FullRows(client, admin)
    body = await full.body(name)
    created = await client.post(f"/api/{name}", json=body, headers=admin)
    assert created.status_code == 201, created.text
    key = created.json()[resource.primary_key]
    url = f"/api/{name}/{quote(str(key), safe='')}"
    assert created.headers["location"] == f"http://testserver{url}"
    fetched = await client.get(created.headers["location"], headers=admin)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == created.json()
    replaced = await client.put(url, json=await full.body(name, 1), headers=admin)
    assert replaced.status_code == 200, replaced.text
    schemas = derive_schemas(resource)
    changed = await client.patch(
        url, json=await full.body(name, 2, schema=schemas.update), headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()[resource.primary_key] == key
    deleted = await client.delete(url, headers=admin)
    assert deleted.status_code == 200, deleted.text
    for method in ("GET", "DELETE"):
        gone = await client.request(method, url, headers=admin)
        assert gone.status_code == 404, gone.text
    missing = await client.patch(url, json={}, headers=admin)
    assert missing.status_code == 404, missing.text


def bad_ids(resource: ResourceOptions) -> list[str]:
    """Path ids that the key's type refuses."""
    ids = ["abc", "1.5", "%20", "-", "x" * 300]
    if resource.primary_key_type is int:
        ids += [str(2**64), "-" + str(2**64), "0x10", "1e3"]
    else:
        ids += ["12345678-1234-1234-1234-12345678901Z", "0" * 33, "lower", "TOOLONG"]
    return ids


@pytest.fixture
def plain_fastapi_of(settings: Settings) -> Any:
    """A resource's endpoints under FastAPI's own `APIRoute`: the reference for 422s."""

    def build(resource: ResourceOptions) -> FastAPI:
        reference = FastAPI()
        for route in SQLModelCRUDRouter(resource, settings).routes:
            reference.add_api_route(
                "/api" + route.path, route.endpoint, methods=list(route.methods), name=route.name
            )
        return reference

    return build


@pytest.mark.parametrize("name", RESOURCES)
async def test_a_bad_id_is_fastapis_422_at_path_id(
    name: str, client: AsyncClient, admin: dict[str, str], plain_fastapi_of: Any
) -> None:
    resource = registry.get(name)
    transport = ASGITransport(app=plain_fastapi_of(resource))
    async with AsyncClient(transport=transport, base_url="http://testserver") as reference:
        for item in bad_ids(resource):
            for method in ("GET", "DELETE", "PATCH"):
                url = f"/api/{name}/{item}"
                send: dict[str, Any] = {"json": {}} if method == "PATCH" else {}
                expected = await reference.request(method, url, **send)
                if expected.status_code != 422:
                    continue  # a valid key of this type (a string key takes "abc")
                served = await client.request(method, url, headers=admin, **send)
                assert served.status_code == 422, (method, url, served.text)
                assert served.json() == expected.json(), (method, url)
                assert served.json()["detail"][0]["loc"] == ["path", "id"]


@pytest.mark.parametrize("name", CHOSEN_KEYS)
async def test_a_key_the_client_chooses_is_written_once_and_never_changed(
    name: str, client: AsyncClient, admin: dict[str, str]
) -> None:
    resource = registry.get(name)
    pk = resource.primary_key
    full = FullRows(client, admin)
    body = await full.body(name)
    created = await client.post(f"/api/{name}", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()[pk] == body[pk]
    url = f"/api/{name}/{quote(str(body[pk]), safe='')}"
    assert created.headers["location"].endswith(url)
    other = await full.body(name, 1)
    assert other[pk] != body[pk]
    replaced = await client.put(url, json=other, headers=admin)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()[pk] == body[pk]
    without_key = {k: v for k, v in other.items() if k != pk}  # as a PUT may leave it out
    assert (await client.put(url, json=without_key, headers=admin)).status_code == 200
    patched = await client.patch(url, json={pk: other[pk]}, headers=admin)
    assert patched.status_code == 200, patched.text
    assert patched.json()[pk] == body[pk]
    assert (await client.get(url, headers=admin)).json() == patched.json()
    moved = await client.get(f"/api/{name}/{quote(str(other[pk]), safe='')}", headers=admin)
    assert moved.status_code == 404, moved.text
    taken = await client.post(f"/api/{name}", json=body, headers=admin)
    assert taken.status_code == 409, taken.text


async def _node(
    client: AsyncClient, headers: dict[str, str], name: str, parent: Any = None
) -> dict[str, Any]:
    resource = registry.get(name)
    body = await FullRows(client, headers).body(name)
    body[resource.tree or ""] = parent
    created = await client.post(f"/api/{name}", json=body, headers=headers)
    assert created.status_code == 201, created.text
    record: dict[str, Any] = created.json()
    return record


@pytest.mark.parametrize("name", TREES)
async def test_a_tree_refuses_to_make_a_row_its_own_ancestor(
    name: str, client: AsyncClient, admin: dict[str, str]
) -> None:
    resource = registry.get(name)
    tree, pk = resource.tree or "", resource.primary_key
    root = await _node(client, admin, name)
    child = await _node(client, admin, name, root[pk])
    grandchild = await _node(client, admin, name, child[pk])
    root_url = f"/api/{name}/{root[pk]}"
    put_body = {k: v for k, v in root.items() if k != pk}
    for method, url, parent in (
        ("PATCH", root_url, root[pk]),  # its own parent
        ("PATCH", root_url, child[pk]),  # under its child
        ("PATCH", root_url, grandchild[pk]),  # under its grandchild
        ("PUT", root_url, grandchild[pk]),
        ("PATCH", f"/api/{name}/{child[pk]}", grandchild[pk]),
        ("PATCH", f"/api/{name}/{child[pk]}", child[pk]),
    ):
        body = {tree: parent} if method == "PATCH" else {**put_body, tree: parent}
        refused = await client.request(method, url, json=body, headers=admin)
        assert refused.status_code == 409, (method, url, parent, refused.text)
        (error,) = refused.json()["detail"]
        assert error["loc"] == ["body", tree]
        assert error["type"] == "tree_cycle"
        assert error["msg"].startswith(f"{tree}: ")
    # Nothing was written.
    for node in (root, child, grandchild):
        stored = await client.get(f"/api/{name}/{node[pk]}", headers=admin)
        assert stored.json() == node
    # A move that closes no cycle is fine, also to no parent at all.
    moved = await client.patch(
        f"/api/{name}/{grandchild[pk]}", json={tree: root[pk]}, headers=admin
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()[tree] == root[pk]
    freed = await client.patch(root_url, json={tree: None}, headers=admin)
    assert freed.status_code == 200, freed.text
    now_below = await client.patch(root_url, json={tree: child[pk]}, headers=admin)
    assert now_below.status_code == 409, now_below.text  # child is still below root


@pytest.mark.parametrize("name", TREES)
async def test_a_new_row_cannot_name_itself_as_its_parent(
    name: str, client: AsyncClient, admin: dict[str, str]
) -> None:
    """A new row's key is the next number: a client may guess it and send it as the parent
    (the foreign key is satisfied by the row itself)."""
    resource = registry.get(name)
    tree, pk = resource.tree or "", resource.primary_key
    if resource.primary_key_type is not int:
        pytest.skip("only a numbered key can be guessed")
    body = await FullRows(client, admin).body(name)  # creates a parent row first
    last = await _node(client, admin, name)
    refused = await client.post(f"/api/{name}", json={**body, tree: last[pk] + 1}, headers=admin)
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", tree]
    listed = await client.get(f"/api/{name}", params={f"{pk}__gt": last[pk]}, headers=admin)
    assert listed.json() == []


@pytest.mark.parametrize("name", LINKED)
async def test_a_response_that_cannot_be_written_rolls_the_write_back(
    name: str,
    client: AsyncClient,
    admin: dict[str, str],
    connection: AsyncConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A write of several statements (links) encodes its response inside its transaction."""
    resource = registry.get(name)
    table = resource.table
    full = FullRows(client, admin)
    kept = await full.create(name)
    body = await full.body(name)

    def broken(self: Any, content: Any) -> bytes:
        raise RuntimeError("the response cannot be written")

    async def count() -> int:
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())

    url = f"/api/{name}/{kept['id']}"
    writes: tuple[tuple[str, str, Any], ...] = (
        ("POST", f"/api/{name}", body),
        ("PUT", url, await full.body(name, 1)),
        ("PATCH", url, {next(iter(derive_schemas(resource).many_to_many)).field: []}),
        ("DELETE", url, None),
    )
    before = await count()
    stored = (await client.get(url, headers=admin)).json()
    monkeypatch.setattr(rows_module.RowShape, "json", broken)
    for method, target, payload in writes:
        with pytest.raises(RuntimeError):
            await client.request(method, target, json=payload, headers=admin)
    monkeypatch.undo()
    assert await count() == before
    assert (await client.get(url, headers=admin)).json() == stored


def test_samples_cover_the_key_types() -> None:
    """The key kinds above are all present in the registry (the fixture app's matrix)."""
    kinds = {resource.primary_key_type.__name__ for resource in registry}
    assert {"int", "UUID", "str"} <= kinds
    assert TREES and CHOSEN_KEYS and LINKED


def test_the_plain_digits_shortcut_reads_only_integer_keys(settings: Settings) -> None:
    """`ArgumentReader` reads an id of plain digits itself only where the key is an integer;
    any other key goes through FastAPI's validation (a string key "0123" stays a string)."""
    for resource in registry:
        router = SQLModelCRUDRouter(resource, settings)
        (route,) = [r for r in router.routes if getattr(r, "name", "") == f"{resource.name}-get"]
        reader = ArgumentReader(route)
        assert ("id" in reader.bounded_ints) == (resource.primary_key_type is int), resource.name
