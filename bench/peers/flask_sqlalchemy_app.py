"""(c) Flask + Flask-SQLAlchemy on gunicorn (1 worker, gthread, 16 threads), psycopg 3.

Written as the Flask tutorial and Flask-SQLAlchemy docs teach it: a `db.Model`, `db.get_or_404`,
`db.session.scalars(select(...))`, pydantic for request validation, `jsonify`.

Run: gunicorn -w 1 -k gthread --threads 16 bench.peers.flask_sqlalchemy_app:app
"""

import os
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from pydantic import ValidationError
from sqlalchemy import DateTime, ForeignKey, Numeric, String, Text, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.peers.common import ProductCreate, ProductUpdate, database_url

THREADS = int(os.environ.get("BENCH_THREADS", "16"))


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Product(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    stock: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sku": self.sku,
            "name": self.name,
            "description": self.description,
            "price": str(self.price),
            "stock": self.stock,
            "is_active": self.is_active,
            "category_id": self.category_id,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class Category(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)


app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = database_url("psycopg")
# One pooled connection per worker thread, so no request waits for a connection.
app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": THREADS, "max_overflow": 4}
db.init_app(app)


def validation_error(exc: ValidationError) -> tuple[Any, int]:
    return jsonify(detail=exc.errors(include_url=False, include_context=False)), 422


@app.get("/api/products/<int:product_id>")
def get_product(product_id: int) -> Any:
    return jsonify(db.get_or_404(Product, product_id).to_dict())


@app.get("/api/products")
def list_products() -> Any:
    skip = request.args.get("skip", 0, type=int)
    limit = request.args.get("limit", 25, type=int)
    if skip < 0 or not 1 <= limit <= 1000:
        return jsonify(detail="skip must be >= 0 and limit between 1 and 1000"), 422
    query = select(Product)
    count = select(func.count()).select_from(Product)
    category_id = request.args.get("category_id", type=int)
    if category_id is not None:
        query = query.where(Product.category_id == category_id)
        count = count.where(Product.category_id == category_id)
    total = db.session.scalar(count)
    products = db.session.scalars(query.order_by(Product.id).offset(skip).limit(limit))
    response = jsonify([product.to_dict() for product in products])
    response.headers["X-Total-Count"] = str(total)
    return response


@app.post("/api/products")
def create_product() -> Any:
    try:
        data = ProductCreate.model_validate_json(request.get_data())
    except ValidationError as exc:
        return validation_error(exc)
    product = Product(**data.model_dump())
    db.session.add(product)
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        return jsonify(detail=str(exc.orig)), 409
    return jsonify(product.to_dict()), 201


@app.patch("/api/products/<int:product_id>")
def update_product(product_id: int) -> Any:
    product = db.get_or_404(Product, product_id)
    try:
        changes = ProductUpdate.model_validate_json(request.get_data())
    except ValidationError as exc:
        return validation_error(exc)
    for name, value in changes.model_dump(exclude_unset=True).items():
        setattr(product, name, value)
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        return jsonify(detail=str(exc.orig)), 409
    return jsonify(product.to_dict())
