"""The admin over HTTP, in-process, on both backends: sign-in, roles, CSRF, validation, writes."""

import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.orm import selectinload
from sqlmodel import select

from backend.auth.passwords import verify_password
from backend.config import Settings
from backend.main import create_app
from backend.models import Category, Customer, Order, OrderItem, Product, Role, Tag, User
from tests.admin.conftest import AdminClient, csrf_token, sign_in
from tests.admin.live import PASSWORD
from tests.loop_gate import password_checks_gated

_NAME = re.compile(r'<(?:input|select|textarea)[^>]*\sname="([^"]+)"')
_ERROR = re.compile(r'<div class="invalid-feedback">([^<]*)</div>')


def field_errors(html: str) -> dict[str, list[str]]:
    """Error messages rendered next to each form field, by field name."""
    found: dict[str, list[str]] = {}
    for error in _ERROR.finditer(html):
        names = _NAME.findall(html, 0, error.start())
        found.setdefault(names[-1] if names else "", []).append(error.group(1).strip())
    return found


def _id(row: Category) -> int:
    assert row.id is not None
    return row.id


async def _catalog(app: FastAPI) -> tuple[Category, list[Tag], Product]:
    """A category, two tags and one product in it."""
    async with app.state.database.api_sessions() as session:
        category = Category(name="Books", slug="books")
        tags = [Tag(name="new"), Tag(name="sale")]
        session.add_all([category, *tags])
        await session.flush()
        assert category.id is not None
        product = Product(
            sku="BK-1", name="Notebook", price=Decimal("12.50"), category_id=_id(category)
        )
        session.add(product)
        await session.commit()
        return category, tags, product


async def _products(app: FastAPI, sku: str) -> list[Product]:
    async with app.state.database.api_sessions() as session:
        query = select(Product).where(Product.sku == sku).options(selectinload(Product.tags))  # type: ignore[arg-type]
        return list((await session.exec(query)).all())


def _product_form(in_category: Category, **changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "sku": "NB-2",
        "name": "Red notebook",
        "description": "",
        "price": "9.99",
        "stock": "3",
        "is_active": "y",
        "category": str(in_category.id),
        "save": "Save",
    }
    form.update(changes)
    return form


# -- sign-in and the session cookie ------------------------------------------------------------


async def test_sign_in_sets_a_safe_session_cookie(app: FastAPI, users: dict[Role, User]) -> None:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as http:
        assert (await http.get("/admin/product/list")).headers["location"].endswith("/admin/login")
        wrong = await sign_in(http, "editor@example.com", "not-the-password")
        assert wrong.status_code == 400
        assert "Wrong email or password" in wrong.text
        assert 'value="editor@example.com"' in wrong.text  # the email is kept
        response = await sign_in(http, "EDITOR@example.com")
        assert response.status_code == 302
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if "tablestack_admin=" in c
        )
        assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
        assert "path=/admin" in cookie.lower() and "secure" not in cookie.lower()
        assert (await http.get("/admin/product/list")).status_code == 200
        logout = await http.get("/admin/logout")
        assert logout.headers["location"].endswith("/admin/login")
        assert (await http.get("/admin/product/list")).status_code == 302


@pytest.mark.parametrize("email", ["editor@example.com", "nobody@example.com"])
async def test_sign_in_checks_the_password_off_the_event_loop(
    app: FastAPI, users: dict[Role, User], email: str
) -> None:
    """Argon2 costs ~0.2 s of CPU: other requests must be served while it runs."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as http:
        async with password_checks_gated(turns=200) as loop:
            response = await sign_in(http, email)
    assert response.status_code == (302 if email in {u.email for u in users.values()} else 400)
    assert loop.checks == 1  # an unknown email is checked too, against a stand-in hash
    assert loop.turns == 200  # the loop turned while the check ran


async def test_session_cookie_is_secure_behind_https(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"session_https_only": True}))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://testserver") as http:
        page = await http.get("/admin/login")
        cookie = page.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


async def test_a_deactivated_user_is_signed_out(app: FastAPI, editor_client: AdminClient) -> None:
    assert (await editor_client.http.get("/admin/product/list")).status_code == 200
    async with app.state.database.api_sessions() as session:
        user = (await session.exec(select(User).where(User.email == "editor@example.com"))).one()
        user.is_active = False
        session.add(user)
        await session.commit()
    assert (await editor_client.http.get("/admin/product/list")).status_code == 302


# -- cross-site request forgery ----------------------------------------------------------------


async def test_state_changing_requests_need_the_session_token(
    app: FastAPI, editor_client: AdminClient
) -> None:
    category, _, _ = await _catalog(app)
    form = _product_form(category)
    missing = await editor_client.http.post("/admin/product/create", data=form)
    assert missing.status_code == 403 and "security token" in missing.text
    wrong = await editor_client.http.post(
        "/admin/product/create",
        data={"csrftoken": "forged", **form},
    )
    assert wrong.status_code == 403
    other_site = await editor_client.post(
        "/admin/product/create", form, headers={"origin": "https://evil.example"}
    )
    assert other_site.status_code == 403 and "another site" in other_site.text
    no_header = await editor_client.http.delete("/admin/product/delete?pks=1")
    assert no_header.status_code == 403
    assert await _products(app, "NB-2") == []
    # the same request with the token (and a same-site Origin) goes through
    ok = await editor_client.post(
        "/admin/product/create", form, headers={"origin": "http://testserver"}
    )
    assert ok.status_code == 302
    assert len(await _products(app, "NB-2")) == 1


async def test_sign_in_needs_the_token_and_rotates_it(
    app: FastAPI, users: dict[Role, User]
) -> None:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as http:
        forged = await http.post(
            "/admin/login", data={"username": "editor@example.com", "password": PASSWORD}
        )
        assert forged.status_code == 403
        before = csrf_token((await http.get("/admin/login")).text)
        assert (await sign_in(http, "editor@example.com")).status_code == 302
        after = csrf_token((await http.get("/admin/")).text)
        assert after != before


# -- roles ---------------------------------------------------------------------------------------


async def test_a_viewer_reads_but_cannot_write(app: FastAPI, viewer_client: AdminClient) -> None:
    category, _, product = await _catalog(app)
    listing = await viewer_client.http.get("/admin/product/list")
    assert listing.status_code == 200 and "Notebook" in listing.text
    assert "New Product" not in listing.text and "/admin/product/edit/" not in listing.text
    details = await viewer_client.http.get(f"/admin/product/details/{product.id}")
    assert details.status_code == 200 and "/admin/product/edit/" not in details.text
    assert (await viewer_client.http.get("/admin/product/create")).status_code == 403
    assert (await viewer_client.http.get(f"/admin/product/edit/{product.id}")).status_code == 403
    created = await viewer_client.post("/admin/product/create", _product_form(category))
    assert created.status_code == 403
    edited = await viewer_client.post(
        f"/admin/product/edit/{product.id}", _product_form(category, sku="BK-1", name="Hacked")
    )
    assert edited.status_code == 403
    deleted = await viewer_client.delete(f"/admin/product/delete?pks={product.id}")
    assert deleted.status_code == 403
    lookup = await viewer_client.http.get("/admin/product/ajax/lookup?name=category&term=Bo")
    assert lookup.status_code == 403
    assert (await viewer_client.http.get("/admin/product/export/csv")).status_code == 403
    rows = await _products(app, "BK-1")
    assert [p.name for p in rows] == ["Notebook"]
    assert await _products(app, "NB-2") == []


@pytest.mark.parametrize("role", [Role.viewer, Role.editor])
async def test_only_admins_see_users(
    app: FastAPI, users: dict[Role, User], role: Role, admin_client: AdminClient
) -> None:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as http:
        await sign_in(http, users[role].email)
        index = await http.get("/admin/")
        assert "/admin/user/list" not in index.text and "Administration" not in index.text
        assert (await http.get("/admin/user/list")).status_code == 403
        assert (await http.get(f"/admin/user/edit/{users[role].id}")).status_code == 403
    index = await admin_client.http.get("/admin/")
    assert "/admin/user/list" in index.text and "Administration" in index.text
    assert "hashed_password" not in (await admin_client.http.get("/admin/user/list")).text


async def test_admin_manages_users_with_hashed_passwords(
    app: FastAPI, admin_client: AdminClient
) -> None:
    form = {
        "email": "New.Person@Example.com",
        "full_name": "New Person",
        "role": "editor",
        "is_active": "y",
        "password": "a-long-password",
        "save": "Save",
    }
    short = await admin_client.post("/admin/user/create", {**form, "password": "short"})
    assert short.status_code == 400
    assert "at least 8 characters" in " ".join(field_errors(short.text)["password"])
    bad_email = await admin_client.post("/admin/user/create", {**form, "email": "not-an-email"})
    assert bad_email.status_code == 400 and field_errors(bad_email.text)["email"]
    created = await admin_client.post("/admin/user/create", form)
    assert created.status_code == 302, field_errors(created.text)
    async with app.state.database.api_sessions() as session:
        user = (
            await session.exec(select(User).where(User.email == "new.person@example.com"))
        ).one()
        first_hash = user.hashed_password
    assert first_hash != "a-long-password" and verify_password("a-long-password", first_hash)
    details = await admin_client.http.get(f"/admin/user/details/{user.id}")
    assert first_hash not in details.text and "hashed_password" not in details.text

    edit = {**form, "email": "new.person@example.com", "password": ""}
    kept = await admin_client.post(f"/admin/user/edit/{user.id}", edit)
    assert kept.status_code == 302
    reset = await admin_client.post(
        f"/admin/user/edit/{user.id}", {**edit, "password": "another-password"}
    )
    assert reset.status_code == 302
    async with app.state.database.api_sessions() as session:
        user = (await session.exec(select(User).where(User.id == user.id))).one()
    assert verify_password("another-password", user.hashed_password)

    duplicate = await admin_client.post("/admin/user/create", form)
    assert duplicate.status_code == 400
    assert "must be unique" in " ".join(field_errors(duplicate.text)["email"])


# -- validation, references and integrity ---------------------------------------------------------


async def test_a_negative_price_is_a_field_error(app: FastAPI, editor_client: AdminClient) -> None:
    category, _, _ = await _catalog(app)
    response = await editor_client.post(
        "/admin/product/create", _product_form(category, price="-1")
    )
    assert response.status_code == 400
    assert field_errors(response.text) == {"price": ["Input should be greater than or equal to 0"]}
    not_a_number = await editor_client.post(
        "/admin/product/create", _product_form(category, price="cheap")
    )
    assert not_a_number.status_code == 400 and field_errors(not_a_number.text)["price"]
    assert await _products(app, "NB-2") == []


async def test_a_malformed_email_is_a_field_error(app: FastAPI, editor_client: AdminClient) -> None:
    form = {"email": "nobody-at-example", "name": "Nobody", "phone": "", "save": "Save"}
    response = await editor_client.post("/admin/customer/create", form)
    assert response.status_code == 400
    assert "email" in field_errors(response.text)
    async with app.state.database.api_sessions() as session:
        assert (await session.exec(select(Customer))).all() == []


async def test_unique_and_reference_violations_are_readable(
    app: FastAPI, editor_client: AdminClient
) -> None:
    category, tags, product = await _catalog(app)
    duplicate = await editor_client.post(
        "/admin/product/create", _product_form(category, sku="BK-1")
    )
    assert duplicate.status_code == 400
    assert field_errors(duplicate.text)["sku"] == [
        "Sku must be unique: a row with this value exists."
    ]
    # the write service names the first reference it finds missing: the links, then the keys
    missing = await editor_client.post(
        "/admin/product/create",
        _product_form(category, category="999999", tags=[str(tags[0].id), "888888"]),
    )
    assert missing.status_code == 400
    assert field_errors(missing.text) == {"tags": ["No tags row has id 888888."]}
    missing = await editor_client.post(
        "/admin/product/create", _product_form(category, category="999999")
    )
    assert missing.status_code == 400
    assert field_errors(missing.text) == {"category": ["No categories row has id 999999."]}
    async with app.state.database.api_sessions() as session:
        customer = Customer(email="ann@example.com", name="Ann")
        session.add(customer)
        await session.flush()
        assert customer.id is not None
        order = Order(customer_id=customer.id, reference="R-1")
        session.add(order)
        await session.commit()
    item = {"order": str(order.id), "product": "777777", "quantity": "1", "unit_price": "1"}
    orphan = await editor_client.post("/admin/order-item/create", {**item, "save": "Save"})
    assert orphan.status_code == 400
    assert field_errors(orphan.text) == {"product": ["No products row has id 777777."]}
    assert [p.name for p in await _products(app, "BK-1")] == ["Notebook"]
    assert await _products(app, "NB-2") == []


async def test_deleting_a_referenced_row_is_refused_readably(
    app: FastAPI, editor_client: AdminClient
) -> None:
    category, _, _ = await _catalog(app)
    response = await editor_client.delete(f"/admin/category/delete?pks={category.id}")
    assert response.status_code == 200
    assert response.text.startswith("http://testserver/admin/category/list?error=")
    page = await editor_client.http.get(response.text)
    assert "other rows still refer to it" in page.text
    async with app.state.database.api_sessions() as session:
        assert len((await session.exec(select(Category))).all()) == 1


# -- editing every kind of column -----------------------------------------------------------------


async def test_enums_datetimes_decimals_and_relations_are_editable(
    app: FastAPI, editor_client: AdminClient
) -> None:
    category, tags, product = await _catalog(app)
    async with app.state.database.api_sessions() as session:
        customer = Customer(email="ann@example.com", name="Ann")
        session.add(customer)
        await session.commit()
    order = {
        "customer": str(customer.id),
        "reference": "R-1",
        "status": "paid",
        "placed_at": "2026-03-04 05:06:07",
        "note": "",
        "save": "Save",
    }
    created = await editor_client.post("/admin/order/create", order)
    assert created.status_code == 302, field_errors(created.text)
    async with app.state.database.api_sessions() as session:
        saved = (await session.exec(select(Order).where(Order.reference == "R-1"))).one()
    assert saved.status == "paid"
    assert saved.placed_at == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert saved.note is None
    bad_status = await editor_client.post("/admin/order/create", {**order, "status": "lost"})
    assert bad_status.status_code == 400 and field_errors(bad_status.text)["status"]

    item = {"order": str(saved.id), "product": str(product.id), "quantity": "2"}
    created_item = await editor_client.post(
        "/admin/order-item/create", {**item, "unit_price": "4.50", "save": "Save"}
    )
    assert created_item.status_code == 302, field_errors(created_item.text)
    async with app.state.database.api_sessions() as session:
        line = (await session.exec(select(OrderItem))).one()
    assert line.unit_price == Decimal("4.50") and line.product_id == product.id

    form = _product_form(category, tags=[str(t.id) for t in tags], is_active="")
    form.pop("is_active")  # an unticked checkbox is not sent
    edited = await editor_client.post(f"/admin/product/edit/{product.id}", {**form, "sku": "BK-1"})
    assert edited.status_code == 302, field_errors(edited.text)
    [saved_product] = await _products(app, "BK-1")
    assert saved_product.is_active is False and saved_product.price == Decimal("9.99")
    assert sorted(t.name for t in saved_product.tags) == ["new", "sale"]
    untagged = await editor_client.post(
        f"/admin/product/edit/{product.id}", {**_product_form(category), "sku": "BK-1"}
    )
    assert untagged.status_code == 302
    [saved_product] = await _products(app, "BK-1")
    assert saved_product.tags == []


async def test_read_only_columns_are_shown_on_the_edit_page_but_never_written(
    app: FastAPI, editor_client: AdminClient
) -> None:
    category, _, product = await _catalog(app)
    page = await editor_client.http.get(f"/admin/product/edit/{product.id}")
    created = re.search(r'<input[^>]*name="created_at"[^>]*>', page.text)
    assert created is not None and "readonly" in created.group(0)
    assert product.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") in created.group(0)
    assert 'name="created_at"' not in (await editor_client.http.get("/admin/product/create")).text
    forged = {
        **_product_form(category),
        "sku": "BK-1",
        "created_at": "2000-01-01 00:00:00",
        "id": "99",
    }
    assert (
        await editor_client.post(f"/admin/product/edit/{product.id}", forged)
    ).status_code == 302
    [saved] = await _products(app, "BK-1")
    assert saved.id == product.id and saved.created_at == product.created_at


async def test_related_rows_are_found_by_ajax_lookup(
    app: FastAPI, editor_client: AdminClient
) -> None:
    await _catalog(app)
    response = await editor_client.http.get("/admin/product/ajax/lookup?name=category&term=boo")
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["Books"]
    tags = await editor_client.http.get("/admin/product/ajax/lookup?name=tags&term=a")
    assert [r["text"] for r in tags.json()["results"]] == ["sale"]
    form = await editor_client.http.get("/admin/product/create")
    assert 'data-role="select2-ajax"' in form.text  # no <option> per related row


# -- lists, exports, and what other sessions see ---------------------------------------------------


async def test_lists_search_sort_page_and_export(app: FastAPI, editor_client: AdminClient) -> None:
    category, _, _ = await _catalog(app)
    async with app.state.database.api_sessions() as session:
        for n in range(12):
            session.add(
                Product(
                    sku=f"P-{n:02}", name=f"Pen {n}", price=Decimal(n), category_id=_id(category)
                )
            )
        await session.commit()
    found = await editor_client.http.get("/admin/product/list?search=pen 1")
    assert "Pen 10" in found.text and "Pen 11" in found.text and "Notebook" not in found.text
    page = await editor_client.http.get("/admin/product/list?pageSize=10&sortBy=price&sort=desc")
    assert "Showing 1 to 10 of 13 items" in page.text
    assert page.text.index("Notebook") < page.text.index("Pen 11")  # 12.50 before 11
    csv = await editor_client.http.get("/admin/product/export/csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("id,sku,name,description,price")
    exported = json.loads((await editor_client.http.get("/admin/product/export/json")).text)
    assert {row["sku"] for row in exported} >= {"BK-1", "P-00"}


async def test_admin_writes_and_other_writes_see_each_other(
    app: FastAPI, editor_client: AdminClient
) -> None:
    category, _, _ = await _catalog(app)
    created = await editor_client.post("/admin/product/create", _product_form(category))
    assert created.status_code == 302
    [row] = await _products(app, "NB-2")  # a fresh session, outside the admin
    assert row.name == "Red notebook" and row.price == Decimal("9.99")
    async with app.state.database.api_sessions() as session:
        session.add(
            Product(sku="EX-1", name="External lamp", price=Decimal(1), category_id=_id(category))
        )
        await session.commit()
    listing = await editor_client.http.get("/admin/product/list")
    assert "External lamp" in listing.text and "Red notebook" in listing.text


def test_response_helper_reads_field_errors() -> None:
    html = (
        '<input class="form-control is-invalid" id="price" name="price" type="text" value="-1">\n'
        '<div class="invalid-feedback">Input should be greater than or equal to 0</div>'
    )
    assert field_errors(html) == {"price": ["Input should be greater than or equal to 0"]}
