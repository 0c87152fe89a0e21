"""What every peer shares: the request schemas (the products table's rules) and the database URL.

The rules mirror backend/models/catalog.py (`Product`), so every peer rejects what Tablestack
rejects; each peer validates with pydantic because that is what its users reach for.
"""

import os
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Sku = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Price = Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)]
Stock = Annotated[int, Field(ge=0)]


class ProductCreate(BaseModel):
    """The body of POST /api/products."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku
    name: Name
    description: str | None = None
    price: Price
    stock: Stock = 0
    is_active: bool = True
    category_id: int


class ProductUpdate(BaseModel):
    """The body of PATCH /api/products/{id}: every field optional, only the sent ones applied."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku | None = None
    name: Name | None = None
    description: str | None = None
    price: Price | None = None
    stock: Stock | None = None
    is_active: bool | None = None
    category_id: int | None = None


def database_url(driver: str) -> str:
    """The benchmark database (BENCH_DATABASE_URL, a plain postgresql:// URL) for `driver`."""
    url = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/tablestack_bench"
    )
    scheme, rest = url.split("://", 1)
    if driver:
        return f"postgresql+{driver}://{rest}"
    return f"postgresql://{rest}"
