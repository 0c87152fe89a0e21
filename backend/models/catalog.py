"""The catalog: categories, products, tags and the products<->tags link."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Column, ForeignKey, Integer, Text
from sqlmodel import Field, Relationship, SQLModel

from backend.models.base import created_at_field, updated_at_field


class ProductTag(SQLModel, table=True):
    """The products<->tags many-to-many link."""

    __tablename__ = "product_tags"

    product_id: int = Field(
        sa_column=Column(Integer, ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    )
    tag_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )


class Category(SQLModel, table=True):
    """A group of products, addressed by its unique slug."""

    __tablename__ = "categories"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, min_length=1)
    # `schema_extra` pattern, not `regex=`: current pydantic ignores sqlmodel's `regex`.
    slug: str = Field(
        max_length=100,
        min_length=1,
        unique=True,
        schema_extra={"pattern": r"^[a-z0-9]+(?:-[a-z0-9]+)*$"},
    )
    description: str | None = Field(default=None, sa_type=Text)

    products: list["Product"] = Relationship(back_populates="category")

    def __str__(self) -> str:
        return self.name


class Tag(SQLModel, table=True):
    """A free label attached to products."""

    __tablename__ = "tags"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=50, min_length=1, unique=True)

    products: list["Product"] = Relationship(back_populates="tags", link_model=ProductTag)

    def __str__(self) -> str:
        return self.name


class Product(SQLModel, table=True):
    """A sellable item with a unique SKU."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("stock >= 0", name="stock_non_negative"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=64, min_length=1, unique=True)
    name: str = Field(max_length=200, min_length=1)
    description: str | None = Field(default=None, sa_type=Text)
    price: Decimal = Field(max_digits=10, decimal_places=2, ge=0)
    stock: int = Field(default=0, ge=0)
    is_active: bool = Field(default=True)
    category_id: int = Field(foreign_key="categories.id", ondelete="RESTRICT", index=True)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()

    category: Category | None = Relationship(back_populates="products")
    tags: list[Tag] = Relationship(back_populates="products", link_model=ProductTag)

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"
