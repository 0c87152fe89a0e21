"""Export is a permission of its own: editors and admins by default, per table through
`AdminOptions(export_role=...)`. Without it the list page has no export button and a direct
request is a 403. Here `tags` is registered (for this module's app) as exportable by viewers."""

import dataclasses
from collections.abc import Iterator

import pytest
from httpx import AsyncClient

from backend.config import Settings
from backend.models import Product, Role
from backend.registry import AdminOptions, Registry, RegistryError, registry
from tests.admin.conftest import AdminClient

EXPORT_LINK = "/export/csv"


@pytest.fixture
def settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The suite's settings, with `tags` exportable by viewers in the app built from them."""
    tags = registry.get("tags")
    exportable = dataclasses.replace(
        tags, admin=dataclasses.replace(tags.admin, export_role=Role.viewer)
    )
    monkeypatch.setitem(registry._by_name, "tags", exportable)
    yield settings


async def exports(http: AsyncClient, identity: str) -> tuple[bool, int, int]:
    """Whether the list page offers the export, and the CSV and JSON exports' statuses."""
    listing = await http.get(f"/admin/{identity}/list")
    assert listing.status_code == 200
    offered = f"/admin/{identity}{EXPORT_LINK}" in listing.text
    csv = await http.get(f"/admin/{identity}/export/csv")
    json = await http.get(f"/admin/{identity}/export/json")
    return offered, csv.status_code, json.status_code


async def test_viewers_cannot_export_by_default(viewer_client: AdminClient) -> None:
    offered, csv, json = await exports(viewer_client.http, "product")
    assert (offered, csv, json) == (False, 403, 403)


async def test_editors_and_admins_export(
    editor_client: AdminClient, admin_client: AdminClient
) -> None:
    assert await exports(editor_client.http, "product") == (True, 200, 200)
    assert await exports(admin_client.http, "product") == (True, 200, 200)
    # users are read by admins only: exporting them too
    assert await exports(admin_client.http, "user") == (True, 200, 200)
    assert (await editor_client.http.get("/admin/user/export/csv")).status_code == 403


async def test_a_table_may_let_viewers_export(viewer_client: AdminClient) -> None:
    assert await exports(viewer_client.http, "tag") == (True, 200, 200)
    forbidden = await viewer_client.http.get("/admin/product/export/csv")
    assert forbidden.status_code == 403 and "Traceback" not in forbidden.text


def test_export_role_must_be_a_role() -> None:
    with pytest.raises(RegistryError, match="products: option 'admin.export_role' must be a Role"):
        Registry().register(Product, admin=AdminOptions(export_role="viewer"))  # type: ignore[arg-type]
