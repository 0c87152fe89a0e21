"""Sales: customers, their orders and the orders' items."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import EmailStr
from sqlalchemy import CheckConstraint, Column, Enum, Text, UniqueConstraint, func
from sqlmodel import Field, Relationship, SQLModel

from backend.models.base import created_at_field, utcnow
from backend.models.catalog import Product


class OrderStatus(StrEnum):
    """Where an order is in its life."""

    pending = "pending"
    paid = "paid"
    shipped = "shipped"
    cancelled = "cancelled"


class Customer(SQLModel, table=True):
    """Somebody who places orders, known by a unique email."""

    __tablename__ = "customers"

    id: int | None = Field(default=None, primary_key=True)
    email: EmailStr = Field(max_length=254, unique=True)
    name: str = Field(max_length=200, min_length=1)
    phone: str | None = Field(default=None, max_length=32)
    created_at: datetime = created_at_field()

    orders: list["Order"] = Relationship(back_populates="customer")

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Order(SQLModel, table=True):
    """A customer's order, identified for people by its reference."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("customer_id", "reference"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customers.id", ondelete="RESTRICT", index=True)
    reference: str = Field(max_length=32, min_length=1)
    status: OrderStatus = Field(
        default=OrderStatus.pending,
        # A VARCHAR with a CHECK, not a PostgreSQL ENUM type: enum types are not dropped on
        # downgrade and new members are not seen by autogenerate.
        sa_column=Column(
            Enum(
                OrderStatus,
                native_enum=False,
                create_constraint=True,
                length=16,
                name="status",
                validate_strings=True,
            ),
            nullable=False,
            server_default=OrderStatus.pending.value,
        ),
    )
    placed_at: datetime = Field(
        default_factory=utcnow, sa_column_kwargs={"server_default": func.now()}
    )
    note: str | None = Field(default=None, sa_type=Text)

    customer: Customer | None = Relationship(back_populates="orders")
    items: list["OrderItem"] = Relationship(
        back_populates="order",
        sa_relationship_kwargs={"cascade": "all, delete-orphan", "passive_deletes": True},
    )

    def __str__(self) -> str:
        return self.reference


class OrderItem(SQLModel, table=True):
    """One product line of an order."""

    __tablename__ = "order_items"
    __table_args__ = (
        UniqueConstraint("order_id", "product_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_non_negative"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", ondelete="CASCADE", index=True)
    product_id: int = Field(foreign_key="products.id", ondelete="RESTRICT", index=True)
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(max_digits=10, decimal_places=2, ge=0)

    order: Order | None = Relationship(back_populates="items")
    # Lets the admin pick the product with a search select and show it by name.
    product: Product | None = Relationship()

    def __str__(self) -> str:
        return f"{self.quantity} x product {self.product_id}"
