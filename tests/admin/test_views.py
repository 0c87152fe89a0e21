"""The generated views, checked for every registered table (a new table is covered for free)."""

from typing import Any

import pytest
from sqlalchemy import Text
from sqlalchemy import inspect as sa_inspect

from backend.admin.views import ResourceView, build_view, build_views
from backend.crud.schemas import read_only_fields
from backend.models import Tag
from backend.registry import AdminOptions, Registry, ResourceOptions, registry

VIEWS = {view.resource.name: view for view in build_views(registry)}


def test_one_view_per_registered_table() -> None:
    assert sorted(VIEWS) == sorted(resource.name for resource in registry)
    identities = [view.identity for view in VIEWS.values()]
    assert len(set(identities)) == len(identities)


@pytest.fixture(params=[resource.name for resource in registry])
def view(request: pytest.FixtureRequest) -> type[ResourceView]:
    return VIEWS[request.param]


def test_lists_start_with_the_primary_key(view: type[ResourceView]) -> None:
    columns: list[Any] = list(view.column_list)
    assert columns[0] == view.resource.primary_key
    assert not any("password" in str(name) for name in columns)


def test_secrets_never_leave_the_database(view: type[ResourceView]) -> None:
    shown = [*view.column_list, *view.column_details_list, *view.column_export_list]
    assert not any("password" in str(name) for name in shown)


def test_foreign_keys_show_the_related_row(view: type[ResourceView]) -> None:
    mapper = sa_inspect(view.resource.model)
    for relationship in mapper.relationships:
        if relationship.direction.name != "MANYTOONE":
            continue
        fk = relationship.local_remote_pairs[0][0].name
        assert fk not in view.form_columns and relationship.key in view.form_columns
        assert relationship.key in view.column_details_list


def test_forms_leave_out_read_only_columns(view: type[ResourceView]) -> None:
    resource = view.resource
    read_only = {*read_only_fields(resource), *resource.admin.readonly_columns}
    assert not read_only & set(view.form_columns)


def test_related_rows_are_chosen_by_lookup_not_by_a_full_list(view: type[ResourceView]) -> None:
    relationships = set(sa_inspect(view.resource.model).relationships.keys())
    in_form = {name for name in view.form_columns if name in relationships}
    assert set(view.form_ajax_refs) == in_form
    for options in view.form_ajax_refs.values():
        assert options["fields"] and options["limit"] <= 50


def test_defaults_search_text_and_sort_every_column(view: type[ResourceView]) -> None:
    resource = view.resource
    if resource.admin.column_searchable_list is None:
        assert list(view.column_searchable_list) == list(resource.search_fields)
    if resource.admin.column_sortable_list is None:
        columns = {c.name for c in resource.table.columns}
        assert set(view.column_sortable_list) <= columns
        assert resource.primary_key in view.column_sortable_list
    assert view.export_types == ["csv", "json"]
    assert view.page_size in view.page_size_options


def test_products_follow_their_registry_options() -> None:
    products = VIEWS["products"]
    assert list(products.column_list) == list(registry.get("products").admin.column_list or ())
    assert products.column_labels["sku"] == "SKU"
    assert "tags" in products.form_columns and "tags" in products.form_ajax_refs
    assert products.category == "Catalog" and products.icon == "fa-solid fa-box"


def test_admin_options_override_every_default() -> None:
    tables = Registry()
    resource: ResourceOptions = tables.register(
        Tag,
        admin=AdminOptions(
            column_list=("name",),
            column_searchable_list=("name",),
            column_sortable_list=("name",),
            column_details_exclude_list=("id",),
            column_labels={"name": "Label"},
            form_excluded_columns=("name",),
            icon="fa-solid fa-star",
            category="Elsewhere",
            page_size=40,
        ),
    )
    view = build_view(resource, tables)
    assert list(view.column_list) == ["name"]
    assert list(view.column_searchable_list) == ["name"]
    assert list(view.column_sortable_list) == ["name"]
    assert "id" not in view.column_details_list
    assert view.column_labels["name"] == "Label"
    assert "name" not in view.form_columns
    assert (view.icon, view.category, view.page_size) == ("fa-solid fa-star", "Elsewhere", 40)
    assert view.page_size_options == [10, 25, 40, 50, 100]


def test_derived_list_skips_long_text() -> None:
    categories = VIEWS["categories"]
    text = {c.name for c in registry.get("categories").table.columns if isinstance(c.type, Text)}
    assert text and not text & set(categories.column_list)
